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

from sqlalchemy import and_, func, select, text, union_all
from sqlalchemy.orm import Session

from connectors.base import Check, Connector
from engine.controls import ControlCount, status_of
from engine.errors import InvalidInput, NotFound
from engine.frameworks import Catalog, Control, catalog
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
from engine.pushed import pushed_counts
from engine.registry import connectors
from engine.tenancy import account_of

TREND_DAYS = 90
RESOURCES_PER_CHECK = 3
"""Failing resources listed per check on the board, once per page (a check serves several
controls; the others link to that listing); the check's own page lists them all."""
CONTROLS_PER_PAGE = 30
"""Controls on one page of the board: what a person reads before narrowing the filters."""


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
    counts = control_counts(session, account_id, cat, _check_tallies(session, account_id, None))
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
    columns = (h.framework_id, h.control_id, h.passing, h.total, h.evaluated_at, h.id)
    before = (select(*columns)  # each control's state as the window opens
              .where(h.account_id == account_id, h.evaluated_at < start)
              .distinct(h.framework_id, h.control_id)
              .order_by(h.framework_id, h.control_id, h.evaluated_at.desc(), h.id.desc()))
    within = (select(*columns)
              .where(h.account_id == account_id, h.evaluated_at >= start, h.evaluated_at <= now))
    both = union_all(before, within).subquery()
    rows = session.execute(select(both).order_by(both.c.evaluated_at, both.c.id)).tuples().all()
    state: dict[tuple[str, str], tuple[int, int]] = {}
    sums: dict[str, list[int]] = {fw: [0, 0] for fw in cat.frameworks}
    trends: dict[str, list[TrendPoint]] = {fw: [] for fw in cat.frameworks}
    pending = iter(rows)
    upcoming = next(pending, None)
    for offset in range(TREND_DAYS):
        day = first + timedelta(days=offset)
        day_end = datetime.combine(day + timedelta(days=1), time(), UTC)
        while upcoming is not None and upcoming[4] < day_end:
            fw, control, passing, total = upcoming[:4]
            old_passing, old_total = state.get((fw, control), (0, 0))
            state[(fw, control)] = (passing, total)
            running = sums.setdefault(fw, [0, 0])  # a framework since dropped: not shown
            running[0] += passing - old_passing
            running[1] += total - old_total
            upcoming = next(pending, None)
        for fw, points in trends.items():
            passing, total = sums[fw]
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
    """The first failing or erroring resources (up to RESOURCES_PER_CHECK), on the first
    control of the board the check serves; empty on the others (see `listed_under`)."""
    listed_under: str | None = None
    """The control key under which this check's failing resources are already listed on the
    board (a check serves several controls; its resources are shown once)."""

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
    page: int = 1


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
    matching: int = 0
    """Controls after every filter (the rows are one page of them)."""
    failing: int = 0
    """Of the matching controls, how many fail."""
    first: int = 1
    """The position of the page's first row among the matching controls."""
    pages: int = 1

    @property
    def names(self) -> dict[str, str]:
        """Control key -> how a person names it ("SOC 2 … CC6.1"), for links within the board."""
        return {r.count.control.key: f"{r.count.control.id} ({r.framework_name})"
                for r in self.rows}


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
        tallies = _check_tallies(session, account_id, None)
        counts = control_counts(session, account_id, cat, tallies)
    else:
        tallies = _check_tallies(session, account_id, live.get(filters.integration, ""))
        counts = control_counts(session, account_id, cat, tallies, check_ids=set(checks))
    counts = [c for c in counts
              if filters.framework is None or c.control.framework_id == filters.framework]
    total = len(counts)
    counts = [c for c in counts if filters.status is None or c.status == filters.status]
    matching, failing = len(counts), sum(c.status == ControlStatus.FAILING for c in counts)
    pages = max(1, -(-matching // CONTROLS_PER_PAGE))
    if filters.page > pages:
        raise NotFound(f"there are {pages} pages of controls", code="page_not_found")
    start = (filters.page - 1) * CONTROLS_PER_PAGE
    counts = counts[start:start + CONTROLS_PER_PAGE]
    serving = _serving(cat)
    resources = _failing_resources(session, account_id, {
        chk for c in counts for chk in _checks_of(serving, c, checks)
        if sum(tallies.get(chk, (0, 0, 0))[1:])})
    listed: dict[str, str] = {}
    rows = []
    for c in counts:
        on_control = []
        for check_id in _checks_of(serving, c, checks):
            cls, chk = checks[check_id]
            p, f, e = tallies.get(check_id, (0, 0, 0))
            shown = listed.get(check_id)
            on_control.append(CheckOnControl(
                chk.id, chk.title, str(chk.severity), chk.remediation, cls.id, cls.name,
                p, f, e, resources.get(check_id, []) if shown is None else [], shown))
            if check_id in resources:
                listed.setdefault(check_id, c.control.key)
        on_control.sort(key=lambda k: (-(k.failing + k.errored), k.id))
        rows.append(ControlRow(c, cat.frameworks[c.control.framework_id].name, on_control))
    return ControlBoard(rows, filters, {f.id: f.name for f in cat.frameworks.values()},
                        {i: known[i].name for i in sorted(live) if i in known}, total,
                        matching, failing, start + 1, pages)


def _checks_of(serving: dict[str, list[str]], count: ControlCount,
               checks: dict[str, tuple[type[Connector], Check]]) -> list[str]:
    return [check_id for check_id in serving.get(count.control.key, ())
            if check_id in checks]


@dataclass(frozen=True)
class _CatalogView:
    """What the pages need of a catalog, worked out once per catalog rather than per page."""

    serving: dict[str, list[str]]
    """Control key -> the checks that serve it (the mapping inverted), sorted."""
    ordered: list[tuple[Control, str, tuple[str, ...]]]
    """Every mapped control in catalog order, with its key and the checks serving it."""


_by_catalog: dict[int, tuple[Catalog, _CatalogView]] = {}


def _catalog_view(cat: Catalog) -> _CatalogView:
    hit = _by_catalog.get(id(cat))
    if hit is None or hit[0] is not cat:
        serving: dict[str, list[str]] = defaultdict(list)
        controls = {}
        for check_id, mapped in cat.check_controls.items():
            for control in mapped:
                serving[control.key].append(check_id)
                controls[control.key] = control
        for checks in serving.values():
            checks.sort()
        ordered = [(controls[k], k, tuple(serving[k]))
                   for k in sorted(controls, key=lambda k: controls[k].sort_key)]
        if len(_by_catalog) > 8:
            _by_catalog.clear()
        hit = _by_catalog[id(cat)] = (cat, _CatalogView(dict(serving), ordered))
    return hit[1]


def _serving(cat: Catalog) -> dict[str, list[str]]:
    """Control key -> the checks that serve it (the catalog's mapping, inverted)."""
    return _catalog_view(cat).serving


def control_counts(session: Session, account_id: str, cat: Catalog,
                   tallies: dict[str, tuple[int, int, int]], *,
                   check_ids: set[str] | None = None) -> list[ControlCount]:
    """What `engine.controls.count_controls` answers (each control mapped from `check_ids`,
    default every mapped check, with its results summed over its checks and its status by the
    same rule), rolled up here from the per-check tallies a page reads anyway: one small
    GROUP BY instead of a join of every evidence row with every control its check serves."""
    pushed = pushed_counts(session, account_id)
    counts = []
    none = (0, 0, 0)
    for control, _key, served in _catalog_view(cat).ordered:
        counted = served if check_ids is None else tuple(c for c in served if c in check_ids)
        if not counted:
            continue
        p = f = e = 0
        for check_id in counted:
            tp, tf, te = tallies.get(check_id, none)
            p, f, e = p + tp, f + tf, e + te
        counts.append(ControlCount(control, status_of(p, f, e), p, f, e,
                                   pushed.get((control.framework_id, control.id), 0),
                                   checks=counted))
    return counts


def _current(account_id: str, connection_id: str | None) -> list[object]:
    where: list[object] = [Evidence.account_id == account_id, Evidence.closed_at.is_(None),
                           Connection.status != ConnectionStatus.DISCONNECTED]
    if connection_id is not None:
        where.append(Evidence.connection_id == connection_id)
    return where


def _check_tallies(session: Session, account_id: str,
                   connection_id: str | None) -> dict[str, tuple[int, int, int]]:
    """Per check: its current passing, failing and erroring resources (one GROUP BY, led by
    the account's live connections so it reads ix_evidence_current_status)."""
    live = [Connection.account_id == account_id,
            Connection.status != ConnectionStatus.DISCONNECTED]
    if connection_id is not None:
        live.append(Connection.id == connection_id)
    # Grouping by sorting would order every row's check id by the database's collation (the
    # costliest step of the page, unseen by the planner's cost model); hashing them is several
    # times cheaper, so sorting is off for this one statement.
    session.execute(text("SET LOCAL enable_sort = off"))
    rows = session.execute(
        select(Evidence.check_id, Evidence.status, func.count())
        .select_from(Connection)
        .join(Evidence, and_(Evidence.connection_id == Connection.id,
                             Evidence.closed_at.is_(None), Evidence.account_id == account_id,
                             Evidence.status.in_([EvidenceStatus.PASSING, EvidenceStatus.FAILING,
                                                  EvidenceStatus.ERROR])))
        .where(*live)
        .group_by(Evidence.check_id, Evidence.status)).tuples().all()
    session.execute(text("SET LOCAL enable_sort TO DEFAULT"))
    found: dict[str, dict[EvidenceStatus, int]] = defaultdict(dict)
    for check_id, status, n in rows:
        found[check_id][status] = n
    return {k: (v.get(EvidenceStatus.PASSING, 0), v.get(EvidenceStatus.FAILING, 0),
                v.get(EvidenceStatus.ERROR, 0)) for k, v in found.items()}


_FIRST_FAILING = text("""
SELECT w.check_id, r.id, r.resource_id, r.resource_type, r.title, r.status, r.last_changed_at
FROM connection c
CROSS JOIN unnest(CAST(:checks AS text[])) AS w(check_id)
CROSS JOIN unnest(CAST(ARRAY['failing', 'error'] AS evidence_status[])) AS s(status)
CROSS JOIN LATERAL (
    SELECT e.id, e.resource_id, e.resource_type, e.title, e.status, e.last_changed_at
    FROM evidence e
    WHERE e.connection_id = c.id AND e.status = s.status AND e.check_id = w.check_id
      AND e.closed_at IS NULL AND e.account_id = :account_id
    ORDER BY e.resource_id
    LIMIT :per_check
) AS r
WHERE c.account_id = :account_id AND c.status <> 'disconnected'
""")
"""Per live connection, check and status, the first resources in ix_evidence_current_status
order: a few rows read from the index each, never a sort of every failing row."""


def _failing_resources(session: Session, account_id: str,
                       check_ids: set[str]) -> dict[str, list[FailingResource]]:
    """The first failing or erroring resources of each check (by resource id): a few index
    probes per check, not a ranking of every failing row."""
    if not check_ids:
        return {}
    found: dict[str, list[FailingResource]] = defaultdict(list)
    for row in session.execute(_FIRST_FAILING, {"checks": sorted(check_ids),
                                                "account_id": account_id,
                                                "per_check": RESOURCES_PER_CHECK}):
        found[row.check_id].append(FailingResource(
            row.id, row.resource_id, row.resource_type, row.title,
            EvidenceStatus(row.status), row.last_changed_at))
    return {check_id: sorted(rows, key=lambda r: (r.resource_id, r.evidence_id))[
        :RESOURCES_PER_CHECK] for check_id, rows in found.items()}


CHECK_PAGE = 100


@dataclass(frozen=True)
class CheckResources:
    """One check's failing and erroring resources, a page at a time (the board lists a few)."""

    id: str
    title: str
    severity: str
    remediation: str
    integration_name: str
    controls: list[tuple[str, str, str]]
    """(framework name, control id, title) of each control the check serves."""
    resources: list[FailingResource]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None


def check_resources(session: Session, check_id: str, *, offset: int = 0,
                    limit: int = CHECK_PAGE) -> CheckResources:
    """Every current failing or erroring resource of a check for the account, by resource id
    (404 for a check no registered connector declares)."""
    account_id = account_of(session)
    found = next(((cls, chk) for cls in connectors().values() for chk in cls.checks
                  if chk.id == check_id), None)
    if found is None:
        raise NotFound("no such check", code="check_not_found")
    cls, chk = found
    where = [*_current(account_id, None), Evidence.check_id == check_id,
             Evidence.status.in_([EvidenceStatus.FAILING, EvidenceStatus.ERROR])]
    total = session.scalar(select(func.count()).select_from(Evidence)
                           .join(Connection, Connection.id == Evidence.connection_id)
                           .where(*where)) or 0  # type: ignore[arg-type]
    rows = session.execute(
        select(Evidence.id, Evidence.resource_id, Evidence.resource_type, Evidence.title,
               Evidence.status, Evidence.last_changed_at)
        .join(Connection, Connection.id == Evidence.connection_id)
        .where(*where)  # type: ignore[arg-type]
        .order_by(Evidence.resource_id, Evidence.id).offset(offset).limit(limit)).tuples()
    cat = catalog()
    return CheckResources(
        chk.id, chk.title, str(chk.severity), chk.remediation, cls.name,
        [(cat.frameworks[c.framework_id].name, c.id, c.title)
         for c in cat.controls_for(chk.id) if c.framework_id in cat.frameworks],
        [FailingResource(i, r, t, title, EvidenceStatus(st), at)
         for i, r, t, title, st, at in rows], int(total), offset, limit)


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
