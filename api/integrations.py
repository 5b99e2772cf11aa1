"""The integrations blueprint (seed 000): catalog, connect, sync, evidence, controls."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from api.auth import authenticate, principal, settings
from api.errors import ErrorBody
from api.schemas import (
    CategoryQuery,
    ConnectOut,
    ConnectQuery,
    ConnectRequest,
    ControlsOut,
    EvidenceList,
    EvidenceQuery,
    IntegrationList,
    IntegrationPath,
    Reply,
    SyncAccepted,
    SyncResult,
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

bp = APIBlueprint("integrations", __name__, url_prefix="/api/v1/integrations",
                  abp_tags=[Tag(name="integrations")], abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 404: ErrorBody})
bp.before_request(authenticate)


@bp.get("", responses={200: IntegrationList})
def list_integrations(query: CategoryQuery) -> Reply:
    """List every integration with this account's connection status."""
    with unit_of_work(settings()) as session:
        entries = engine.list_integrations(session, principal().account_id, query.category)
        return IntegrationList(integrations=[integration_out(e) for e in entries]).model_dump()


@bp.post("/<integration_id>/connect",
         responses={200: ConnectOut, 202: ConnectOut, 400: ErrorBody, 409: ErrorBody,
                    422: ErrorBody})
def connect_integration(path: IntegrationPath, query: ConnectQuery,
                        body: ConnectRequest) -> Reply:
    """Store credentials and verify them with the provider (then a first sync runs)."""
    account_id = principal().account_id
    with unit_of_work(settings()) as session:
        conn = connect(session, account_id=account_id, integration_id=path.integration_id,
                       credentials=body.credentials, frequency=body.sync_frequency,
                       settings=settings())
    conn = engine.wait_for_connection(session_factory(settings()), account_id, conn.id,
                                      query.wait)
    if conn.status == ConnectionStatus.ERROR:
        raise BadRequest(conn.status_message or "the provider refused the credentials",
                         code="verification_failed", connectionId=conn.id)
    out = ConnectOut(connectionId=conn.id, status=conn.status.value, metadata=conn.meta)
    return out.model_dump(), (200 if conn.status == ConnectionStatus.ACTIVE else 202)


@bp.post("/<integration_id>/sync",
         responses={200: SyncResult, 202: SyncAccepted, 409: ErrorBody})
def sync_integration(path: IntegrationPath, query: WaitQuery) -> Reply:
    """Run evidence collection now; `?wait=SECONDS` answers the result when it finishes."""
    account_id = principal().account_id
    with unit_of_work(settings()) as session:
        run, created = engine.sync_integration(session, account_id, path.integration_id)
    if query.wait:
        run = engine.wait_for_run(session_factory(settings()), account_id, run.id, query.wait)
        if engine.is_settled(run):
            out = run_out(run)
            return SyncResult(success=run.status.value in ("succeeded", "partial"),
                              evidenceCount=run.evidence_count, errors=out.errors,
                              duration=run.duration_ms, run=out).model_dump()
    return SyncAccepted(created=created, run=run_out(run)).model_dump(), 202


@bp.get("/<integration_id>/evidence", responses={200: EvidenceList})
def list_evidence(path: IntegrationPath, query: EvidenceQuery) -> Reply:
    """The evidence collected for a connected integration (paged)."""
    with unit_of_work(settings()) as session:
        page = engine.list_evidence(session, principal().account_id, path.integration_id,
                                    limit=query.limit, offset=query.offset,
                                    status=query.status, check_id=query.check)
        return EvidenceList(evidence=[evidence_out(r, c) for r, c in page.items],
                            total=page.total, limit=query.limit,
                            offset=query.offset).model_dump()


@bp.get("/<integration_id>/controls", responses={200: ControlsOut})
def list_controls(path: IntegrationPath) -> Reply:
    """The controls this integration's checks serve, with their current results."""
    with unit_of_work(settings()) as session:
        connected, counts = engine.connection_controls(session, principal().account_id,
                                                       path.integration_id)
        return ControlsOut(connected=connected,
                           controlMappings=[control_mapping_out(c.control) for c in counts],
                           controlResults=[control_result_out(c) for c in counts]).model_dump()
