"""Stored snapshots through real syncs on Postgres: written on change only, content-addressed,
round-tripping into every provider's snapshot types, in the database or in object storage,
and pruned by retention except where an audit's period or current evidence needs them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

import boto3
import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import (
    AuthType,
    Category,
    Check,
    Connector,
    Result,
    Severity,
    check,
    collector,
)
from connectors.runner import Collected
from engine import registry
from engine.db import Job, session_factory
from engine.maintenance import prune_history
from engine.models import (
    Audit,
    CollectorSnapshot,
    Connection,
    Evidence,
    SnapshotKind,
    SnapshotSeen,
    SyncRun,
    Trigger,
)
from engine.settings import Settings
from engine.snapshots import canonical, load_snapshot, object_key, pieces_of, restore
from engine.sync import request_sync, run_sync
from tests.engine import fake

# --- a small connector whose estate the test controls: doors in regions ------------------

ESTATE: dict[str, Any] = {}


def reset_estate() -> None:
    ESTATE.clear()
    ESTATE.update(regions=["eu", "us"], reads=0, down=False, doors={
        "front": {"region": "eu", "locked": True, "alarm": True},
        "back": {"region": "eu", "locked": True, "alarm": False},
        "side": {"region": "us", "locked": False, "alarm": True},
    })


@dataclasses.dataclass(frozen=True)
class Door:
    name: str
    region: str
    locked: bool
    alarm: bool
    checked_at: dt.date | None = None


@collector(scoped=True)
def collect_doors(session: dict[str, Any], scope: str) -> list[Door]:
    """Every read counts; a provider that is down refuses."""
    if ESTATE["down"]:
        raise RuntimeError("the provider was asked while it is down")
    ESTATE["reads"] += 1
    return [Door(name, d["region"], d["locked"], d["alarm"], dt.date(2026, 1, 1))
            for name, d in sorted(ESTATE["doors"].items()) if d["region"] == scope]


@check(id="snap.door.locked", severity=Severity.HIGH, resource_type="snap.door",
       remediation="Lock it.", needs=collect_doors)
def door_locked(doors: list[Door]) -> Iterator[Result]:
    """Doors are locked."""
    for door in doors:
        yield Result.of(f"door:{door.name}", passing=door.locked,
                        title=f"Door {door.name} is {'locked' if door.locked else 'open'}")


@check(id="snap.door.locked", severity=Severity.HIGH, resource_type="snap.door",
       remediation="Lock it and arm it.", needs=collect_doors, version=2)
def door_locked_v2(doors: list[Door]) -> Iterator[Result]:
    """Doors are locked and alarmed."""
    for door in doors:
        secure = door.locked and door.alarm
        yield Result.of(f"door:{door.name}", passing=secure,
                        title=f"Door {door.name} is {'secure' if secure else 'not secure'}")


class DoorCredentials(BaseModel):
    token: SecretStr


class DoorConnector(Connector):
    id: ClassVar[str] = "snap"
    name = "Doors"
    category = Category.MONITORING
    auth_type = AuthType.API_KEY
    icon = "snap"
    credentials_model = DoorCredentials
    checks: ClassVar[tuple[Check, ...]] = (door_locked,)

    def verify(self) -> dict[str, Any]:
        return {}

    def session(self) -> dict[str, Any]:
        return {}

    def scopes(self, session: Any) -> list[str]:
        return list(ESTATE["regions"])


class DoorConnectorV2(DoorConnector):
    """The same connector after its check's rule changed (version 2)."""

    checks: ClassVar[tuple[Check, ...]] = (door_locked_v2,)


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    reset_estate()
    registry.register(DoorConnector)
    yield session_factory(settings)
    registry.unregister("snap")


@pytest.fixture
def connection_id(factory: sessionmaker[Session], settings: Settings) -> str:
    return fake.add_connection(factory, settings, "snap")


def sync(factory: sessionmaker[Session], connection_id: str,
         settings: Settings | None = None) -> SyncRun:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
    run_sync(factory, run_id, worker="test", settings=settings)
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def table(factory: sessionmaker[Session], name: str) -> list[tuple[Any, ...]]:
    """Every row of a table, as stored (to prove a sync wrote nothing there)."""
    with factory() as s:
        return [tuple(r) for r in s.execute(text(f"SELECT * FROM {name} ORDER BY 1, 2"))]


def current_seen(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as s:
        return dict(s.execute(select(SnapshotSeen.scope, SnapshotSeen.sha256).where(
            SnapshotSeen.valid_to.is_(None))).tuples().all())


# --- written on change only ---------------------------------------------------------------


def test_first_sync_stores_snapshots_an_unchanged_resync_none_and_a_change_one(
        factory, connection_id, settings):
    assert sync(factory, connection_id).status == "succeeded"
    heads = current_seen(factory)
    assert set(heads) == {"eu", "us"}
    with factory() as s:
        kinds = dict(s.execute(select(CollectorSnapshot.sha256, CollectorSnapshot.kind))
                     .tuples().all())
        eu = load_snapshot(s, settings, "acme", heads["eu"])
        evidence = s.execute(select(Evidence.snapshot_sha256, Evidence.check_version)).all()
        manifest_sha = evidence[0][0]
        manifest = load_snapshot(s, settings, "acme", manifest_sha)
    # two snapshots (one per region) and the manifest the check's evidence names
    assert kinds == {heads["eu"]: SnapshotKind.SNAPSHOT, heads["us"]: SnapshotKind.SNAPSHOT,
                     manifest_sha: SnapshotKind.MANIFEST}
    assert {e for e in evidence} == {(manifest_sha, 1)}
    assert json.loads(manifest or b"") == [[collect_doors.name, "eu", heads["eu"]],
                                           [collect_doors.name, "us", heads["us"]]]
    assert eu is not None and hashlib.sha256(eu).hexdigest() == heads["eu"]
    assert restore(collect_doors, eu) == [
        Door("back", "eu", True, False, dt.date(2026, 1, 1)),
        Door("front", "eu", True, True, dt.date(2026, 1, 1))]

    stored = table(factory, "collector_snapshot"), table(factory, "snapshot_seen")
    versions = table(factory, "evidence_version")
    assert sync(factory, connection_id).status == "succeeded"
    assert (table(factory, "collector_snapshot"), table(factory, "snapshot_seen")) == stored
    assert table(factory, "evidence_version") == versions

    ESTATE["doors"]["side"]["locked"] = True  # the us region changes, eu does not
    sync(factory, connection_id)
    after = current_seen(factory)
    assert after["eu"] == heads["eu"] and after["us"] != heads["us"]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(CollectorSnapshot).where(
            CollectorSnapshot.kind == SnapshotKind.SNAPSHOT)) == 3
        closed = s.execute(select(SnapshotSeen.scope, SnapshotSeen.sha256).where(
            SnapshotSeen.valid_to.is_not(None))).all()
        side = s.scalars(select(Evidence).where(Evidence.resource_id == "door:side")).one()
    assert closed == [("us", heads["us"])]
    assert side.status == "passing" and side.snapshot_sha256 not in (None, manifest_sha)

    ESTATE["regions"] = ["eu"]  # a region no longer read: its snapshot stops being current
    sync(factory, connection_id)
    assert current_seen(factory) == {"eu": heads["eu"]}


def test_a_failed_read_keeps_the_last_snapshot_current(factory, connection_id):
    sync(factory, connection_id)
    heads = current_seen(factory)
    ESTATE["down"] = True
    assert sync(factory, connection_id).status == "partial"
    assert current_seen(factory) == heads


# --- object storage -----------------------------------------------------------------------

BUCKET = "evidence-snapshot-tests"


@pytest.fixture
def store_settings(settings: Settings, moto_endpoint: str) -> Settings:
    changed = settings.model_copy(update={
        "storage_endpoint_url": moto_endpoint, "storage_bucket": BUCKET,
        "storage_access_key_id": "testing",
        "storage_secret_access_key": SecretStr("testing-secret"), "storage_region": "us-east-1"})
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    try:  # other tests may reset moto: make the bucket again
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return changed


def test_with_object_storage_the_bytes_go_to_the_bucket_and_the_row_keeps_the_key(
        factory, connection_id, store_settings, moto_endpoint):
    assert sync(factory, connection_id, store_settings).status == "succeeded"
    with factory() as s:
        rows = s.execute(select(CollectorSnapshot.sha256, CollectorSnapshot.body,
                                CollectorSnapshot.object_key)).all()
        eu = current_seen(factory)["eu"]
        raw = load_snapshot(s, store_settings, "acme", eu)
    assert rows and all(body is None and key == object_key("acme", sha)
                        for sha, body, key in rows)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    stored = s3.get_object(Bucket=BUCKET, Key=object_key("acme", eu))["Body"].read()
    assert stored[:4] == b"\x28\xb5\x2f\xfd"  # a zstandard frame
    assert raw is not None and hashlib.sha256(raw).hexdigest() == eu
    assert [d.name for d in restore(collect_doors, raw)] == ["back", "front"]


# --- retention ----------------------------------------------------------------------------


def test_retention_keeps_snapshots_of_an_audit_period_and_of_current_evidence(
        factory, connection_id, settings):
    now = datetime.now(UTC)
    old, older = now - timedelta(days=300), now - timedelta(days=200)
    with factory() as s, s.begin():
        for sha in ("a" * 64, "b" * 64, "c" * 64, "d" * 64):
            s.add(CollectorSnapshot(account_id="acme", sha256=sha, kind=SnapshotKind.SNAPSHOT,
                                    size=2, stored_size=11, body=b"x", created_at=old))
        for sha, start, end in (("a" * 64, old, older),  # outside any audit: pruned
                                ("b" * 64, old - timedelta(days=30), old),  # in the audit
                                ("c" * 64, old, older)):  # pruned, but current evidence
            s.add(SnapshotSeen(account_id="acme", connection_id=connection_id,
                               collector=collect_doors.name, scope="eu", sha256=sha,
                               valid_from=start, valid_to=end))
        s.add(Audit(account_id="acme", framework_id="soc2", type="type_ii", title="FY",
                    created_by="me", created_at=old - timedelta(days=40),
                    updated_at=old, completed_at=old - timedelta(days=10)))
        s.add(Evidence(account_id="acme", connection_id=connection_id,
                       check_id="snap.door.locked", resource_id="door:x",
                       resource_type="snap.door", status="passing", title="t", data={},
                       content_hash="h", first_seen_at=old, last_changed_at=old,
                       snapshot_sha256="c" * 64))
    prune_history(factory, now, timedelta(days=100), settings=settings)
    with factory() as s:
        left = set(s.scalars(select(CollectorSnapshot.sha256)))
        intervals = set(s.scalars(select(SnapshotSeen.sha256)))
    assert left == {"b" * 64, "c" * 64}  # d: nothing refers to it
    assert intervals == {"b" * 64}


# --- canonical JSON round-trip of every provider's snapshot types --------------------------


def test_every_providers_snapshot_types_round_trip_through_canonical_json():
    providers: dict[str, int] = {}
    for cid, cls in registry.connectors().items():
        for coll in {c for chk in cls.checks for c in chk.needs}:
            value = sample(get_type_hints(coll.fn)["return"])
            raw = canonical(coll, value)
            assert json.loads(raw) is not None
            assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode(), coll.name
            back = restore(coll, raw)
            assert back == value, coll.name
            assert canonical(coll, back) == raw, coll.name
            providers[cid] = providers.get(cid, 0) + 1
    assert {"aws", "gcp", "github", "okta"} <= set(providers)


def sample(tp: Any, depth: int = 0, typevars: dict[str, Any] | None = None) -> Any:
    """One value of a snapshot type, built from its annotations on plain data."""
    typevars = typevars or {}
    if isinstance(tp, typing.TypeVar):
        tp = typevars.get(tp.__name__, str)
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any or tp is object:
        return {"k": [1, "v"]}
    if origin in (Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), depth, typevars)
    if origin is Literal:
        return args[0]
    if origin is tuple and args and args[-1] is not Ellipsis:
        return tuple(sample(a, depth + 1, typevars) for a in args)
    if origin in (list, tuple) or tp in (list, tuple):
        items = [sample(args[0] if args else str, depth + 1, typevars)] if depth < 6 else []
        return tuple(items) if tuple in (origin, tp) else items
    if origin in (set, frozenset):
        return origin({sample(args[0], depth + 1, typevars), "another"} if args[0] is str
                      else {sample(args[0], depth + 1, typevars)})
    if origin is dict or tp is dict:
        key, value = args or (str, Any)
        return {sample(key, depth + 1, typevars): sample(value, depth + 1, typevars)} \
            if depth < 6 else {}
    if origin is not None and dataclasses.is_dataclass(origin):
        bound = {p.__name__: typevars.get(a.__name__, str) if isinstance(a, typing.TypeVar)
                 else a for p, a in zip(origin.__parameters__, args, strict=True)}
        return _sample_dataclass(origin, depth, bound)
    if isinstance(tp, type):
        if issubclass(tp, bool):
            return True
        if issubclass(tp, enum.Enum):
            return list(tp)[-1]
        if issubclass(tp, int):
            return 7
        if issubclass(tp, float):
            return 2.5
        if issubclass(tp, str):
            return "x-value"
        if issubclass(tp, dt.datetime):
            return dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
        if issubclass(tp, dt.date):
            return dt.date(2026, 3, 4)
        if dataclasses.is_dataclass(tp):
            return _sample_dataclass(tp, depth, {})
        if issubclass(tp, BaseModel):
            return tp(**{n: sample(f.annotation, depth + 1, typevars)
                         for n, f in tp.model_fields.items()})
    raise TypeError(f"no sample for {tp!r}")


def _sample_dataclass(cls: type, depth: int, typevars: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name], depth + 1, typevars)
                  for f in dataclasses.fields(cls) if f.init})


@collector()
def collect_untyped(session):  # type: ignore[no-untyped-def]  # a connector bug: no type
    return [1, 2]


def test_a_snapshot_without_a_declared_type_is_not_kept_and_the_sync_goes_on(caplog):
    got = {collect_untyped: Collected(((None, [1, 2]),), True),
           collect_doors: Collected((("eu", [Door("a", "eu", True, True)]),), True)}
    pieces = pieces_of(got)
    assert list(pieces) == [collect_doors]
    assert "collect_untyped cannot be stored" in caplog.text


def test_retention_deletes_an_expired_snapshot_from_the_bucket_too(
        factory, connection_id, store_settings, moto_endpoint):
    sync(factory, connection_id, store_settings)
    long_ago = datetime.now(UTC) - timedelta(days=500)
    with factory() as s, s.begin():  # the estate was read long ago and is gone since
        s.execute(text("UPDATE snapshot_seen SET valid_from = :t, valid_to = :t"),
                  {"t": long_ago})
        s.execute(text("UPDATE collector_snapshot SET created_at = :t"), {"t": long_ago})
        s.execute(text("UPDATE evidence SET closed_at = now()"))
        keys = list(s.scalars(select(CollectorSnapshot.object_key)))
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert keys and set(keys) <= listed
    pruned = prune_history(factory, datetime.now(UTC), timedelta(days=400),
                           settings=store_settings)
    assert pruned.snapshots == len(keys)
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert not set(keys) & left
    assert table(factory, "collector_snapshot") == [] == table(factory, "snapshot_seen")
