"""The integrations surface (seed 000, field for field): catalog, connect, sync, disconnect,
evidence, controls, status, OAuth URL and callback.

Every string a request carries is bounded and free of NUL and lone surrogates (api/fields.py),
every boolean and date is strict and every number fits its column, so bad input is a 422
before anything is written.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.fields import page_limit, page_offset, text
from api.schemas.common import ConnectorId, QueryModel
from api.schemas.period import AS_OF, AsOf, CoverageAlertOut
from connectors.base import Category
from engine.as_of import EvidenceAt
from engine.controls import ControlCount
from engine.frameworks import Control
from engine.integrations import CatalogEntry, iso
from engine.models import Evidence, EvidenceStatus, Frequency, SyncRun


class IntegrationPath(BaseModel):
    integration_id: ConnectorId


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, Any] = Field(
        description="API key, OAuth tokens or service account credentials (write-only)")
    sync_frequency: Frequency = Frequency.DAILY
    config: dict[str, Any] | None = Field(
        None, description="The connector's configuration parameters (validated: 422 "
        "invalid_config); replaces the stored configuration when given")


class ConnectQuery(QueryModel):
    wait: float = Field(10, ge=0, le=120,
                        description="Seconds to wait for the provider to verify the credentials")


class WaitQuery(QueryModel):
    wait: float = Field(0, ge=0, le=120, description="Seconds to wait for the run to finish")


class EvidenceQuery(QueryModel):
    limit: int = page_limit(50, 200)
    offset: int = page_offset()
    status: EvidenceStatus | None = None
    check: str | None = text(200, default=None, description="Only this check's evidence")
    as_of: AsOf | None = Field(None, description=AS_OF)


class ControlsQuery(QueryModel):
    as_of: AsOf | None = Field(None, description=AS_OF)


class CategoryQuery(QueryModel):
    category: Category | None = None


class IntegrationOut(BaseModel):
    id: str
    name: str
    icon: str
    category: str
    authType: str
    connected: bool
    status: str | None
    lastSync: str | None
    evidenceCount: int


class IntegrationList(BaseModel):
    success: bool = True
    integrations: list[IntegrationOut]


class ConnectOut(BaseModel):
    success: bool = True
    connectionId: str
    status: str
    metadata: dict[str, Any]


class RunError(BaseModel):
    check: str | None
    message: str


class RunOut(BaseModel):
    id: str
    connectionId: str
    trigger: str
    status: str
    evidenceCount: int
    changedCount: int
    errors: list[RunError]
    queuedAt: str | None
    startedAt: str | None
    finishedAt: str | None
    duration: int | None


class SyncAccepted(BaseModel):
    """The run is queued or running: the seed's fields so far, and the run to follow."""

    success: bool = True
    created: bool = Field(description="false when a run was already queued or running")
    evidenceCount: int
    errors: list[RunError]
    duration: int | None
    run: RunOut


def sync_accepted(run: SyncRun, created: bool) -> SyncAccepted:
    out = run_out(run)
    return SyncAccepted(created=created, evidenceCount=out.evidenceCount, errors=out.errors,
                        duration=out.duration, run=out)


class SyncResult(BaseModel):
    """The seed's answer when the run finished within `wait`."""

    success: bool
    evidenceCount: int
    errors: list[RunError]
    duration: int | None
    run: RunOut


class EvidenceOut(BaseModel):
    id: str
    control_id: str | None
    framework_id: str | None
    controls: list[str]
    type: str
    status: str
    title: str
    check_id: str
    resource_id: str
    resource_type: str
    sha256: str
    data: dict[str, Any]
    collected_at: str | None
    first_seen_at: str | None


class EvidenceList(BaseModel):
    success: bool = True
    evidence: list[EvidenceOut]
    total: int
    limit: int
    offset: int


class ControlMappingOut(BaseModel):
    controlId: str
    frameworkId: str
    controlName: str


class ControlResultOut(ControlMappingOut):
    status: str
    passing: int
    failing: int
    errors: int
    total: int
    pushed: int = Field(0, description="pushed evidence linked to the control (not judged)")
    checks: list[str] = Field(default_factory=list, description="the integration's checks "
                              "that serve the control, whose results are counted here")


class ControlsOut(BaseModel):
    success: bool = True
    connected: bool
    controlMappings: list[ControlMappingOut]
    controlResults: list[ControlResultOut]


def integration_out(entry: CatalogEntry) -> IntegrationOut:
    cls, conn = entry.connector, entry.connection
    return IntegrationOut(
        id=cls.id, name=cls.name, icon=cls.icon, category=str(cls.category),
        authType=str(cls.auth_type), connected=conn is not None,
        status=conn.status.value if conn else None,
        lastSync=iso(conn.last_sync_at) if conn else None, evidenceCount=entry.evidence_count)


def run_out(run: SyncRun) -> RunOut:
    return RunOut(
        id=run.id, connectionId=run.connection_id, trigger=run.trigger.value,
        status=run.status.value, evidenceCount=run.evidence_count,
        changedCount=run.changed_count, errors=[RunError(**e) for e in run.errors],
        queuedAt=iso(run.queued_at), startedAt=iso(run.started_at),
        finishedAt=iso(run.finished_at), duration=run.duration_ms)


def evidence_out(row: Evidence, controls: tuple[Control, ...]) -> EvidenceOut:
    primary = controls[0] if controls else None
    return EvidenceOut(
        id=f"ev-{row.id}", control_id=primary.key if primary else None,
        framework_id=primary.framework_id if primary else None,
        controls=[c.key for c in controls], type="config_check", status=row.status.value,
        title=row.title, check_id=row.check_id, resource_id=row.resource_id,
        resource_type=row.resource_type, sha256=row.content_hash, data=row.data,
        collected_at=iso(row.last_changed_at), first_seen_at=iso(row.first_seen_at))


def evidence_at_out(e: EvidenceAt) -> EvidenceOut:
    """An evidence item as it stood at `?as_of=` (its version then; collected_at is when that
    version was recorded)."""
    primary = e.controls[0] if e.controls else None
    return EvidenceOut(
        id=f"ev-{e.evidence_id}", control_id=primary.key if primary else None,
        framework_id=primary.framework_id if primary else None,
        controls=[c.key for c in e.controls], type="config_check", status=e.status.value,
        title=e.title, check_id=e.check_id, resource_id=e.resource_id,
        resource_type=e.resource_type, sha256=e.sha256, data=e.data,
        collected_at=iso(e.recorded_at), first_seen_at=iso(e.first_seen_at))


def control_mapping_out(c: Control) -> ControlMappingOut:
    return ControlMappingOut(controlId=c.key, frameworkId=c.framework_id, controlName=c.title)


def control_result_out(c: ControlCount) -> ControlResultOut:
    return ControlResultOut(controlId=c.control.key, frameworkId=c.control.framework_id,
                            controlName=c.control.title, status=c.status.value,
                            passing=c.passing, failing=c.failing, errors=c.errored,
                            total=c.total, pushed=c.pushed, checks=list(c.checks))


# --- disconnect, status, OAuth (seed 000) --------------------------------------------------


class DisconnectOut(BaseModel):
    success: bool = True
    message: str
    connectionId: str
    cancelledRuns: int = Field(description="queued runs that will not run")
    evidenceKept: int = Field(description="evidence items kept as history")
    credentialsRevoked: bool = Field(description="whether the provider confirmed revoking "
                                     "the OAuth grant")


class StatusQuery(QueryModel):
    limit: int = Field(20, ge=1, le=100, description="How many runs of sync history to show")
    as_of: AsOf | None = Field(None, description=AS_OF)


class StatusOut(BaseModel):
    success: bool = True
    integrationId: str
    connectionId: str
    connected: bool
    status: str
    statusMessage: str | None
    syncFrequency: str
    lastSync: str | None
    nextSync: str | None
    connectedAt: str | None
    disconnectedAt: str | None
    needsRestart: bool = Field(description="a parameter changed and no sync has completed since")
    metadata: dict[str, Any]
    syncHistory: list[RunOut]
    as_of: str | None = Field(None, description="the instant answered (?as_of=); null: now")
    coverage_alerts: list[CoverageAlertOut] = Field(
        default_factory=list, description="checks without a fresh result for longer than the "
        "sync period plus the grace (EVIDENCE_FRESHNESS_GRACE_SECONDS), with the cause and the "
        "controls left uncovered")


class OAuthUrlQuery(QueryModel):
    """Any other query parameter is one of the integration's OAuth parameters (GitHub:
    `organization`, optional `base_url`), bound to the state and stored with the tokens."""

    model_config = ConfigDict(extra="allow")

    sync_frequency: Frequency = Frequency.DAILY

    @model_validator(mode="after")
    def _bounded_params(self) -> OAuthUrlQuery:
        extra = self.model_extra or {}
        if len(extra) > 10:
            raise ValueError("at most 10 OAuth parameters")
        for name, value in extra.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(f"{name[:64]!r} is not a parameter name")
            if not isinstance(value, str) or len(value) > 2048 or "\x00" in value:
                raise ValueError(f"{name} must be a string of at most 2048 characters")
        return self

    @property
    def params(self) -> dict[str, str]:
        return {k: str(v) for k, v in (self.model_extra or {}).items()}


class OAuthUrlOut(BaseModel):
    success: bool = True
    authUrl: str
    expiresAt: str | None = Field(description="the link (its state) works once, until then")


STATE_MAX_LENGTH = 1024
"""An issued state is a compact HS256 JWS of about 400 characters (nonce, account and
integration ids, times, audience); with code and error the callback's URL stays well inside
the 4,094 bytes gunicorn reads of a request line."""


class CallbackQuery(QueryModel):
    code: str | None = text(1024, default=None, min_length=1,
                             description="Authorization code (provider)")
    state: str = text(STATE_MAX_LENGTH, min_length=1,
                      description="The signed state this server issued (a compact JWS)")
    error: str | None = text(200, default=None,
                              description="Set by the provider when access was denied")
    error_description: str | None = text(1000, default=None)
