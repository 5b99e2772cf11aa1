"""The integrations API as it stood at a past instant (`?as_of=`): evidence, control results and
status, reconstructed from evidence versions, runs and the connection's created/disconnected
times. A time at which the integration had no connection answers an empty set.

Every function takes a session scoped to the caller's account (engine.tenancy); the raw SQL
binds the account explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import String

from engine.controls import ControlCount, status_of
from engine.frameworks import Control, catalog
from engine.models import (
    Connection,
    ConnectionStatus,
    EvidenceStatus,
    RunStatus,
    SyncRun,
)
from engine.registry import connectors, get_connector
from engine.tenancy import account_of


def connection_at(session: Session, integration_id: str, at: datetime) -> Connection | None:
    """The integration's connection that was live at `at` (created, not yet disconnected)."""
    get_connector(integration_id)
    return session.scalars(select(Connection).where(
        Connection.account_id == account_of(session), Connection.integration_id == integration_id,
        Connection.created_at <= at,
        or_(Connection.disconnected_at.is_(None), Connection.disconnected_at > at))
        .order_by(Connection.created_at.desc()).limit(1)).first()


@dataclass(frozen=True)
class EvidenceAt:
    """One evidence row as it stood at an instant: the version in force then."""

    evidence_id: int
    version_id: int
    connection_id: str
    check_id: str
    resource_id: str
    resource_type: str
    status: EvidenceStatus
    title: str
    data: dict[str, Any]
    sha256: str
    recorded_at: datetime
    first_seen_at: datetime
    controls: tuple[Control, ...]


_AT = """
FROM evidence e
JOIN LATERAL (
    SELECT v.id, v.change, v.status, v.title, v.data, v.content_hash, v.recorded_at
    FROM evidence_version v
    WHERE v.evidence_id = e.id AND v.recorded_at <= :at
    ORDER BY v.recorded_at DESC, v.id DESC
    LIMIT 1
) v ON TRUE
WHERE e.account_id = :account_id AND e.connection_id = ANY(:connections)
  AND e.first_seen_at <= :at AND v.change <> 'closed'
  AND (CAST(:check_ids AS text[]) IS NULL OR e.check_id = ANY(:check_ids))
  AND (CAST(:resource_id AS text) IS NULL OR e.resource_id = :resource_id)
  AND (CAST(:status AS text) IS NULL OR v.status = CAST(:status AS evidence_status))
"""
_PAGE = text(f"""
SELECT e.id, e.connection_id, e.check_id, e.resource_id, e.resource_type, e.first_seen_at,
       v.id AS version_id, v.status, v.title, v.data, v.content_hash, v.recorded_at
{_AT}
ORDER BY e.check_id, e.resource_id, e.id
LIMIT :limit OFFSET :offset
""").bindparams(bindparam("connections", type_=ARRAY(String)),
                bindparam("check_ids", type_=ARRAY(String)))
_TOTAL = text(f"SELECT count(*) {_AT}").bindparams(bindparam("connections", type_=ARRAY(String)),
                                                  bindparam("check_ids", type_=ARRAY(String)))
_COUNTS = text(f"""
SELECT e.check_id, v.status, count(*) AS n {_AT}
GROUP BY e.check_id, v.status
""").bindparams(bindparam("connections", type_=ARRAY(String)),
                bindparam("check_ids", type_=ARRAY(String)))


@dataclass(frozen=True)
class EvidencePageAt:
    items: list[EvidenceAt]
    total: int


def evidence_at(session: Session, account_id: str, connection_ids: Sequence[str],
                at: datetime, *, limit: int, offset: int = 0,
                status: EvidenceStatus | None = None, check_id: str | None = None,
                resource_id: str | None = None) -> EvidencePageAt:
    """The evidence of the account's connections as it stood at `at`, ordered by check and
    resource."""
    if not connection_ids:
        return EvidencePageAt([], 0)
    # a check named by `replaces=` answers its own history and its replacements' rows
    check_ids = list(catalog().resolve_check(check_id)) if check_id else None
    params = {"account_id": account_id, "connections": list(connection_ids), "at": at,
              "check_ids": check_ids, "resource_id": resource_id,
              "status": status.value if status else None}
    rows = session.execute(_PAGE, {**params, "limit": limit, "offset": offset}).all()
    total = session.scalar(_TOTAL, params) or 0
    cat = catalog()
    return EvidencePageAt([EvidenceAt(
        r.id, r.version_id, r.connection_id, r.check_id, r.resource_id, r.resource_type,
        EvidenceStatus(r.status), r.title, r.data, r.content_hash, r.recorded_at,
        r.first_seen_at, cat.controls_for(r.check_id)) for r in rows], int(total))


def list_evidence_at(session: Session, integration_id: str, at: datetime, *, limit: int,
                     offset: int, status: EvidenceStatus | None = None,
                     check_id: str | None = None) -> EvidencePageAt:
    """GET …/evidence?as_of=: the evidence of the connection live then (none: empty)."""
    conn = connection_at(session, integration_id, at)
    return evidence_at(session, account_of(session), [conn.id] if conn else [], at,
                       limit=limit, offset=offset, status=status, check_id=check_id)


def controls_at(session: Session, integration_id: str,
                at: datetime) -> tuple[bool, list[ControlCount]]:
    """GET …/controls?as_of=: the controls the integration's checks serve, with results rolled
    up from the evidence of the connection live at `at` (pushed evidence is not counted)."""
    cls = get_connector(integration_id)
    conn = connection_at(session, integration_id, at)
    check_ids = {c.id for c in cls.checks}
    counts: dict[tuple[str, str], int] = {}
    if conn is not None:
        for r in session.execute(_COUNTS, {
                "account_id": account_of(session), "connections": [conn.id], "at": at,
                "check_ids": None, "resource_id": None, "status": None}):
            counts[(r.check_id, r.status)] = int(r.n)
    return conn is not None, _roll_up(check_ids, counts)


def _roll_up(check_ids: Iterable[str], counts: dict[tuple[str, str], int]) -> list[ControlCount]:
    """Every control the checks serve, with the (check, status) counts rolled up."""
    cat = catalog()
    rolled: dict[str, tuple[Control, list[int], list[str]]] = {}
    for check_id in sorted(check_ids):
        for control in cat.controls_for(check_id):
            _, tally, checks = rolled.setdefault(control.key, (control, [0, 0, 0], []))
            checks.append(check_id)
            for n, st in enumerate(("passing", "failing", "error")):
                tally[n] += counts.get((check_id, st), 0)
    out = [ControlCount(control, status_of(*tally), *tally, checks=tuple(checks))
           for control, tally, checks in rolled.values()]
    return sorted(out, key=lambda c: c.control.sort_key)


@dataclass(frozen=True)
class AccountControlsAt:
    """The account's controls as they stood at an instant (the console's `?as_of=`)."""

    at: datetime
    integrations: tuple[str, ...]
    """The integrations with a connection live then (none: nothing was connected yet)."""
    controls: list[ControlCount]
    failing: dict[str, list[EvidenceAt]]
    """The failing or erroring resources then, by check (the first `failing_limit`)."""


def account_controls_at(session: Session, at: datetime, *, framework_id: str | None = None,
                        failing_limit: int = 200) -> AccountControlsAt:
    """Every control (of `framework_id`, if given) served by the integrations connected at `at`,
    rolled up from the evidence of the connections live then (set-based statements over all of
    them)."""
    account_id = account_of(session)
    live = session.execute(select(Connection.id, Connection.integration_id).where(
        Connection.account_id == account_id, Connection.created_at <= at,
        or_(Connection.disconnected_at.is_(None), Connection.disconnected_at > at))).all()
    known = connectors()
    live = [r for r in live if r.integration_id in known]
    if not live:
        return AccountControlsAt(at, (), [], {})
    ids = [r.id for r in live]
    counts: dict[tuple[str, str], int] = {}
    for r in session.execute(_COUNTS, {"account_id": account_id, "connections": ids, "at": at,
                                       "check_ids": None, "resource_id": None, "status": None}):
        counts[(r.check_id, r.status)] = counts.get((r.check_id, r.status), 0) + int(r.n)
    integrations = sorted({r.integration_id for r in live})
    check_ids = {c.id for i in integrations for c in known[i].checks}
    failing: dict[str, list[EvidenceAt]] = {}
    for status in (EvidenceStatus.FAILING, EvidenceStatus.ERROR):
        for item in evidence_at(session, account_id, ids, at, limit=failing_limit,
                                status=status).items:
            failing.setdefault(item.check_id, []).append(item)
    controls = [c for c in _roll_up(check_ids, counts)
                if framework_id is None or c.control.framework_id == framework_id]
    return AccountControlsAt(at, tuple(integrations), controls, failing)


@dataclass(frozen=True)
class StatusAt:
    """The integration's connection as it stood at an instant."""

    connection: Connection | None
    """Live then, else the last one disconnected before then, else the first one ever."""
    status: str
    status_message: str | None
    last_sync: datetime | None
    needs_restart: bool
    history: list[SyncRun]


def status_at(session: Session, integration_id: str, at: datetime,
              history_limit: int) -> StatusAt | None:
    """GET …/status?as_of=: status and runs finished by `at` (None: never connected)."""
    get_connector(integration_id)
    conns = session.scalars(select(Connection).where(
        Connection.account_id == account_of(session),
        Connection.integration_id == integration_id).order_by(Connection.created_at)).all()
    if not conns:
        return None
    before = [c for c in conns if c.created_at <= at]
    if not before:
        return StatusAt(conns[0], "not_connected", "not connected yet at that time", None,
                        False, [])
    live = [c for c in before if c.disconnected_at is None or c.disconnected_at > at]
    conn = live[-1] if live else before[-1]
    runs = list(session.scalars(select(SyncRun).where(
        SyncRun.connection_id == conn.id, SyncRun.finished_at <= at)
        .order_by(SyncRun.finished_at.desc(), SyncRun.id).limit(history_limit)))
    if not live:
        return StatusAt(conn, ConnectionStatus.DISCONNECTED.value, "disconnected by the account",
                        _last_good(runs), False, runs)
    finished = [r for r in runs if r.status is not RunStatus.CANCELLED]
    if finished and finished[0].status is RunStatus.FAILED:
        errors = "; ".join(str(e.get("message")) for e in finished[0].errors)
        state, message = ConnectionStatus.ERROR.value, errors or "the last sync failed"
    elif _last_good(runs) is not None:
        state, message = ConnectionStatus.ACTIVE.value, None
    else:
        state, message = ConnectionStatus.PENDING.value, "no sync had completed yet"
    restart = (conn.config_changed_at is not None and conn.config_changed_at <= at
               and not any(r.started_at and r.started_at >= conn.config_changed_at
                           and r.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
                           for r in runs))
    return StatusAt(conn, state, message, _last_good(runs), restart, runs)


def _last_good(runs: Sequence[SyncRun]) -> datetime | None:
    return next((r.finished_at for r in runs
                 if r.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)), None)
