"""The evidence store: upsert one check's results per (connection, check, resource) by content hash.

An unchanged result set costs one `check_state` write; a changed one writes only the rows that
changed, each with an `evidence_version` row; a resource that disappeared is closed, not deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection as PgConnection
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from connectors.base import Check
from engine import ledger
from engine.db import rowcount
from engine.models import ChangeKind, CheckState


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"evidence data holds a {type(value).__name__}, which is not JSON")


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8, so equal data hashes equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


@dataclass(frozen=True)
class Item:
    """One result ready to store: what was judged, and the hash of its canonical form."""

    resource_id: str
    resource_type: str
    status: str
    title: str
    data_json: str
    content_hash: str

    @classmethod
    def of(cls, resource_id: str, resource_type: str, status: str, title: str,
           data: Mapping[str, Any]) -> Item:
        data_json = canonical_json(data)
        digest = hashlib.sha256("\x00".join((status, resource_type, title, data_json)).encode())
        return cls(resource_id, resource_type, status, title, data_json, digest.hexdigest())


def set_hash(items: Sequence[Item]) -> str:
    """The hash of a whole result set: its sorted resource ids and content hashes."""
    digest = hashlib.sha256()
    for resource_id, content_hash in sorted((i.resource_id, i.content_hash) for i in items):
        digest.update(resource_id.encode() + b"\x00" + content_hash.encode() + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class WriteStats:
    """What one check's results did to the store."""

    unchanged: bool
    written: int = 0
    closed: int = 0


_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS evidence_stage (
    resource_id text PRIMARY KEY, resource_type text, status text, title text,
    data jsonb, content_hash text
) ON COMMIT DELETE ROWS
"""

_UPSERT = """
WITH written AS (
    INSERT INTO evidence AS e (account_id, connection_id, check_id, resource_id, resource_type,
                               status, title, data, content_hash, first_seen_at, last_changed_at,
                               run_id, check_version, snapshot_sha256)
    SELECT :account_id, :connection_id, :check_id, s.resource_id, s.resource_type,
           s.status::evidence_status, s.title, s.data, s.content_hash, :now, :now, :run_id,
           :check_version, :snapshot_sha256
    FROM evidence_stage s
    ON CONFLICT (connection_id, check_id, resource_id) DO UPDATE
       SET resource_type = excluded.resource_type, status = excluded.status,
           title = excluded.title, data = excluded.data, content_hash = excluded.content_hash,
           last_changed_at = excluded.last_changed_at, run_id = excluded.run_id,
           closed_at = NULL, check_version = excluded.check_version,
           snapshot_sha256 = excluded.snapshot_sha256
       WHERE e.content_hash <> excluded.content_hash OR e.closed_at IS NOT NULL
    RETURNING e.id, (xmax = 0) AS inserted, e.status, e.title, e.data, e.content_hash
)
INSERT INTO evidence_version (evidence_id, account_id, run_id, change, status, title, data,
                              content_hash, recorded_at, check_version, snapshot_sha256)
SELECT id, :account_id, :run_id,
       (CASE WHEN inserted THEN 'created' ELSE :change END)::evidence_change,
       status, title, data, content_hash, :now, :check_version, :snapshot_sha256
FROM written
"""

_CLOSE = """
WITH gone AS (
    UPDATE evidence e SET closed_at = :now, last_changed_at = :now, run_id = :run_id
    WHERE e.connection_id = :connection_id AND e.check_id = :check_id AND e.closed_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM evidence_stage s WHERE s.resource_id = e.resource_id)
    RETURNING e.id, e.status, e.title, e.data, e.content_hash
)
INSERT INTO evidence_version (evidence_id, account_id, run_id, change, status, title, data,
                              content_hash, recorded_at, check_version, snapshot_sha256)
SELECT id, :account_id, :run_id, 'closed'::evidence_change, status, title, data, content_hash,
       :now, :check_version, :snapshot_sha256
FROM gone
"""


def _stage(session: Session, items: Sequence[Item]) -> None:
    """COPY the items into a per-transaction temp table: the fastest way in for many rows."""
    session.execute(text(_STAGE))
    session.execute(text("TRUNCATE evidence_stage"))
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, PgConnection)
    with raw.cursor() as cur, cur.copy(
        "COPY evidence_stage (resource_id, resource_type, status, title, data, content_hash) "
        "FROM STDIN"
    ) as copy:
        for i in items:
            copy.write_row((i.resource_id, i.resource_type, i.status, i.title, i.data_json,
                            i.content_hash))


def store_check_results(session: Session, *, account_id: str, connection_id: str,
                        check_id: str, items: Sequence[Item], run_id: str | None,
                        now: datetime, check_version: int = 1,
                        snapshot_sha256: str | None = None,
                        change: ChangeKind = ChangeKind.CHANGED) -> WriteStats:
    """Make the stored evidence of one check equal `items`, writing only what changed.

    Rows that change record `check_version` and `snapshot_sha256` (what judged them, from
    what); the check state records those of this verification. `change` names what an
    updated row's version is (`rejudged` when the verdicts come from judging again)."""
    digest = set_hash(items)
    state = session.get(CheckState, (connection_id, check_id), with_for_update=True)
    if state is not None and state.set_hash == digest:
        state.last_verified_at, state.run_id = now, run_id
        state.check_version, state.snapshot_sha256 = check_version, snapshot_sha256
        return WriteStats(unchanged=True)

    params = {"account_id": account_id, "connection_id": connection_id, "check_id": check_id,
              "run_id": run_id, "now": now, "check_version": check_version,
              "snapshot_sha256": snapshot_sha256, "change": change.value}
    mark = ledger.version_mark(session)
    _stage(session, items)
    written = rowcount(session.execute(text(_UPSERT), params))
    closed = rowcount(session.execute(text(_CLOSE), params))
    ledger.append_versions(session, account_id=account_id, connection_id=connection_id,
                           check_id=check_id, run_id=run_id, now=now, after_id=mark)
    session.execute(
        insert(CheckState)
        .values(connection_id=connection_id, check_id=check_id, account_id=account_id,
                set_hash=digest, resource_count=len(items), last_verified_at=now, run_id=run_id,
                check_version=check_version, snapshot_sha256=snapshot_sha256)
        .on_conflict_do_update(
            index_elements=[CheckState.connection_id, CheckState.check_id],
            set_={"set_hash": digest, "resource_count": len(items), "last_verified_at": now,
                  "run_id": run_id, "check_version": check_version,
                  "snapshot_sha256": snapshot_sha256},
        )
    )
    return WriteStats(unchanged=False, written=max(written, 0), closed=max(closed, 0))


_CLOSE_REPLACED = """
WITH gone AS (
    UPDATE evidence e SET closed_at = :now, last_changed_at = :now, run_id = :run_id
    WHERE e.connection_id = :connection_id AND e.check_id = :check_id AND e.closed_at IS NULL
    RETURNING e.id, e.status, e.title, e.data, e.content_hash, e.check_version,
              e.snapshot_sha256
)
INSERT INTO evidence_version (evidence_id, account_id, run_id, change, status, title, data,
                              content_hash, recorded_at, check_version, snapshot_sha256)
SELECT id, :account_id, :run_id, 'closed'::evidence_change, status, title, data, content_hash,
       :now, check_version, snapshot_sha256
FROM gone
"""


def close_replaced(session: Session, *, account_id: str, connection_id: str,
                   checks: Sequence[Check], run_id: str | None, now: datetime) -> int:
    """Close the open evidence of check ids that the connector's checks `replace` and that it no
    longer declares, once a replacing check has stored results on this connection: each row
    gets a `closed` version (history stays readable under the old id) and the old id's check
    state goes, so the next sync finds nothing to do. Returns the rows closed. While the old id
    is still declared (a deprecated alias, kept for one release) its own results keep it."""
    declared = {c.id for c in checks}
    replacers: dict[str, set[str]] = {}
    for chk in checks:
        for old in chk.replaces:
            if old not in declared:
                replacers.setdefault(old, set()).add(chk.id)
    if not replacers:
        return 0
    stated = set(session.scalars(select(CheckState.check_id).where(
        CheckState.connection_id == connection_id,
        CheckState.check_id.in_({*replacers, *(n for s in replacers.values() for n in s)}))))
    closed = 0
    for old, new in sorted(replacers.items()):
        if old not in stated or not new & stated:
            continue
        mark = ledger.version_mark(session)
        closed += max(rowcount(session.execute(text(_CLOSE_REPLACED), {
            "account_id": account_id, "connection_id": connection_id, "check_id": old,
            "run_id": run_id, "now": now})), 0)
        ledger.append_versions(session, account_id=account_id, connection_id=connection_id,
                               check_id=old, run_id=run_id, now=now, after_id=mark)
        session.execute(delete(CheckState).where(CheckState.connection_id == connection_id,
                                                 CheckState.check_id == old))
    return closed
