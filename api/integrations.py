"""The integrations blueprint (seed 000): catalog, connect, sync, evidence, controls."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from api.auth import authenticate, principal, settings
from api.schemas import (
    CategoryQuery,
    ConnectRequest,
    EvidenceQuery,
    WaitQuery,
    control_mapping_out,
    control_result_out,
    evidence_out,
    integration_out,
    run_out,
)
from engine import integrations as engine
from engine.connections import connect
from engine.db import session_factory, unit_of_work
from engine.errors import BadRequest
from engine.models import ConnectionStatus

bp = Blueprint("integrations", __name__, url_prefix="/api/v1/integrations")
bp.before_request(authenticate)


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object body with Content-Type: application/json",
                         code="invalid_json")
    return body


@bp.get("")
def list_integrations() -> ResponseReturnValue:
    query = CategoryQuery.model_validate(request.args.to_dict())
    with unit_of_work(settings()) as session:
        entries = engine.list_integrations(session, principal().account_id, query.category)
        return {"success": True, "integrations": [integration_out(e) for e in entries]}


@bp.post("/<integration_id>/connect")
def connect_integration(integration_id: str) -> ResponseReturnValue:
    wait = WaitQuery.model_validate({"wait": request.args.get("wait", 10)}).wait
    body = ConnectRequest.model_validate(_json_body())
    account_id = principal().account_id
    with unit_of_work(settings()) as session:
        conn = connect(session, account_id=account_id, integration_id=integration_id,
                       credentials=body.credentials, frequency=body.sync_frequency,
                       settings=settings())
    conn = engine.wait_for_connection(session_factory(settings()), account_id, conn.id, wait)
    if conn.status == ConnectionStatus.ERROR:
        return {"success": False, "connectionId": conn.id, "status": conn.status.value,
                "error": {"code": "verification_failed",
                          "message": conn.status_message or "the provider refused"}}, 400
    out = {"success": True, "connectionId": conn.id, "status": conn.status.value,
           "metadata": conn.meta}
    return out, (200 if conn.status == ConnectionStatus.ACTIVE else 202)


@bp.post("/<integration_id>/sync")
def sync_integration(integration_id: str) -> ResponseReturnValue:
    wait = WaitQuery.model_validate(request.args.to_dict()).wait
    account_id = principal().account_id
    with unit_of_work(settings()) as session:
        run, created = engine.sync_integration(session, account_id, integration_id)
    if wait:
        run = engine.wait_for_run(session_factory(settings()), account_id, run.id, wait)
        if engine.is_settled(run):
            return {"success": run.status.value in ("succeeded", "partial"),
                    "evidenceCount": run.evidence_count, "errors": run.errors,
                    "duration": run.duration_ms, "run": run_out(run)}
    return {"success": True, "created": created, "run": run_out(run)}, 202


@bp.get("/<integration_id>/evidence")
def list_evidence(integration_id: str) -> ResponseReturnValue:
    query = EvidenceQuery.model_validate(request.args.to_dict())
    with unit_of_work(settings()) as session:
        page = engine.list_evidence(session, principal().account_id, integration_id,
                                    limit=query.limit, offset=query.offset,
                                    status=query.status, check_id=query.check)
        return {"success": True, "evidence": [evidence_out(r, c) for r, c in page.items],
                "total": page.total, "limit": query.limit, "offset": query.offset}


@bp.get("/<integration_id>/controls")
def list_controls(integration_id: str) -> ResponseReturnValue:
    with unit_of_work(settings()) as session:
        connected, counts = engine.connection_controls(session, principal().account_id,
                                                       integration_id)
        return {"success": True, "connected": connected,
                "controlMappings": [control_mapping_out(c.control) for c in counts],
                "controlResults": [control_result_out(c) for c in counts]}
