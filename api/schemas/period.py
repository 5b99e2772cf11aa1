"""The period of a Type II audit (customer and auditor side), an auditor's sample, the `as_of`
query parameter and the coverage alerts of the status endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from api.fields import When
from api.schemas.audits import ControlRef
from api.schemas.common import QueryModel
from engine.as_of import EvidenceAt
from engine.models import EvidenceStatus, RunStatus
from engine.period import (
    Cause,
    ControlException,
    ControlPeriod,
    FailedResource,
    Gap,
    GapCause,
    Member,
    Outcome,
    PeriodAnswer,
    period_span,
)
from engine.period_alerts import CoverageAlert
from engine.sampling import MAX_SAMPLE, MAX_SEED, Sample, SampleItem


def _past(value: datetime) -> datetime:
    if value > datetime.now(UTC):
        raise ValueError("must not be in the future: as_of answers the state as it stood then")
    return value


AsOf = Annotated[When, AfterValidator(_past)]
"""A past instant (ISO 8601; UTC when it names no zone); a future one is a 422."""
AS_OF = ("answer the state as it stood at this instant (ISO 8601, e.g. 2026-03-01T00:00:00Z), "
         "reconstructed from the evidence versions; before the integration was connected the "
         "answer is empty")


# --- the period ----------------------------------------------------------------------------

class PeriodQuery(QueryModel):
    control_id: ControlRef | None = Field(None, description="only this control (`CC6.1`), "
                                          "with its population listed")


class GapRunOut(BaseModel):
    id: str
    status: RunStatus
    finished_at: datetime
    error: str | None


class GapCauseOut(BaseModel):
    kind: GapCause = Field(description="not_connected, disconnected, sync_failed, "
                           "schedule_paused or first_sync_pending")
    explanation: str
    connection_id: str | None
    integration_id: str | None
    since: datetime | None = Field(description="the last fresh result before the gap (or "
                                   "when the connection was made or went away)")
    runs: list[GapRunOut] = Field(description="runs that failed since the last fresh result")


class GapOut(BaseModel):
    start: datetime
    end: datetime
    seconds: int
    causes: list[GapCauseOut]


class FailedResourceOut(BaseModel):
    integration_id: str
    check_id: str
    resource_id: str
    failed_at: datetime
    fixed_at: datetime | None = Field(description="when it passed again (or was removed, or "
                                      "stopped being monitored); null: still failing at the "
                                      "period's end")
    outcome: Outcome


class ExceptionOut(BaseModel):
    start: datetime
    end: datetime
    seconds: int
    resources: list[FailedResourceOut]


class PopulationMemberOut(BaseModel):
    integration_id: str
    check_id: str
    resource_id: str
    resource_type: str
    first_seen: datetime
    last_seen: datetime = Field(description="the last run during the period that judged it")
    failed: bool = Field(description="it failed at some time during the period")


class ControlPeriodOut(BaseModel):
    control_id: str
    title: str
    automated: bool = Field(description="false: no check of a registered integration serves "
                            "the control (its evidence is pushed or reviewed by hand)")
    integrations: list[str]
    period_seconds: int
    coverage: float | None = Field(description="share of the period with a fresh test result")
    coverage_seconds: int
    operating_time: float | None = Field(description="share of the period with a fresh, "
                                         "passing result")
    operating_seconds: int
    exceptions: list[ExceptionOut]
    gaps: list[GapOut]
    population_size: int
    population: list[PopulationMemberOut] | None = Field(
        description="listed when one control is asked for (`?control_id=`); else null, as a "
        "large estate's populations over a whole framework run to many thousands")


class PeriodOut(BaseModel):
    audit_id: str
    framework_id: str
    period_start: date
    period_end: date = Field(description="the period runs up to 00:00 UTC of this day")
    starts_at: datetime
    ends_at: datetime = Field(description="the end of the period, or now while it runs: "
                              "shares are of the time so far")
    complete: bool = Field(description="false while the period is still running")
    freshness_grace_seconds: int = Field(description="a result is fresh for its connection's "
                                         "sync period plus this grace")
    controls: list[ControlPeriodOut]


class PeriodReply(BaseModel):
    data: PeriodOut


def _seconds(value: Any) -> int:
    return int(value.total_seconds())


def cause_out(c: Cause) -> GapCauseOut:
    return GapCauseOut(kind=c.kind, explanation=c.kind.explanation,
                       connection_id=c.connection_id, integration_id=c.integration_id,
                       since=c.since, runs=[GapRunOut(id=r.id, status=r.status,
                                                      finished_at=r.finished_at, error=r.error)
                                            for r in c.runs])


def gap_out(g: Gap) -> GapOut:
    return GapOut(start=g.span.start, end=g.span.end, seconds=_seconds(g.span.length),
                  causes=[cause_out(c) for c in g.causes])


def failed_out(f: FailedResource) -> FailedResourceOut:
    return FailedResourceOut(integration_id=f.integration_id, check_id=f.check_id,
                             resource_id=f.resource_id, failed_at=f.failed_at,
                             fixed_at=f.fixed_at, outcome=f.outcome)


def exception_out(e: ControlException) -> ExceptionOut:
    return ExceptionOut(start=e.span.start, end=e.span.end, seconds=_seconds(e.span.length),
                        resources=[failed_out(f) for f in e.resources])


def member_out(m: Member) -> PopulationMemberOut:
    return PopulationMemberOut(integration_id=m.integration_id, check_id=m.check_id,
                               resource_id=m.resource_id, resource_type=m.resource_type,
                               first_seen=m.first_seen, last_seen=m.last_seen, failed=m.failed)


def control_period_out(c: ControlPeriod, with_population: bool) -> ControlPeriodOut:
    return ControlPeriodOut(
        control_id=c.control.id, title=c.control.title, automated=c.automated,
        integrations=list(c.integrations), period_seconds=_seconds(c.period.length),
        coverage=c.coverage if c.automated else None, coverage_seconds=_seconds(c.covered),
        operating_time=c.operating_share if c.automated else None,
        operating_seconds=_seconds(c.operating),
        exceptions=[exception_out(e) for e in c.exceptions], gaps=[gap_out(g) for g in c.gaps],
        population_size=len(c.population),
        population=[member_out(m) for m in c.population] if with_population else None)


def period_out(audit_id: str, start: date, end: date, answer: PeriodAnswer,
               with_population: bool) -> PeriodOut:
    return PeriodOut(audit_id=audit_id, framework_id=answer.framework_id, period_start=start,
                     period_end=end, starts_at=answer.period.start, ends_at=answer.period.end,
                     complete=answer.period.end == period_span(start, end).end,
                     freshness_grace_seconds=_seconds(answer.grace),
                     controls=[control_period_out(c, with_population)
                               for c in answer.controls])


# --- samples -------------------------------------------------------------------------------

class SampleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control_id: ControlRef
    size: StrictInt = Field(ge=1, le=MAX_SAMPLE, description="how many resources to draw "
                            "(the whole population when it is smaller)")
    seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED, description="draw again with a "
                                   "recorded seed (default: a fresh random seed, recorded)")


class SampledEvidenceOut(BaseModel):
    id: str
    version_id: int = Field(description="the evidence_version in force at the sampled instant")
    status: EvidenceStatus
    title: str
    sha256: str
    recorded_at: datetime
    data: dict[str, Any]


class SampleItemOut(BaseModel):
    integration_id: str
    check_id: str
    resource_id: str
    resource_type: str
    at: datetime = Field(description="the sampled instant")
    evidence: SampledEvidenceOut | None


class SampleOut(BaseModel):
    control_id: str
    seed: int
    size: int
    population_size: int
    population_sha256: str
    drawn_at: datetime
    items: list[SampleItemOut]


class SampleReply(BaseModel):
    data: SampleOut


def sampled_evidence_out(e: EvidenceAt) -> SampledEvidenceOut:
    return SampledEvidenceOut(id=f"ev-{e.evidence_id}", version_id=e.version_id,
                              status=e.status, title=e.title, sha256=e.sha256,
                              recorded_at=e.recorded_at, data=e.data)


def sample_item_out(i: SampleItem) -> SampleItemOut:
    m = i.member
    return SampleItemOut(integration_id=m.integration_id, check_id=m.check_id,
                         resource_id=m.resource_id, resource_type=m.resource_type, at=i.at,
                         evidence=sampled_evidence_out(i.evidence) if i.evidence else None)


def sample_out(s: Sample) -> SampleOut:
    return SampleOut(control_id=s.control.id, seed=s.seed, size=len(s.items),
                     population_size=s.population_size, population_sha256=s.population_sha256,
                     drawn_at=s.drawn_at, items=[sample_item_out(i) for i in s.items])


# --- coverage alerts (GET …/status) --------------------------------------------------------

class CoverageAlertOut(BaseModel):
    """Checks of the connection without a fresh result for longer than its sync period plus
    the grace, and the controls that leaves uncovered."""

    kind: GapCause
    explanation: str
    stale_since: datetime
    last_fresh: datetime | None
    runs: list[GapRunOut]
    check_ids: list[str]
    controls: list[str]


def alert_out(a: CoverageAlert) -> CoverageAlertOut:
    return CoverageAlertOut(kind=a.kind, explanation=a.kind.explanation,
                            stale_since=a.stale_since, last_fresh=a.last_fresh,
                            runs=[GapRunOut(id=r.id, status=r.status, finished_at=r.finished_at,
                                            error=r.error) for r in a.runs],
                            check_ids=list(a.check_ids), controls=[c.key for c in a.controls])
