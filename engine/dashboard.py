"""What the web console shows: an account's overview (frameworks, pass-rate trend, connections)
and its controls board (controls with their checks and failing resources).

Each page is one call here, over a session scoped to the account (engine.tenancy). Control
statuses come from `count_controls`, the same roll-up the JSON API answers; the trend comes
from `control_result_history`, which gets a row each time a control's result changes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import Check, Connector
from engine.controls import ControlCount, count_controls
from engine.errors import InvalidInput, NotFound
from engine.frameworks import Catalog, catalog
from engine.models import (
    Connection,
    ConnectionStatus,
    ControlResultHistory,
    ControlStatus,
    Evidence,
    EvidenceStatus,
    EvidenceVersion,
    RunStatus,
    SyncRun,
)
from engine.registry import connectors
from engine.tenancy import account_of

TREND_DAYS = 90
RESOURCES_PER_CHECK = 5
"""Failing resources listed per check on the board (a check serves several controls, so each
listing repeats; the rest are counted, and the resource page has each one's history)."""


@dataclass(frozen=True)
class TrendPoint:
    day: date
    rate: float | None
    """Results passing over all results of the framework's controls at the end of the day
    (a control fails on one failing resource, so this moves as resources are fixed); None
    before any result."""


@dataclass(frozen=True)
class FrameworkSummary:
    id: str
    name: str
    version: str
    passing: int
    failing: int
    errored: int
    not_tested: int
    """Controls mapped to checks with no result yet."""
    without_checks: int
    """Controls of the catalog no check serves (evidence for them is uploaded)."""
    trend: list[TrendPoint]

    @property
    def evaluated(self) -> int:
        return self.passing + self.failing + self.errored


@dataclass(frozen=True)
class ConnectionSummary:
    integration_id: str
    name: str
    status: ConnectionStatus
    status_message: str | None
    sync_frequency: str
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    last_run_status: RunStatus | None


@dataclass(frozen=True)
class Overview:
    account_id: str
    frameworks: list[FrameworkSummary]
    connections: list[ConnectionSummary]
    now: datetime


def overview(session: Session, now: datetime) -> Overview:
    """The account's overview: per framework its control counts and 90-day pass-rate trend,
    and every live connection with its last and next sync."""
    account_id = account_of(session)
    cat = catalog()
    counts = count_controls(session, account_id, cat=cat)
    trends = pass_rate_trend(session, account_id, now, cat)
    frameworks = []
    for fw in cat.frameworks.values():
        mine = [c for c in counts if c.control.framework_id == fw.id]
        by_status = defaultdict(int, {s: sum(1 for c in mine if c.status == s)
                                      for s in ControlStatus})
        frameworks.append(FrameworkSummary(
            fw.id, fw.name, fw.version, by_status[ControlStatus.PASSING],
            by_status[ControlStatus.FAILING], by_status[ControlStatus.ERROR],
            by_status[ControlStatus.NOT_EVALUATED], len(fw.controls) - len(mine),
            trends.get(fw.id, [])))
    return Overview(account_id, frameworks, connection_summaries(session), now)


def pass_rate_trend(session: Session, account_id: str, now: datetime,
                    cat: Catalog) -> dict[str, list[TrendPoint]]:
    """Per framework, the share of its controls' results passing at the end of each of the
    last `TREND_DAYS` days (UTC), replayed from the control history."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=TREND_DAYS - 1)
    start = datetime.combine(first, time(), UTC)
    h = ControlResultHistory
    before = (select(h.framework_id, h.control_id, h.passing, h.total, h.evaluated_at)
              .where(h.account_id == account_id, h.evaluated_at < start)
              .distinct(h.framework_id, h.control_id)
              .order_by(h.framework_id, h.control_id, h.evaluated_at.desc(), h.id.desc()))
    within = (select(h.framework_id, h.control_id, h.passing, h.total, h.evaluated_at)
              .where(h.account_id == account_id, h.evaluated_at >= start, h.evaluated_at <= now)
              .order_by(h.evaluated_at, h.id))
    rows = [*session.execute(before).tuples(), *session.execute(within).tuples()]
    state: dict[tuple[str, str], tuple[int, int]] = {}
    trends: dict[str, list[TrendPoint]] = {fw: [] for fw in cat.frameworks}
    pending = iter(rows)
    upcoming = next(pending, None)
    for offset in range(TREND_DAYS):
        day = first + timedelta(days=offset)
        day_end = datetime.combine(day + timedelta(days=1), time(), UTC)
        while upcoming is not None and upcoming[4] < day_end:
            state[(upcoming[0], upcoming[1])] = (upcoming[2], upcoming[3])
            upcoming = next(pending, None)
        for fw, points in trends.items():
            passing = sum(p for (f, _), (p, _t) in state.items() if f == fw)
            total = sum(t for (f, _), (_p, t) in state.items() if f == fw)
            points.append(TrendPoint(day, passing / total if total else None))
    return trends


def connection_summaries(session: Session) -> list[ConnectionSummary]:
    """Every connection that is not disconnected, with its latest run's status."""
    latest = (select(SyncRun.connection_id, SyncRun.status)
              .distinct(SyncRun.connection_id)
              .order_by(SyncRun.connection_id, SyncRun.queued_at.desc()).subquery())
    rows = session.execute(
        select(Connection, latest.c.status)
        .outerjoin(latest, latest.c.connection_id == Connection.id)
        .where(Connection.status != ConnectionStatus.DISCONNECTED)
        .order_by(Connection.integration_id)).tuples()
    known = connectors()
    return [ConnectionSummary(
        conn.integration_id, known[conn.integration_id].name if conn.integration_id in known
        else conn.integration_id, conn.status, conn.status_message,
        str(conn.sync_frequency), conn.last_sync_at, conn.next_sync_at,
        RunStatus(run_status) if run_status else None) for conn, run_status in rows]


@dataclass(frozen=True)
class FailingResource:
    evidence_id: int
    resource_id: str
    resource_type: str
    title: str
    status: EvidenceStatus
    last_changed_at: datetime


@dataclass(frozen=True)
class CheckOnControl:
    id: str
    title: str
    severity: str
    remediation: str
    integration_id: str
    integration_name: str
    passing: int = 0
    failing: int = 0
    errored: int = 0
    resources: list[FailingResource] = field(default_factory=list)
    """The first failing or erroring resources (up to RESOURCES_PER_CHECK)."""

    @property
    def unlisted(self) -> int:
        return self.failing + self.errored - len(self.resources)


@dataclass(frozen=True)
class ControlRow:
    count: ControlCount
    framework_name: str
    checks: list[CheckOnControl]


@dataclass(frozen=True)
class ControlFilters:
    framework: str | None = None
    status: ControlStatus | None = None
    integration: str | None = None


@dataclass(frozen=True)
class ControlBoard:
    rows: list[ControlRow]
    filters: ControlFilters
    frameworks: dict[str, str]
    """Framework ids and names, for the filter."""
    integrations: dict[str, str]
    """Integrations with a live connection, ids and names, for the filter."""
    total: int
    """Controls before the status filter (framework and integration applied)."""


def control_board(session: Session, filters: ControlFilters) -> ControlBoard:
    """Every control mapped to a check, with its status, its checks (remediation, counts) and
    their failing resources, narrowed by framework, status and integration."""
    account_id = account_of(session)
    cat = catalog()
    known = connectors()
    if filters.framework is not None and filters.framework not in cat.frameworks:
        raise InvalidInput(f"unknown framework {filters.framework!r}", code="unknown_framework")
    if filters.integration is not None and filters.integration not in known:
        raise InvalidInput(f"unknown integration {filters.integration!r}",
                           code="unknown_integration")
    live = {c.integration_id: c.id for c in session.scalars(
        select(Connection).where(Connection.status != ConnectionStatus.DISCONNECTED))}
    checks: dict[str, tuple[type[Connector], Check]] = {
        chk.id: (cls, chk) for cls in known.values() for chk in cls.checks
        if filters.integration is None or cls.id == filters.integration}
    if filters.integration is None:
        counts = count_controls(session, account_id, cat=cat)
    else:
        counts = count_controls(session, account_id, cat=cat, check_ids=set(checks),
                                connection_id=live.get(filters.integration, ""))
    counts = [c for c in counts
              if filters.framework is None or c.control.framework_id == filters.framework]
    total = len(counts)
    counts = [c for c in counts if filters.status is None or c.status == filters.status]
    serving = _serving(cat)
    tallies = _check_tallies(session, account_id, live.get(filters.integration or "")
                             if filters.integration else None)
    resources = _failing_resources(session, account_id, {
        chk for c in counts for chk in _checks_of(serving, c, checks)})
    rows = []
    for c in counts:
        on_control = []
        for check_id in _checks_of(serving, c, checks):
            cls, chk = checks[check_id]
            p, f, e = tallies.get(check_id, (0, 0, 0))
            on_control.append(CheckOnControl(
                chk.id, chk.title, str(chk.severity), chk.remediation, cls.id, cls.name,
                p, f, e, resources.get(check_id, [])))
        on_control.sort(key=lambda k: (-(k.failing + k.errored), k.id))
        rows.append(ControlRow(c, cat.frameworks[c.control.framework_id].name, on_control))
    return ControlBoard(rows, filters, {f.id: f.name for f in cat.frameworks.values()},
                        {i: known[i].name for i in sorted(live) if i in known}, total)


def _checks_of(serving: dict[str, list[str]], count: ControlCount,
               checks: dict[str, tuple[type[Connector], Check]]) -> list[str]:
    return [check_id for check_id in serving.get(count.control.key, ())
            if check_id in checks]


def _serving(cat: Catalog) -> dict[str, list[str]]:
    """Control key -> the checks that serve it (the catalog's mapping, inverted)."""
    found: dict[str, list[str]] = defaultdict(list)
    for check_id, controls in cat.check_controls.items():
        for control in controls:
            found[control.key].append(check_id)
    return found


def _current(account_id: str, connection_id: str | None) -> list[object]:
    where: list[object] = [Evidence.account_id == account_id, Evidence.closed_at.is_(None),
                           Connection.status != ConnectionStatus.DISCONNECTED]
    if connection_id is not None:
        where.append(Evidence.connection_id == connection_id)
    return where


def _check_tallies(session: Session, account_id: str,
                   connection_id: str | None) -> dict[str, tuple[int, int, int]]:
    """Per check: its current passing, failing and erroring resources."""
    rows = session.execute(
        select(Evidence.check_id, Evidence.status, func.count())
        .join(Connection, Connection.id == Evidence.connection_id)
        .where(*_current(account_id, connection_id))  # type: ignore[arg-type]
        .group_by(Evidence.check_id, Evidence.status)).tuples()
    found: dict[str, dict[EvidenceStatus, int]] = defaultdict(dict)
    for check_id, status, n in rows:
        found[check_id][status] = n
    return {k: (v.get(EvidenceStatus.PASSING, 0), v.get(EvidenceStatus.FAILING, 0),
                v.get(EvidenceStatus.ERROR, 0)) for k, v in found.items()}


def _failing_resources(session: Session, account_id: str,
                       check_ids: set[str]) -> dict[str, list[FailingResource]]:
    """The first failing or erroring resources of each check (by resource id)."""
    if not check_ids:
        return {}
    ranked = (select(Evidence.id, Evidence.check_id, Evidence.resource_id,
                     Evidence.resource_type, Evidence.title, Evidence.status,
                     Evidence.last_changed_at,
                     func.row_number().over(partition_by=Evidence.check_id,
                                            order_by=Evidence.resource_id).label("n"))
              .join(Connection, Connection.id == Evidence.connection_id)
              .where(*_current(account_id, None),  # type: ignore[arg-type]
                     Evidence.check_id.in_(sorted(check_ids)),
                     Evidence.status.in_([EvidenceStatus.FAILING, EvidenceStatus.ERROR]))
              .subquery())
    found: dict[str, list[FailingResource]] = defaultdict(list)
    for row in session.execute(select(ranked).where(ranked.c.n <= RESOURCES_PER_CHECK)
                               .order_by(ranked.c.check_id, ranked.c.n)):
        found[row.check_id].append(FailingResource(
            row.id, row.resource_id, row.resource_type, row.title,
            EvidenceStatus(row.status), row.last_changed_at))
    return found


@dataclass(frozen=True)
class ResourceHistory:
    evidence: Evidence
    integration_name: str
    check: Check | None
    controls: list[tuple[str, str, str]]
    """(framework name, control id, title) of each control the check serves."""
    versions: list[EvidenceVersion]
    """Newest first; each with the SHA-256 of its canonical data."""


def resource_history(session: Session, evidence_id: int) -> ResourceHistory:
    """One resource's verdict now and every version it had (404 for another account's id)."""
    found = session.execute(
        select(Evidence, Connection.integration_id)
        .join(Connection, Connection.id == Evidence.connection_id)
        .where(Evidence.id == evidence_id, Evidence.account_id == account_of(session))
    ).tuples().first()
    if found is None:
        raise NotFound("no such resource", code="resource_not_found")
    evidence, integration_id = found
    cls = connectors().get(integration_id)
    check = next((c for c in cls.checks if c.id == evidence.check_id), None) if cls else None
    cat = catalog()
    versions = list(session.scalars(
        select(EvidenceVersion).where(EvidenceVersion.evidence_id == evidence.id)
        .order_by(EvidenceVersion.recorded_at.desc(), EvidenceVersion.id.desc())))
    return ResourceHistory(
        evidence, cls.name if cls else integration_id, check,
        [(cat.frameworks[c.framework_id].name, c.id, c.title)
         for c in cat.controls_for(evidence.check_id)], versions)


@dataclass(frozen=True)
class RunProblem:
    check_title: str | None
    """The check that could not run (None: the whole run)."""
    message: str


@dataclass(frozen=True)
class RunRow:
    id: str
    integration_name: str
    trigger: str
    status: RunStatus
    queued_at: datetime
    started_at: datetime | None
    duration_ms: int | None
    evidence_count: int
    changed_count: int
    problems: list[RunProblem]


RUNS_SHOWN = 50


def sync_history(session: Session) -> list[RunRow]:
    """The account's latest sync runs, newest first, with what went wrong in each."""
    known = connectors()
    titles = {chk.id: chk.title for cls in known.values() for chk in cls.checks}
    rows = session.execute(
        select(SyncRun, Connection.integration_id)
        .join(Connection, Connection.id == SyncRun.connection_id)
        .where(SyncRun.account_id == account_of(session))
        .order_by(SyncRun.queued_at.desc(), SyncRun.id).limit(RUNS_SHOWN)).tuples()
    return [RunRow(
        run.id, known[integration].name if integration in known else integration,
        str(run.trigger), run.status, run.queued_at, run.started_at, run.duration_ms,
        run.evidence_count, run.changed_count,
        [RunProblem(titles.get(e.get("check") or "", e.get("check")),
                    str(e.get("message") or "no details were recorded"))
         for e in run.errors if isinstance(e, dict)]) for run, integration in rows]
