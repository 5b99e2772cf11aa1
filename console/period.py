"""The period of a Type II audit as pictures, on both sides of the audit: per control a strip
over the period (covered, exceptions, gaps: each with a pattern and words as well as colour),
coverage and operating time, the exceptions with their resources, the gaps with their cause in
plain words, and the population; and the auditor's samples drawn from that population.

Every figure comes from one engine call (`engine.period.audit_period`, as the API's
`GET …/period` answers it; `engine.sampling.draw_sample`, as `POST /api/v1/auditor/samples`
draws); this module only turns the answer into words and geometry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from console import auditor as portal
from console.auditor_forms import Form
from console.audits import _id
from console.charts import PeriodStrip, period_strip
from console.views import _now, _settings, account_session, bp
from console.words import plural
from engine import audits, sampling
from engine.errors import Conflict, NotFound
from engine.frameworks import Control, catalog
from engine.models.audit import Audit
from engine.period import (
    Cause,
    ControlException,
    ControlPeriod,
    FailedResource,
    Gap,
    GapCause,
    Member,
    Outcome,
    Span,
    audit_period,
    period_span,
)
from engine.registry import connectors

ONLY_ISSUES = "issues"
OUTCOME_WORDS = {Outcome.FIXED: "fixed", Outcome.REMOVED: "removed",
                 Outcome.NO_LONGER_MONITORED: "no longer monitored",
                 Outcome.STILL_FAILING: "still failing"}
DEFAULT_SAMPLE = 25


# --- words ---------------------------------------------------------------------------------

def when(at: datetime) -> str:
    """"3 Mar 2026" at midnight UTC, else "3 Mar 2026, 02:00 UTC"."""
    day = f"{at:%-d %b %Y}"
    return day if (at.hour, at.minute) == (0, 0) else f"{day}, {at:%H:%M} UTC"


def share(value: float) -> str:
    """96%, 99.5%: whole percents, one decimal where rounding would hide a difference."""
    pct = round(value * 100, 1)
    return f"{pct:.0f}%" if pct == int(pct) else f"{pct:.1f}%"


def _name(integration_id: str | None) -> str:
    found = connectors().get(integration_id or "")
    return found.name if found is not None else (integration_id or "An integration")


def cause_words(span: Span, cause: Cause) -> str:
    """A gap's cause in the words a compliance lead reads."""
    between = f"from {when(span.start)} to {when(span.end)}"
    name = _name(cause.integration_id)
    if cause.kind is GapCause.SYNC_FAILED:
        last = next((r.error for r in reversed(cause.runs) if r.error), None)
        runs = f" ({plural(len(cause.runs), 'failed run')})" if cause.runs else ""
        return f"{name} syncs failed {between}{runs}" + (f": {last}" if last else "")
    if cause.kind is GapCause.DISCONNECTED:
        return f"{name} was disconnected {between}"
    if cause.kind is GapCause.SCHEDULE_PAUSED:
        return f"No {name} sync ran {between}: the schedule was paused or behind"
    if cause.kind is GapCause.FIRST_SYNC_PENDING:
        return f"{name} was connected, but its first sync had not completed, {between}"
    return f"Nothing serving this control was connected yet, {between}"


# --- what the page shows -------------------------------------------------------------------

@dataclass(frozen=True)
class FailedWords:
    resource_id: str
    check_id: str
    integration: str
    failed_at: datetime
    ended: str
    """"fixed 30 Jan 2026", "still failing"."""


@dataclass(frozen=True)
class ExceptionRow:
    span: Span
    words: str
    resources: list[FailedWords]


@dataclass(frozen=True)
class GapRow:
    span: Span
    causes: list[str]


@dataclass(frozen=True)
class ControlRow:
    control: Control
    strip: PeriodStrip
    coverage: str
    operating: str
    summary: str
    exceptions: list[ExceptionRow]
    gaps: list[GapRow]
    population: int
    integrations: list[str]

    @property
    def has_issues(self) -> bool:
        return bool(self.exceptions or self.gaps)


@dataclass(frozen=True)
class PeriodPage:
    audit: Audit
    framework: str
    missing: str | None
    """Why there is nothing to draw (no period set, a Type I audit, not begun), in words."""
    period: Span | None = None
    running: bool = False
    """The period has not ended: every figure is "so far"."""
    rows: tuple[ControlRow, ...] = ()
    hidden: int = 0
    """Controls left out by the filter (no exception, no gap)."""
    manual: int = 0
    """Controls of the framework no check serves (not drawn)."""
    only_issues: bool = False
    control: Control | None = None
    population: tuple[Member, ...] = ()


def _failed(resources: Iterable[FailedResource]) -> list[FailedWords]:
    out = []
    for r in resources:
        ended = OUTCOME_WORDS[r.outcome]
        if r.fixed_at is not None:
            ended = f"{ended} {when(r.fixed_at)}" if r.outcome is not Outcome.NO_LONGER_MONITORED \
                else f"{ended} from {when(r.fixed_at)}"
        out.append(FailedWords(r.resource_id, r.check_id, _name(r.integration_id), r.failed_at,
                               ended))
    return out


def _exception(e: ControlException) -> ExceptionRow:
    return ExceptionRow(e.span, f"Failing from {when(e.span.start)} to {when(e.span.end)} "
                                f"({_length(e.span.length)})", _failed(e.resources))


def _gap(gap: Gap) -> GapRow:
    return GapRow(gap.span, [cause_words(gap.span, c) for c in gap.causes])


def _length(length: timedelta) -> str:
    if length >= timedelta(days=1):
        return plural(round(length / timedelta(days=1)), "day")
    return plural(max(1, round(length / timedelta(hours=1))), "hour")


def control_row(c: ControlPeriod, running: bool) -> ControlRow:
    so_far = " so far" if running else ""
    summary = (f"{c.control.id}: covered {share(c.coverage)} of the period{so_far}, operating "
               f"{share(c.operating_share)}; {plural(len(c.exceptions), 'exception')}, "
               f"{plural(len(c.gaps), 'gap')}")
    strip = period_strip(c.period, [e.span for e in c.exceptions], [g.span for g in c.gaps],
                         c.passing, summary)
    return ControlRow(c.control, strip, share(c.coverage), share(c.operating_share), summary,
                      [_exception(e) for e in c.exceptions], [_gap(g) for g in c.gaps],
                      len(c.population), [_name(i) for i in c.integrations])


def period_page(session: Session, audit: Audit, *, only_issues: bool,
                control_ref: str | None) -> PeriodPage:
    """The audit's period as the page shows it (one engine call: engine.period.audit_period)."""
    fw = audits.framework(audit.framework_id)
    control = audits.resolve_control(audit, control_ref) if control_ref else None
    if audit.period_start is None or audit.period_end is None:
        why = ("A Type I audit looks at one point in time, so it has no period to draw."
               if audit.type.value == "type_i" else
               "This Type II audit has no period yet. The customer sets its first day and "
               "its end (period_start and period_end, e.g. PUT /api/v1/audits/"
               f"{audit.id} with {{\"period_start\": \"2026-01-01\", \"period_end\": "
               "\"2026-07-01\"}), and the period is drawn here.")
        return PeriodPage(audit, fw.name, why)
    now = _now()
    whole = period_span(audit.period_start, audit.period_end)
    try:
        answer = audit_period(session, audit, _grace(), now=now,
                              control_ids=[control.id] if control else None)
    except Conflict as exc:
        if exc.code != "period_not_started":
            raise
        return PeriodPage(audit, fw.name, f"The period begins on {when(whole.start)}: there "
                                          "is nothing to draw yet.", whole)
    running = whole.end > now
    automated = [c for c in answer.controls if c.automated]
    rows = [control_row(c, running) for c in automated]
    shown = [r for r in rows if r.has_issues or not only_issues]
    return PeriodPage(audit, fw.name, None, answer.period, running, tuple(shown),
                      len(rows) - len(shown), len(answer.controls) - len(automated),
                      only_issues, control,
                      automated[0].population if control and automated else ())


def _grace() -> timedelta:
    return timedelta(seconds=_settings().freshness_grace_seconds)


def _filters() -> tuple[bool, str | None]:
    only = request.args.get("only", "") == ONLY_ISSUES
    control = request.args.get("control", "").strip()[:64] or None
    return only, control


# --- the customer's page -------------------------------------------------------------------

@bp.get("/audits/<audit_id>/period")
def audit_period_page(audit_id: str) -> ResponseReturnValue:
    """The audit's period per control: strip, figures, exceptions, gaps, population."""
    only, control = _filters()
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, _id(audit_id))
        page = period_page(session, audit, only_issues=only, control_ref=control)
        return render_template("console/period.html", now=_now(), account_id=g.account_id,
                               page=page, side="customer",
                               here=url_for("console.audit_period_page", audit_id=audit.id))


# --- the auditor's pages -------------------------------------------------------------------

@portal.bp.get("/period")
def auditor_period() -> ResponseReturnValue:
    """The audit's period, as the customer sees it, with a way to draw samples."""
    only, control = _filters()
    with portal._reading() as (session, audit, writable):
        page = period_page(session, audit, only_issues=only, control_ref=control)
        return portal._page("period.html", page=page, side="auditor", writable=writable,
                            here=url_for("auditor_portal.auditor_period"))


@dataclass(frozen=True)
class SampleAsk:
    control_id: str
    size: int
    seed: int | None


def _whole(form: Form, name: str, label: str, low: int, high: int,
           required: bool) -> int | None:
    value = form.values.get(name, "").strip()
    if not value:
        if required:
            form.errors[name] = f"Enter {label}."
        return None
    if not value.isdigit() or len(value) > 20 or not low <= int(value) <= high:
        form.errors[name] = f"{label.capitalize()} is a whole number from {low} to {high}."
        return None
    return int(value)


def sample_ask(form: Form) -> SampleAsk | None:
    """The sample form, bounded as the API's SampleRequest is (size 1..MAX_SAMPLE, seed
    0..MAX_SEED)."""
    control = form.control()
    size = _whole(form, "size", "the sample size", 1, sampling.MAX_SAMPLE, True)
    seed = _whole(form, "seed", "the seed", 0, sampling.MAX_SEED, False)
    if not form.ok or control is None or size is None:
        return None
    return SampleAsk(control, size, seed)


def _automated(audit: Audit) -> list[Control]:
    """The framework's controls a check serves (those with a population to draw from)."""
    cat = catalog()
    served = {c.key for cs in cat.check_controls.values() for c in cs}
    return [c for c in sorted(cat.frameworks[audit.framework_id].controls.values(),
                              key=lambda c: c.sort_key) if c.key in served]


def _samples_page(status: int = 200, form: Form | None = None,
                  sample: sampling.Sample | None = None) -> ResponseReturnValue:
    with portal._reading() as (session, audit, writable):
        controls = _automated(audit)
        return portal._page("samples.html", status, audit=audit, controls=controls,
                            writable=writable, form=form, sample=sample,
                            preset=request.args.get("control", "")[:64],
                            default_size=DEFAULT_SAMPLE, max_size=sampling.MAX_SAMPLE)


@portal.bp.get("/samples")
def samples() -> ResponseReturnValue:
    """The form to draw a sample from a control's population."""
    return _samples_page()


@portal.bp.post("/samples")
def draw_sample() -> ResponseReturnValue:
    """Draw a sample (engine.sampling.draw_sample, as the API does: logged with its seed) and
    show each item with the evidence as it stood at its instant."""
    form = Form(request.form)
    ask = sample_ask(form)
    if ask is None:
        return _samples_page(422, form)
    try:
        with portal._changing() as (session, audit):
            sample = sampling.draw_sample(session, audit, portal._actor(),
                                          control_ref=ask.control_id, size=ask.size,
                                          seed=ask.seed, grace=_grace(), now=_now())
    except NotFound:
        form.errors["control_id"] = "Choose a control of this audit."
        return _samples_page(422, form)
    except Conflict as exc:
        if exc.code == "empty_population":
            form.errors["control_id"] = ("No resource was judged for this control in the "
                                         "period: there is nothing to draw from.")
        elif exc.code in ("period_not_set", "period_not_started"):
            form.errors["control_id"] = exc.message
        else:
            raise
        return _samples_page(409, form)
    return _samples_page(201, Form({"control_id": sample.control.id, "size": str(ask.size),
                                    "seed": ""}), sample)

