"""Stored snapshots: what each collector read, kept content-addressed so checks can judge it again.

A snapshot is the collector's typed value (a scoped collector's: one per scope; a sharded
collector's: one per shard) as canonical JSON: pydantic's JSON form of the collector's declared
return type, keys sorted, no whitespace, UTF-8. It round-trips: `restore` validates the JSON
back into that type, so a check runs on a stored snapshot exactly as on a fresh one. Its key is
the SHA-256 of that JSON; its bytes are zstandard-compressed, in Postgres (bytea) or, with
object storage configured, in the bucket under `snapshots/<account>/<sha256>.json.zst`.

A sync writes a snapshot only when its hash differs from the one current for that
(connection, collector, scope): an unchanged re-sync reads the current hashes (one query) and
writes nothing. A check that read one snapshot names that snapshot's hash; one that read
several (regions, shards, collectors) names the hash of a manifest listing them, stored the
same way (kind `manifest`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import zstandard
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import TIMESTAMP, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from connectors.base import WHOLE, Collector, Shard
from connectors.runner import Collected
from engine.models import Audit, CollectorSnapshot, Evidence, SnapshotKind, SnapshotSeen
from engine.settings import Settings
from engine.storage import ObjectMissing, Store, is_configured, open_store

__all__ = [
    "Piece",
    "SnapshotStats",
    "canonical",
    "input_digest",
    "load_snapshot",
    "pieces_of",
    "prune_snapshots",
    "record_collected",
    "restore",
    "scope_key",
    "store_manifests",
    "store_snapshots",
]

log = logging.getLogger(__name__)

LEVEL = 3
"""zstandard's level: its default, a good ratio at hundreds of MB/s."""


@lru_cache(maxsize=1024)
def _adapter(collector: Collector[Any]) -> TypeAdapter[Any]:
    """The pydantic adapter of the collector's declared return type (its snapshot type)."""
    hints = typing.get_type_hints(collector.fn)
    if "return" not in hints:
        raise TypeError(f"collector {collector.name} declares no return type: its snapshot "
                        "cannot be stored and read back")
    return TypeAdapter(hints["return"])


def canonical(collector: Collector[Any], value: Any) -> bytes:
    """The snapshot as canonical JSON: one spelling per value, so equal reads hash equal.

    pydantic turns the value into plain data by its declared type; orjson writes it with
    sorted keys and no whitespace (sets as sorted lists: their order varies by process)."""
    return orjson.dumps(_adapter(collector).dump_python(value), default=_plain,
                        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: sets, sorted by their members' JSON; the rest as
    pydantic writes it to JSON (Decimal, bytes, ...)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=lambda v: orjson.dumps(v, default=_plain,
                                                        option=orjson.OPT_SORT_KEYS))
    return to_jsonable_python(value)


def restore(collector: Collector[Any], raw: bytes) -> Any:
    """A stored snapshot's canonical JSON back into the collector's snapshot type."""
    return _adapter(collector).validate_python(orjson.loads(raw))


@dataclass(frozen=True)
class Piece:
    """One stored unit: what `collector` read for `scope` (a shard's scope names it)."""

    collector: str
    scope: str
    sha256: str
    raw: bytes | None = None
    """The canonical JSON, while it may still need storing (None once read from a row)."""


def scope_key(scope: str | None, shard: Shard, shardable: bool) -> str:
    """How a piece's scope is stored: the provider's scope (`global` when unscoped), and for a
    shardable collector read by a part of a fanned-out run, which shard of how many."""
    key = scope or "global"
    return f"{key}@{shard.index}/{shard.count}" if shardable and shard.count > 1 else key


def pieces_of(collected: Mapping[Collector[Any], Collected],
              shard: Shard = WHOLE) -> dict[Collector[Any], list[Piece]]:
    """Each collector's pieces (one per scope it read), encoded and hashed. A collector whose
    snapshot has no JSON form (its return type unresolvable or unserialisable: a connector
    bug) is left out and logged; its checks' evidence then names no snapshot."""
    found: dict[Collector[Any], list[Piece]] = {}
    for coll, got in collected.items():
        pieces = []
        try:
            for scope, value in got.pieces:
                raw = canonical(coll, value)
                pieces.append(Piece(coll.name, scope_key(scope, shard, coll.shardable),
                                    hashlib.sha256(raw).hexdigest(), raw))
        except Exception:  # noqa: BLE001 - the sync goes on; the snapshot is not kept
            log.warning("the snapshot of collector %s cannot be stored", coll.name,
                        exc_info=True)
            continue
        found[coll] = sorted(pieces, key=lambda p: p.scope)
    return found


def input_digest(pieces: Iterable[Piece]) -> tuple[str | None, bytes | None]:
    """The hash a check's results name: its one snapshot's, or its manifest's (and the
    manifest's canonical JSON, to store) when it read several. (None, None): it read nothing."""
    listed = sorted({(p.collector, p.scope, p.sha256) for p in pieces})
    if not listed:
        return None, None
    if len(listed) == 1:
        return listed[0][2], None
    raw = json.dumps([list(p) for p in listed], separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest(), raw


@dataclass
class SnapshotStats:
    """What storing one run's snapshots wrote."""

    snapshots: int = 0
    """New snapshot rows (content not stored before for the account)."""
    stored_bytes: int = 0
    """Compressed bytes those rows (or objects) hold."""
    intervals: int = 0
    """Validity rows opened (a piece's hash changed, or a new scope)."""
    closed: int = 0
    """Validity rows closed (changed, or the scope is gone)."""


def _owned_elsewhere(scope: str, shard: Shard) -> bool:
    """Whether a current piece's scope belongs to another shard of the same split (so this
    part must not close it)."""
    _, sep, which = scope.rpartition("@")
    if not sep or shard.count <= 1:
        return False
    index, _, count = which.partition("/")
    return count == str(shard.count) and index != str(shard.index)


def store_snapshots(session: Session, settings: Settings, *, account_id: str,
                    connection_id: str, run_id: str | None, now: datetime,
                    pieces: Mapping[Collector[Any], Sequence[Piece]],
                    complete: Iterable[Collector[Any]] = (), shard: Shard = WHOLE,
                    before_write: Callable[[], None] | None = None) -> SnapshotStats:
    """Record what the collectors read: the pieces whose hash differs from the current one
    are stored (if the account has no such content yet) and their validity opened, the old
    one's closed. For collectors in `complete` (every scope read), a current scope that was
    not read this time (a region gone) is closed too. Unchanged: one read, no write.
    `before_write` runs once before the first write (a lease's fence)."""
    names = {coll.name for coll in pieces}
    if not names:
        return SnapshotStats()
    current = {(row.collector, row.scope): row for row in session.scalars(
        select(SnapshotSeen).where(SnapshotSeen.connection_id == connection_id,
                                   SnapshotSeen.collector.in_(names),
                                   SnapshotSeen.valid_to.is_(None)))}
    changed = [p for ps in pieces.values() for p in ps
               if (old := current.get((p.collector, p.scope))) is None or old.sha256 != p.sha256]
    read = {(p.collector, p.scope) for ps in pieces.values() for p in ps}
    whole = {coll.name for coll in complete}
    gone = [row for key, row in current.items() if key not in read and key[0] in whole
            and not _owned_elsewhere(row.scope, shard)]
    stats = SnapshotStats()
    if not changed and not gone:
        return stats
    if before_write is not None:
        before_write()
    stats.snapshots, stats.stored_bytes = _store_bodies(
        session, settings, account_id, now,
        {p.sha256: p.raw for p in changed if p.raw is not None}, SnapshotKind.SNAPSHOT)
    closing = [current[(p.collector, p.scope)].id for p in changed
               if (p.collector, p.scope) in current] + [row.id for row in gone]
    if closing:
        session.execute(update(SnapshotSeen).where(SnapshotSeen.id.in_(closing))
                        .values(valid_to=now).execution_options(synchronize_session=False))
    if changed:
        session.execute(insert(SnapshotSeen), [
            {"account_id": account_id, "connection_id": connection_id, "collector": p.collector,
             "scope": p.scope, "sha256": p.sha256, "valid_from": now, "run_id": run_id}
            for p in changed])
    stats.intervals, stats.closed = len(changed), len(closing)
    return stats


def store_manifests(session: Session, settings: Settings, *, account_id: str, now: datetime,
                    manifests: Mapping[str, bytes]) -> int:
    """Store the manifests (sha256 → canonical JSON) the account does not have yet."""
    count, _ = _store_bodies(session, settings, account_id, now, dict(manifests),
                             SnapshotKind.MANIFEST)
    return count


def _store_bodies(session: Session, settings: Settings, account_id: str, now: datetime,
                  bodies: dict[str, bytes], kind: SnapshotKind) -> tuple[int, int]:
    """Insert the bodies the account lacks, compressed; with object storage, the bytes go to
    the bucket first and the row keeps the key. Returns (rows written, compressed bytes)."""
    if not bodies:
        return 0, 0
    have = set(session.scalars(select(CollectorSnapshot.sha256).where(
        CollectorSnapshot.account_id == account_id,
        CollectorSnapshot.sha256.in_(list(bodies)))))
    missing = {sha: raw for sha, raw in bodies.items() if sha not in have}
    if not missing:
        return 0, 0
    store = open_store(settings) if is_configured(settings) else None
    compressor = zstandard.ZstdCompressor(level=LEVEL)
    rows, total = [], 0
    for sha, raw in missing.items():
        packed = compressor.compress(raw)
        key = None
        if store is not None:
            key = object_key(account_id, sha)
            store.put(key, io.BytesIO(packed), "application/zstd")
        rows.append({"account_id": account_id, "sha256": sha, "kind": kind, "size": len(raw),
                     "stored_size": len(packed), "body": None if key else packed,
                     "object_key": key, "created_at": now})
        total += len(packed)
    written = session.execute(
        insert(CollectorSnapshot).on_conflict_do_nothing()
        .returning(CollectorSnapshot.sha256), rows).all()
    return len(written), total


def object_key(account_id: str, sha256: str) -> str:
    return f"snapshots/{account_id}/{sha256}.json.zst"


def load_snapshots(session: Session, settings: Settings, account_id: str,
                   hashes: Iterable[str]) -> dict[str, bytes]:
    """The canonical JSON of stored snapshots (or manifests), by hash; a hash not stored (or
    whose object is gone from the bucket) is left out."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    rows = session.execute(select(CollectorSnapshot.sha256, CollectorSnapshot.body,
                                  CollectorSnapshot.object_key).where(
        tuple_(CollectorSnapshot.account_id, CollectorSnapshot.sha256).in_(
            [(account_id, sha) for sha in wanted]))).all()
    decompressor = zstandard.ZstdDecompressor()
    store: Store | None = None
    found: dict[str, bytes] = {}
    for sha, body, key in rows:
        if body is None and key is not None:
            store = store or open_store(settings)
            try:
                body = store.read(key)
            except ObjectMissing:
                continue
        if body is not None:
            found[sha] = decompressor.decompress(body)
    return found


def load_snapshot(session: Session, settings: Settings, account_id: str,
                  sha256: str) -> bytes | None:
    """One stored snapshot's canonical JSON, or None."""
    return load_snapshots(session, settings, account_id, [sha256]).get(sha256)


def record_collected(session: Session, settings: Settings, *, account_id: str,
                     connection_id: str, run_id: str | None, now: datetime,
                     collected: Mapping[Collector[Any], Collected], shard: Shard = WHOLE,
                     manifest_needs: Iterable[Sequence[Collector[Any]]] = (),
                     before_write: Callable[[], None] | None = None,
                     ) -> tuple[dict[Collector[Any], list[Piece]], SnapshotStats]:
    """Keep what a sync's collectors read (`store_snapshots`) and the manifests of the checks
    reading several pieces (`manifest_needs`: each such check's collectors); returns the
    pieces by collector, so each check's results can name their input."""
    pieces = pieces_of(collected, shard)
    stats = store_snapshots(session, settings, account_id=account_id,
                            connection_id=connection_id, run_id=run_id, now=now, pieces=pieces,
                            complete=[c for c, got in collected.items() if got.complete],
                            shard=shard, before_write=before_write)
    manifests = {}
    for needs in manifest_needs:
        digest, raw = input_digest(p for coll in needs for p in pieces.get(coll, ()))
        if digest is not None and raw is not None:
            manifests[digest] = raw
    if manifests:
        stats.snapshots += store_manifests(session, settings, account_id=account_id, now=now,
                                           manifests=manifests)
    return pieces, stats


def prune_snapshots(session: Session, settings: Settings, cutoff: datetime, now: datetime,
                    batch: int = 5000) -> int:
    """Forget snapshot intervals that ended before `cutoff`, unless they overlap an audit's
    period (its period_start..period_end, else created_at..completed_at, or now while open),
    then delete (up to `batch`) stored snapshots created before `cutoff` that nothing needs:
    no interval left names them, no current evidence was judged from them (directly or
    through a manifest), and no kept interval is a piece of them (a manifest). Returns the
    snapshots deleted; their objects are deleted from the bucket first."""
    start = func.coalesce(func.cast(Audit.period_start, TIMESTAMP(timezone=True)),
                          Audit.created_at)
    end = func.coalesce(func.cast(Audit.period_end, TIMESTAMP(timezone=True)),
                        Audit.completed_at, now)
    in_audit = select(Audit.id).where(
        Audit.account_id == SnapshotSeen.account_id, start <= SnapshotSeen.valid_to,
        SnapshotSeen.valid_from <= end).exists()
    session.execute(delete(SnapshotSeen).where(
        SnapshotSeen.valid_to.is_not(None), SnapshotSeen.valid_to < cutoff, ~in_audit)
        .execution_options(synchronize_session=False))
    candidates = session.execute(
        select(CollectorSnapshot.account_id, CollectorSnapshot.sha256, CollectorSnapshot.kind,
               CollectorSnapshot.object_key)
        .where(CollectorSnapshot.created_at < cutoff,
               ~select(SnapshotSeen.id).where(
                   SnapshotSeen.account_id == CollectorSnapshot.account_id,
                   SnapshotSeen.sha256 == CollectorSnapshot.sha256).exists())
        .limit(batch)).all()
    if not candidates:
        return 0
    accounts = {row.account_id for row in candidates}
    current = set(session.execute(
        select(Evidence.account_id, Evidence.snapshot_sha256).distinct()
        .where(Evidence.account_id.in_(accounts), Evidence.closed_at.is_(None),
               Evidence.snapshot_sha256.is_not(None))).tuples())
    kept = set(current)
    for account_id in accounts:  # the pieces of the manifests current evidence names
        manifests = session.scalars(select(CollectorSnapshot.sha256).where(
            CollectorSnapshot.account_id == account_id,
            CollectorSnapshot.kind == SnapshotKind.MANIFEST,
            CollectorSnapshot.sha256.in_([sha for acc, sha in current if acc == account_id])))
        for raw in load_snapshots(session, settings, account_id, manifests).values():
            kept.update((account_id, piece[2]) for piece in json.loads(raw))
    doomed = [row for row in candidates if (row.account_id, row.sha256) not in kept]
    keys = [row.object_key for row in doomed if row.object_key]
    if keys:
        open_store(settings).delete_many(keys)
    for account_id in {row.account_id for row in doomed}:
        session.execute(delete(CollectorSnapshot).where(
            CollectorSnapshot.account_id == account_id,
            CollectorSnapshot.sha256.in_([r.sha256 for r in doomed
                                          if r.account_id == account_id])))
    return len(doomed)

