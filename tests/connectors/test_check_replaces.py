"""`@check(replaces=...)`: a check names the ids it supersedes, so an old id can stay an alias."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import func, select
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
from engine import ledger, registry
from engine.as_of import list_evidence_at
from engine.db import Job, session_factory
from engine.frameworks import load_catalog
from engine.integrations import list_evidence
from engine.models import (
    ChangeKind,
    CheckState,
    Connection,
    Evidence,
    EvidenceVersion,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.settings import Settings
from engine.sync import request_sync, run_sync
from engine.tenancy import scope_to_account
from tests.engine import fake


class _Token(BaseModel):
    token: SecretStr


@collector()
def _nothing(session: object) -> list[str]:
    return []


def _declare(**kwargs: object):
    def judge(items: list[str]):
        """A check."""
        yield from (Result.of(i, passing=True, title=i) for i in items)

    return check(id="acme.repo.new_check", severity=Severity.LOW, resource_type="acme.repo",
                 remediation="Fix it.", needs=_nothing, **kwargs)(judge)


def test_a_check_records_the_ids_it_replaces():
    assert _declare(replaces=("acme.repo.old_check",)).replaces == ("acme.repo.old_check",)
    assert _declare().replaces == ()


@pytest.mark.parametrize("bad", [("not an id",), ("acme.repo.new_check",)])
def test_replacing_a_malformed_id_or_itself_fails_at_import(bad):
    with pytest.raises(TypeError, match="replaces"):
        _declare(replaces=bad)


# --- the engine honours `replaces` ---------------------------------------------------------
# One connector id, three releases: v1 judges `renamed.widget.sealed`; v2 splits it into
# `sealed_lid` and `sealed_base` and keeps the old id as a deprecated alias; v3 drops the alias.

SEALED = "renamed.widget.sealed"
WIDGETS = {"w1": (True, True), "w2": (True, False), "w3": (False, False)}  # (lid, base)
EXPLODE = {"on": False}


@collector()
def _widgets(session: object) -> dict[str, tuple[bool, bool]]:
    return dict(WIDGETS)


def _judge(name: str, holds):
    def judge(widgets: dict[str, tuple[bool, bool]]):
        """Widgets are sealed."""
        if EXPLODE["on"]:
            raise RuntimeError("boom")
        for widget, (lid, base) in sorted(widgets.items()):
            yield Result.of(f"widget:{widget}", passing=holds(lid, base), title=widget)

    judge.__name__ = name
    return judge


def _check(check_id: str, holds, **kwargs: object):
    return check(id=check_id, severity=Severity.LOW, resource_type="renamed.widget",
                 remediation="Seal it.", needs=_widgets, **kwargs)(_judge(check_id, holds))


OLD = _check(SEALED, lambda lid, base: lid and base)
LID = _check("renamed.widget.sealed_lid", lambda lid, base: lid, replaces=(SEALED,))
BASE = _check("renamed.widget.sealed_base", lambda lid, base: base, replaces=(SEALED,))


class _Renamed(Connector):
    id: ClassVar[str] = "renamed"
    name = "Renamed"
    category = Category.DEVOPS
    auth_type = AuthType.API_KEY
    icon = "renamed"
    credentials_model = _Token

    def verify(self) -> dict[str, Any]:
        return {}

    def session(self) -> dict[str, Any]:
        return {}


class V1(_Renamed):
    checks: ClassVar[tuple[Check, ...]] = (OLD,)


class V2(_Renamed):
    checks: ClassVar[tuple[Check, ...]] = (LID, BASE, OLD)  # the alias, for one release


class V3(_Renamed):
    checks: ClassVar[tuple[Check, ...]] = (LID, BASE)


@pytest.fixture
def release(settings: Settings, db: None, sent: list[Job]) -> Iterator[Callable[..., object]]:
    """Install one release of the connector (replacing the one installed before)."""

    def install(cls: type[Connector]) -> None:
        registry.unregister("renamed")
        registry.register(cls)

    yield install
    registry.unregister("renamed")


@pytest.fixture
def factory(settings: Settings, release) -> sessionmaker[Session]:
    release(V1)
    return session_factory(settings)


@pytest.fixture
def connection_id(factory: sessionmaker[Session], settings: Settings) -> str:
    return fake.add_connection(factory, settings, "renamed")


def sync(factory: sessionmaker[Session], connection_id: str) -> SyncRun:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
    run_sync(factory, run_id, worker="test")
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def evidence(factory: sessionmaker[Session], check_id: str) -> dict[str, tuple[str, bool]]:
    """resource -> (status, open) of the stored rows of one check id."""
    with factory() as s:
        return {r.resource_id: (r.status.value, r.closed_at is None) for r in s.scalars(
            select(Evidence).where(Evidence.check_id == check_id))}


def filtered(factory: sessionmaker[Session], check_id: str) -> set[tuple[str, str]]:
    """(check, resource) of the current evidence a filter naming `check_id` answers."""
    with scope_to_account(factory(), "acme") as s:
        page = list_evidence(s, "renamed", limit=200, offset=0, check_id=check_id)
    return {(row.check_id, row.resource_id) for row, _ in page.items}


def test_while_the_alias_is_declared_both_ids_run_and_a_filter_on_the_old_id_answers_both(
        release, factory, connection_id):
    assert sync(factory, connection_id).status == RunStatus.SUCCEEDED
    release(V2)
    assert sync(factory, connection_id).status == RunStatus.SUCCEEDED
    assert all(is_open for _, is_open in evidence(factory, SEALED).values())
    widgets = {f"widget:{w}" for w in WIDGETS}
    assert filtered(factory, SEALED) == {(c, r) for c in (SEALED, LID.id, BASE.id)
                                         for r in widgets}
    assert filtered(factory, LID.id) == {(LID.id, r) for r in widgets}  # a new id: itself
    with scope_to_account(factory(), "acme") as s:  # the same through ?as_of=
        page = list_evidence_at(s, "renamed", datetime.now(UTC), limit=200, offset=0,
                                check_id=SEALED)
    assert {(row.check_id, row.resource_id) for row in page.items} == filtered(factory, SEALED)


def test_once_the_alias_is_gone_the_old_rows_are_closed_with_versions_not_deleted(
        release, factory, connection_id):
    sync(factory, connection_id)
    before = evidence(factory, SEALED)
    assert before == {"widget:w1": ("passing", True), "widget:w2": ("failing", True),
                      "widget:w3": ("failing", True)}
    release(V3)
    assert sync(factory, connection_id).status == RunStatus.SUCCEEDED
    assert evidence(factory, SEALED) == {r: (status, False) for r, (status, _) in before.items()}
    with factory() as s:
        changes = s.execute(select(EvidenceVersion.change, func.count()).join(
            Evidence, Evidence.id == EvidenceVersion.evidence_id).where(
            Evidence.check_id == SEALED).group_by(EvidenceVersion.change)).tuples().all()
        state = s.get(CheckState, (connection_id, SEALED))
    assert dict(changes) == {ChangeKind.CREATED: 3, ChangeKind.CLOSED: 3}
    assert state is None  # nothing left to close: the next sync does not look again
    with factory() as s:  # the closing versions are on the account's ledger
        verdict = ledger.verify(s, "acme")
    assert verdict.broken is None and verdict.unrecorded_count == 0
    # a filter naming the old id answers the checks that replaced it
    widgets = {f"widget:{w}" for w in WIDGETS}
    assert filtered(factory, SEALED) == {(c, r) for c in (LID.id, BASE.id) for r in widgets}
    # an unchanged re-sync writes no version at all
    with factory() as s:
        versions = s.scalar(select(func.count()).select_from(EvidenceVersion))
    sync(factory, connection_id)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(EvidenceVersion)) == versions


def test_old_rows_stay_open_until_a_replacing_check_has_stored_results(
        release, factory, connection_id):
    sync(factory, connection_id)
    release(V3)
    EXPLODE["on"] = True  # both new checks crash: nothing new is stored
    try:
        run = sync(factory, connection_id)
    finally:
        EXPLODE["on"] = False
    assert run.status == RunStatus.FAILED
    assert all(is_open for _, is_open in evidence(factory, SEALED).values())


def test_a_mapping_naming_a_replaced_id_resolves_and_an_unmapped_old_id_serves_the_new_controls(
        tmp_path: Path):
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(
        "renamed.widget.sealed_lid:\n  soc2: [CC6.1]\n  iso27001: [A.8.5]\n"
        "renamed.widget.sealed_base:\n  soc2: [CC6.1]\n  iso27001: [A.8.9]\n")
    with_mappings = type("V3Mapped", (V3,), {"control_mappings": mappings})
    cat = load_catalog(connector_classes=[with_mappings])
    assert {c.key for c in cat.controls_for(SEALED)} == {
        "soc2-cc6.1", "iso27001-a.8.5", "iso27001-a.8.9"}
    mappings.write_text(mappings.read_text() + "renamed.widget.sealed:\n  soc2: [CC6.6]\n")
    cat = load_catalog(connector_classes=[with_mappings])
    assert [c.key for c in cat.controls_for(SEALED)] == ["soc2-cc6.6"]
    assert cat.resolve_check(SEALED) == (SEALED, LID.id, BASE.id)
