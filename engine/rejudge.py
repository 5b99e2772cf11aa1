"""Judge the past again: today's check code over the stored snapshots, with no provider call.

For each check of each connection, every distinct state of the snapshots it reads (each
interval in which none of its collectors' snapshots changed, since a date) is restored and
judged by the check as it is declared today. Its verdicts are compared with those recorded
then: the evidence versions as they stood at the end of that interval, or a judgement that
already superseded them. The verdicts that differ are reported (per check, per resource, per
interval); `apply` records them: a `judgement` row for each (with the check versions of both;
the old verdict stays in evidence_version), and for the current interval new evidence versions
(change `rejudged`) written as a sync would have written them.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from connectors.base import Check, Collector, Connector, Result, Status
from connectors.runner import judge_stored
from engine import ledger
from engine.db import Job
from engine.errors import InvalidInput, NotFound
from engine.evidence import Item, store_check_results
from engine.models import (
    ChangeKind,
    Connection,
    Evidence,
    EvidenceVersion,
    Judgement,
    LedgerKind,
    SnapshotSeen,
)
from engine.registry import get_connector
from engine.settings import Settings
from engine.snapshots import Piece, input_digest, load_snapshots, restore, store_manifests

__all__ = ["Change", "RejudgeReport", "describe", "rejudge", "rejudge_job"]


@dataclass(frozen=True)
class Change:
    """One verdict that today's check reaches differently on a past state of the snapshots."""

    connection_id: str
    check_id: str
    resource_id: str
    valid_from: datetime
    valid_to: datetime | None
    """The interval in which the snapshots were these (None: still current)."""
    old_status: str | None
    """What was recorded then (None: the resource was not judged)."""
    new_status: str | None
    old_check_version: int | None
    new_check_version: int
    title: str | None
    snapshot_sha256: str

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["valid_from"] = self.valid_from.isoformat()
        out["valid_to"] = self.valid_to.isoformat() if self.valid_to else None
        return out


@dataclass
class RejudgeReport:
    """What a rejudge found (and, with apply, recorded)."""

    changes: list[Change] = field(default_factory=list)
    connections: int = 0
    checks: int = 0
    intervals: int = 0
    """Snapshot states judged (each check's distinct intervals)."""
    failures: list[str] = field(default_factory=list)
    """Checks that raised on a stored snapshot (today's code cannot read it), and why."""
    applied: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"changes": [c.as_json() for c in self.changes], "connections": self.connections,
                "checks": self.checks, "intervals": self.intervals, "failures": self.failures,
                "applied": self.applied}


@dataclass(frozen=True)
class _Recorded:
    status: str
    check_version: int | None


def rejudge_job(account_id: str | None, connection_id: str | None = None,
                check_id: str | None = None, since: datetime | None = None,
                apply: bool = False) -> Job:
    """The Celery job (task `rejudge.run`, queue `rejudge`) running `rejudge` on a worker;
    its arguments are strings, "" for none given."""
    return Job("rejudge.run", (account_id or "", connection_id or "", check_id or "",
                               since.isoformat() if since else "", "apply" if apply else ""),
               queue="rejudge")


def rejudge(session: Session, settings: Settings, *, account_id: str | None = None,
            connection_id: str | None = None, check_id: str | None = None,
            since: datetime | None = None, apply: bool = False, now: datetime | None = None,
            connector_of: Callable[[str], type[Connector]] = get_connector) -> RejudgeReport:
    """Judge the stored snapshots of an account's connections (or one connection) again.

    Reads no provider. Raises NotFound for a connection not of the account, InvalidInput for a
    check no connection in scope declares. Does not commit.
    """
    if account_id is None and connection_id is None:
        raise InvalidInput("name an account or a connection to judge again",
                           code="invalid_scope")
    now = now or datetime.now(UTC)
    query = select(Connection).order_by(Connection.created_at, Connection.id)
    if account_id is not None:
        query = query.where(Connection.account_id == account_id)
    if connection_id is not None:
        query = query.where(Connection.id == connection_id)
    connections = list(session.scalars(query))
    if connection_id is not None and not connections:
        raise NotFound(f"no connection {connection_id}" + (
            f" in account {account_id}" if account_id else ""), code="connection_not_found")
    report = RejudgeReport(applied=apply)
    known = False
    for conn in connections:
        checks = [c for c in connector_of(conn.integration_id).checks
                  if check_id is None or c.id == check_id]
        known = known or bool(checks)
        if not checks:
            continue
        report.connections += 1
        seen = _seen(session, conn.id, since)
        plans = [(chk, _states(chk, seen, since)) for chk in checks
                 if any(coll.name in seen for coll in chk.needs)]
        store = _load(session, settings, conn, [chk.id for chk, _ in plans],
                      {r.sha256 for _, states in plans for _, _, rows in states for r in rows})
        for chk, states in plans:
            _rejudge_check(session, settings, conn, chk, states, store, now, apply, report)
    if check_id is not None and not known:
        raise InvalidInput(f"no connection in scope has a check {check_id}",
                           code="unknown_check")
    return report


def _seen(session: Session, connection_id: str,
          since: datetime | None) -> dict[str, list[SnapshotSeen]]:
    rows = session.scalars(
        select(SnapshotSeen)
        .where(SnapshotSeen.connection_id == connection_id,
               *([or_(SnapshotSeen.valid_to.is_(None), SnapshotSeen.valid_to > since)]
                 if since else []))
        .order_by(SnapshotSeen.valid_from, SnapshotSeen.id))
    found: dict[str, list[SnapshotSeen]] = defaultdict(list)
    for row in rows:
        found[row.collector].append(row)
    return found


def _intervals(rows: Sequence[SnapshotSeen],
               since: datetime | None) -> list[tuple[datetime, datetime | None]]:
    """Each distinct state of `rows`, from one change to the next; with `since`, those that
    ended after it (the one current at `since` keeps its own start, so a judgement of it is
    found again whatever `since` a later rejudge is given)."""
    points = sorted({r.valid_from for r in rows} | {r.valid_to for r in rows if r.valid_to})
    if since is not None:
        before = [p for p in points if p <= since]
        points = before[-1:] + [p for p in points if p > since]
    return [(start, points[n + 1] if n + 1 < len(points) else None)
            for n, start in enumerate(points)]


State = tuple[datetime, datetime | None, list[SnapshotSeen]]


def _states(chk: Check, seen: dict[str, list[SnapshotSeen]],
            since: datetime | None) -> list[State]:
    """Each state of the snapshots `chk` reads (start, end, the pieces current then) in
    which every one of its collectors had a snapshot."""
    rows = [r for coll in chk.needs for r in seen.get(coll.name, ())]
    states = []
    for start, end in _intervals(rows, since):
        pieces = [r for r in rows if r.valid_from <= start and (r.valid_to is None
                                                                 or r.valid_to > start)]
        if {r.collector for r in pieces} == {c.name for c in chk.needs}:
            states.append((start, end, pieces))
    return states


@dataclass
class _Store:
    """What a connection's rejudge reads once: its stored snapshots (restored once each) and
    the recorded verdicts of its checks."""

    bodies: dict[str, bytes]
    versions: dict[str, list[Any]]
    judged: dict[str, list[Judgement]]
    values: dict[tuple[str, str], Any] = field(default_factory=dict)

    def value(self, coll: Collector[Any], sha256: str) -> Any:
        key = (coll.name, sha256)
        if key not in self.values:
            self.values[key] = restore(coll, self.bodies[sha256])
        return self.values[key]


def _load(session: Session, settings: Settings, conn: Connection, check_ids: list[str],
          hashes: set[str]) -> _Store:
    versions: dict[str, list[Any]] = defaultdict(list)
    for row in session.execute(
            select(Evidence.check_id, Evidence.resource_id, EvidenceVersion.recorded_at,
                   EvidenceVersion.change, EvidenceVersion.status,
                   EvidenceVersion.check_version)
            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
            .where(Evidence.connection_id == conn.id, Evidence.check_id.in_(check_ids))
            .order_by(EvidenceVersion.recorded_at, EvidenceVersion.id)):
        versions[row.check_id].append(row)
    judged: dict[str, list[Judgement]] = defaultdict(list)
    for j in session.scalars(select(Judgement).where(
            Judgement.connection_id == conn.id, Judgement.check_id.in_(check_ids))
            .order_by(Judgement.id)):
        judged[j.check_id].append(j)
    return _Store(load_snapshots(session, settings, conn.account_id, hashes), versions, judged)


def _rejudge_check(session: Session, settings: Settings, conn: Connection, chk: Check,
                   states: list[State], store: _Store, now: datetime, apply: bool,
                   report: RejudgeReport) -> None:
    report.checks += 1
    recorded = _recorded(store.versions.get(chk.id, []), store.judged.get(chk.id, []),
                         [end or now for _, end, _ in states], [start for start, _, _ in states])
    for (start, end, pieces), before in zip(states, recorded, strict=True):
        if any(r.sha256 not in store.bodies for r in pieces):
            report.failures.append(f"{chk.id} from {start.isoformat()}: a snapshot it read "
                                   "is no longer stored")
            continue
        report.intervals += 1
        try:
            results = _judge(chk, pieces, store)
        except Exception as exc:  # noqa: BLE001 - today's code on an old snapshot: reported
            report.failures.append(f"{chk.id} from {start.isoformat()}: "
                                   f"{exc.__class__.__name__}: {exc}")
            continue
        digest, manifest = input_digest(Piece(r.collector, r.scope, r.sha256) for r in pieces)
        assert digest is not None  # noqa: S101 - every state has pieces
        changes = _compare(conn.id, chk, start, end, digest, before, results)
        report.changes.extend(changes)
        if apply and changes:
            _record(session, settings, conn, chk, changes, results, end is None, digest,
                    manifest, now)


def _judge(chk: Check, pieces: Sequence[SnapshotSeen], store: _Store) -> dict[str, Result]:
    """The check on one state's snapshots. Pieces of a sharded read are judged shard by shard
    and merged, as the run's parts were."""
    shards = sorted({r.scope.rpartition("@")[2] if "@" in r.scope else "" for r in pieces})
    by_name = {c.name: c for c in chk.needs}
    results: dict[str, Result] = {}
    for shard in shards:
        stored: dict[Collector[Any], list[tuple[str | None, Any]]] = defaultdict(list)
        for r in sorted(pieces, key=lambda r: (r.collector, r.scope)):
            base, _, which = r.scope.rpartition("@") if "@" in r.scope else (r.scope, "", "")
            if which != shard:
                continue
            coll = by_name[r.collector]
            stored[coll].append((base if coll.scoped else None, store.value(coll, r.sha256)))
        outcome = judge_stored(chk, stored)
        if outcome.crashed:
            raise RuntimeError("; ".join(outcome.errors) or "the check raised")
        results.update((r.resource_id, r) for r in outcome.results)
    return results


def _recorded(versions: Sequence[Any], judgements: Sequence[Judgement],
              ends: Sequence[datetime], starts: Sequence[datetime]) -> list[dict[str, _Recorded]]:
    """The verdicts recorded for each state: evidence versions (in recorded order) as they
    stood just before its end (the last sync judging it), overlaid by the judgements made
    since of that state."""
    judged: dict[datetime, dict[str, _Recorded]] = defaultdict(dict)
    for j in judgements:
        if j.new_status is None:
            judged[j.valid_from][j.resource_id] = _Recorded("", j.new_check_version)
        else:
            judged[j.valid_from][j.resource_id] = _Recorded(str(j.new_status.value),
                                                            j.new_check_version)
    order = sorted(range(len(ends)), key=lambda n: ends[n])
    times = [v.recorded_at for v in versions]
    state: dict[str, _Recorded] = {}
    applied = 0
    answers: list[dict[str, _Recorded]] = [{} for _ in ends]
    for n in order:
        upto = bisect.bisect_left(times, ends[n])
        for v in versions[applied:upto]:
            if v.change == ChangeKind.CLOSED:
                state.pop(v.resource_id, None)
            else:
                state[v.resource_id] = _Recorded(str(v.status.value), v.check_version)
        applied = max(applied, upto)
        merged = {**state, **judged.get(starts[n], {})}
        answers[n] = {rid: rec for rid, rec in merged.items() if rec.status}
    return answers


def _compare(connection_id: str, chk: Check, start: datetime, end: datetime | None,
             digest: str, before: dict[str, _Recorded],
             results: dict[str, Result]) -> list[Change]:
    """The verdicts that differ (a failed read's `scope:` error rows are not verdicts)."""
    changes = []
    for resource_id in sorted(set(before) | set(results)):
        old, new = before.get(resource_id), results.get(resource_id)
        if new is None and old is not None and (
                old.status == Status.ERROR and resource_id.startswith("scope:")):
            continue
        old_status = old.status if old else None
        new_status = Status(new.status).value if new else None
        if old_status != new_status:
            changes.append(Change(connection_id, chk.id, resource_id, start, end, old_status,
                                  new_status, old.check_version if old else None, chk.version,
                                  new.title if new else None, digest))
    return changes


def _record(session: Session, settings: Settings, conn: Connection, chk: Check,
            changes: Sequence[Change], results: dict[str, Result], current: bool,
            digest: str, manifest: bytes | None, now: datetime) -> None:
    """A judgement row per changed verdict; for the current state, its evidence as well."""
    if manifest is not None:
        store_manifests(session, settings, account_id=conn.account_id, now=now,
                        manifests={digest: manifest})
    session.execute(insert(Judgement), [
        {"account_id": conn.account_id, "connection_id": conn.id, "check_id": c.check_id,
         "resource_id": c.resource_id, "valid_from": c.valid_from, "valid_to": c.valid_to,
         "old_status": c.old_status, "new_status": c.new_status,
         "old_check_version": c.old_check_version, "new_check_version": c.new_check_version,
         "snapshot_sha256": c.snapshot_sha256, "title": c.title, "judged_at": now}
        for c in changes])
    ledger.append(session, conn.account_id, LedgerKind.JUDGEMENT, {
        "rejudge": {"connection_id": conn.id, "check_id": chk.id,
                    "check_version": chk.version, "snapshot_sha256": digest},
        "verdicts": [[c.resource_id, c.valid_from, c.valid_to, c.old_status, c.new_status,
                      c.old_check_version] for c in changes]},
        subject=f"{conn.id}/{chk.id}", now=now)
    if current:
        items = [Item.of(r.resource_id, chk.resource_type, Status(r.status).value, r.title,
                         r.data) for r in results.values()]
        store_check_results(session, account_id=conn.account_id, connection_id=conn.id,
                            check_id=chk.id, items=items, run_id=None, now=now,
                            check_version=chk.version, snapshot_sha256=digest,
                            change=ChangeKind.REJUDGED)


def describe(report: RejudgeReport) -> str:
    """The report in words: per check, per resource, each interval's old and new verdict."""
    lines: list[str] = []
    by_check: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in report.changes:
        by_check[(change.connection_id, change.check_id)].append(change)
    for (connection_id, check_id), changes in sorted(by_check.items()):
        lines.append(f"{check_id} (connection {connection_id})")
        for c in sorted(changes, key=lambda c: (c.resource_id, c.valid_from)):
            until = f"{c.valid_to:%Y-%m-%d %H:%M}" if c.valid_to else "now"
            lines.append(f"  {c.resource_id}  {c.valid_from:%Y-%m-%d %H:%M} → {until}  "
                         f"{c.old_status or 'not judged'} → {c.new_status or 'not judged'}  "
                         f"(v{c.old_check_version or '?'} → v{c.new_check_version})")
    lines.extend(f"could not judge: {failure}" for failure in report.failures)
    verb = "were recorded as a new judgement" if report.applied else "would change"
    lines.append(f"{len(report.changes)} verdicts {verb} ({report.intervals} snapshot states "
                 f"of {report.checks} checks on {report.connections} connections judged"
                 f"{'' if report.applied or not report.changes else '; --apply records them'})")
    return "\n".join(lines)
