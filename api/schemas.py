"""Request and response models of the integrations API (the shapes of seed 000)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.controls import ControlCount
from engine.frameworks import Control
from engine.integrations import CatalogEntry, iso
from engine.models import Evidence, EvidenceStatus, Frequency, SyncRun


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, Any]
    sync_frequency: Frequency = Frequency.DAILY


class WaitQuery(BaseModel):
    wait: float = Field(0, ge=0, le=120, description="Seconds to wait for the job to finish")


class EvidenceQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)
    status: EvidenceStatus | None = None
    check: str | None = Field(None, max_length=200)


class CategoryQuery(BaseModel):
    category: str | None = None


def integration_out(entry: CatalogEntry) -> dict[str, Any]:
    cls, conn = entry.connector, entry.connection
    return {"id": cls.id, "name": cls.name, "icon": cls.icon, "category": str(cls.category),
            "authType": str(cls.auth_type), "connected": conn is not None,
            "status": conn.status.value if conn else None,
            "lastSync": iso(conn.last_sync_at) if conn else None,
            "evidenceCount": entry.evidence_count}


def run_out(run: SyncRun) -> dict[str, Any]:
    return {"id": run.id, "connectionId": run.connection_id, "trigger": run.trigger.value,
            "status": run.status.value, "evidenceCount": run.evidence_count,
            "changedCount": run.changed_count, "errors": run.errors,
            "queuedAt": iso(run.queued_at), "startedAt": iso(run.started_at),
            "finishedAt": iso(run.finished_at), "duration": run.duration_ms}


def evidence_out(row: Evidence, controls: tuple[Control, ...]) -> dict[str, Any]:
    primary = controls[0] if controls else None
    return {"id": f"ev-{row.id}", "control_id": primary.key if primary else None,
            "framework_id": primary.framework_id if primary else None,
            "controls": [c.key for c in controls], "type": "config_check",
            "status": row.status.value, "title": row.title, "check_id": row.check_id,
            "resource_id": row.resource_id, "resource_type": row.resource_type,
            "sha256": row.content_hash, "data": row.data,
            "collected_at": iso(row.last_changed_at), "first_seen_at": iso(row.first_seen_at)}


def control_mapping_out(c: Control) -> dict[str, Any]:
    return {"controlId": c.key, "frameworkId": c.framework_id, "controlName": c.title}


def control_result_out(c: ControlCount) -> dict[str, Any]:
    return {**control_mapping_out(c.control), "status": c.status.value, "passing": c.passing,
            "failing": c.failing, "errors": c.errored, "total": c.total}
