"""Request and response models of the integrations API (the shapes of seed 000)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.controls import ControlCount
from engine.frameworks import Control
from engine.integrations import CatalogEntry, iso
from engine.models import Evidence, EvidenceStatus, Frequency, SyncRun

Reply = dict[str, Any] | tuple[dict[str, Any], int]
"""What a view returns: a JSON body, or a body and a status (evaluated by flask-openapi3)."""


class IntegrationPath(BaseModel):
    integration_id: str = Field(max_length=64)


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, Any] = Field(
        description="API key, OAuth tokens or service account credentials (write-only)")
    sync_frequency: Frequency = Frequency.DAILY


class ConnectQuery(BaseModel):
    wait: float = Field(10, ge=0, le=120,
                        description="Seconds to wait for the provider to verify the credentials")


class WaitQuery(BaseModel):
    wait: float = Field(0, ge=0, le=120, description="Seconds to wait for the run to finish")


class EvidenceQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)
    status: EvidenceStatus | None = None
    check: str | None = Field(None, max_length=200)


class CategoryQuery(BaseModel):
    category: str | None = Field(None, max_length=32)


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
    success: bool = True
    created: bool = Field(description="false when a run was already queued or running")
    run: RunOut


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


def control_mapping_out(c: Control) -> ControlMappingOut:
    return ControlMappingOut(controlId=c.key, frameworkId=c.framework_id, controlName=c.title)


def control_result_out(c: ControlCount) -> ControlResultOut:
    return ControlResultOut(controlId=c.control.key, frameworkId=c.control.framework_id,
                            controlName=c.control.title, status=c.status.value,
                            passing=c.passing, failing=c.failing, errors=c.errored,
                            total=c.total)
