"""The integrations blueprint (seed 000): catalog, connect, sync, disconnect, evidence,
controls, status, OAuth authorization URL; and the unauthenticated OAuth callback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import redirect, request
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from api.auth import (
    account_session,
    account_sessions,
    authenticate,
    optional_principal,
    settings,
)
from api.limits import wait_slot
from api.schemas.common import ErrorBody, Reply, json_reply
from api.schemas.integrations import (
    CallbackQuery,
    CategoryQuery,
    ConnectOut,
    ConnectQuery,
    ConnectRequest,
    ControlsOut,
    ControlsQuery,
    DisconnectOut,
    EvidenceList,
    EvidenceQuery,
    IntegrationList,
    IntegrationPath,
    OAuthUrlOut,
    OAuthUrlQuery,
    StatusOut,
    StatusQuery,
    SyncAccepted,
    SyncResult,
    WaitQuery,
    control_mapping_out,
    control_result_out,
    evidence_at_out,
    evidence_out,
    integration_out,
    run_out,
    sync_accepted,
)
from api.schemas.period import alert_out
from engine import as_of, oauth
from engine import integrations as engine
from engine.connections import connect, disconnect, not_connected
from engine.errors import BadRequest, InvalidInput
from engine.integrations import iso
from engine.models import Connection, ConnectionStatus
from engine.period_alerts import connection_alerts

bp = APIBlueprint("integrations", __name__, url_prefix="/api/v1/integrations",
                  abp_tags=[Tag(name="integrations")], abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 404: ErrorBody, 422: ErrorBody})
bp.before_request(authenticate)

callback_bp = APIBlueprint("oauth_callback", __name__, url_prefix="/api/v1/integrations",
                           abp_tags=[Tag(name="integrations")])

CALLBACK_WAIT_SECONDS = 5.0
CONSOLE_INTEGRATIONS = "/console/integrations"


@bp.get("", responses={200: IntegrationList})
def list_integrations(query: CategoryQuery) -> Reply:
    """List every integration with this account's connection status."""
    with account_session() as session:
        entries = engine.list_integrations(session, query.category)
        return json_reply(IntegrationList(integrations=[integration_out(e) for e in entries]))


def _connect_answer(conn: Connection) -> Reply:
    if conn.status == ConnectionStatus.ERROR:
        raise BadRequest(conn.status_message or "the provider refused the credentials",
                         code="verification_failed", connectionId=conn.id)
    out = ConnectOut(connectionId=conn.id, status=conn.status.value, metadata=conn.meta)
    return out.model_dump(), (200 if conn.status == ConnectionStatus.ACTIVE else 202)


@bp.post("/<integration_id>/connect",
         responses={200: ConnectOut, 202: ConnectOut, 400: ErrorBody, 409: ErrorBody})
def connect_integration(path: IntegrationPath, query: ConnectQuery,
                        body: ConnectRequest) -> Reply:
    """Store credentials and verify them with the provider (then a first sync runs).

    200 with `connectionId` and `metadata` when the provider confirmed them within `wait`
    seconds; 202 with status `pending` otherwise (GET .../status shows the outcome).
    """
    with account_session() as session:
        conn = connect(session, integration_id=path.integration_id,
                       credentials=body.credentials, frequency=body.sync_frequency,
                       settings=settings(), config=body.config)
    with wait_slot(query.wait) as seconds:  # no slot: one look, then 202 pending
        conn = engine.wait_for_connection(account_sessions(), conn.id, seconds)
    return _connect_answer(conn)


@bp.post("/<integration_id>/sync",
         responses={200: SyncResult, 202: SyncAccepted, 409: ErrorBody})
def sync_integration(path: IntegrationPath, query: WaitQuery) -> Reply:
    """Run evidence collection now; `?wait=SECONDS` answers the result when it finishes.

    Waits are rationed (EVIDENCE_SYNC_WAIT_PER_ACCOUNT at once per account, a share of each API
    process's threads): a request that gets no slot answers 202 at once with the run to poll.
    """
    with account_session() as session:
        run, created = engine.sync_integration(session, path.integration_id)
    with wait_slot(query.wait) as seconds:
        if seconds:
            run = engine.wait_for_run(account_sessions(), run.id, seconds)
    if seconds and engine.is_settled(run):
        out = run_out(run)
        return SyncResult(success=run.status.value in ("succeeded", "partial"),
                          evidenceCount=run.evidence_count, errors=out.errors,
                          duration=run.duration_ms, run=out).model_dump()
    return sync_accepted(run, created).model_dump(), 202


@bp.delete("/<integration_id>/disconnect", responses={200: DisconnectOut})
def disconnect_integration(path: IntegrationPath) -> Reply:
    """Revoke access and remove the stored credentials; collected evidence stays as history."""
    with account_session() as session:
        done = disconnect(session, path.integration_id, datetime.now(UTC), settings())
    revoked = bool(done.credentials) and oauth.revoke(path.integration_id,
                                                      done.credentials or {}, settings())
    message = (f"Integration disconnected: stored credentials removed, "
               f"{done.cancelled_runs} queued sync(s) cancelled"
               + (f", {done.running_runs} running sync(s) will finish" if done.running_runs
                  else "")
               + f"; {done.evidence_kept} evidence item(s) kept as history")
    return DisconnectOut(message=message, connectionId=done.connection_id,
                         cancelledRuns=done.cancelled_runs, evidenceKept=done.evidence_kept,
                         credentialsRevoked=revoked).model_dump()


@bp.get("/<integration_id>/evidence", responses={200: EvidenceList})
def list_evidence(path: IntegrationPath, query: EvidenceQuery) -> Reply:
    """The evidence collected for an integration (paged; a disconnected one's as history);
    `?as_of=` answers it as it stood then."""
    with account_session() as session:
        if query.as_of is not None:
            at = as_of.list_evidence_at(session, path.integration_id, query.as_of,
                                        limit=query.limit, offset=query.offset,
                                        status=query.status, check_id=query.check)
            return json_reply(EvidenceList(evidence=[evidence_at_out(i) for i in at.items],
                                           total=at.total, limit=query.limit,
                                           offset=query.offset))
        page = engine.list_evidence(session, path.integration_id, limit=query.limit,
                                    offset=query.offset, status=query.status,
                                    check_id=query.check)
        return json_reply(EvidenceList(evidence=[evidence_out(r, c) for r, c in page.items],
                                       total=page.total, limit=query.limit,
                                       offset=query.offset))


@bp.get("/<integration_id>/controls", responses={200: ControlsOut})
def list_controls(path: IntegrationPath, query: ControlsQuery) -> Reply:
    """The controls this integration's checks serve, with their current results (`?as_of=`:
    with the results as they stood then)."""
    with account_session() as session:
        if query.as_of is not None:
            connected, counts = as_of.controls_at(session, path.integration_id, query.as_of)
        else:
            connected, counts = engine.connection_controls(session, path.integration_id)
        return ControlsOut(connected=connected,
                           controlMappings=[control_mapping_out(c.control) for c in counts],
                           controlResults=[control_result_out(c) for c in counts]).model_dump()


@bp.get("/<integration_id>/status", responses={200: StatusOut})
def integration_status(path: IntegrationPath, query: StatusQuery) -> Reply:
    """Connection status (pending, active, error, disconnected) with its sync history, and
    coverage alerts: checks without a fresh result for longer than the sync period plus the
    grace, with the cause. `?as_of=` answers the status as it stood then."""
    grace = timedelta(seconds=settings().freshness_grace_seconds)
    with account_session() as session:
        if query.as_of is not None:
            return _status_at(session, path.integration_id, query.as_of, query.limit, grace)
        state = engine.connection_status(session, path.integration_id, query.limit)
        conn = state.connection
        alerts = connection_alerts(session, conn, datetime.now(UTC), grace)
        return StatusOut(
            integrationId=conn.integration_id, connectionId=conn.id,
            connected=conn.status != ConnectionStatus.DISCONNECTED, status=conn.status.value,
            statusMessage=conn.status_message, syncFrequency=conn.sync_frequency.value,
            lastSync=iso(conn.last_sync_at), nextSync=iso(conn.next_sync_at),
            connectedAt=iso(conn.created_at), disconnectedAt=iso(conn.disconnected_at),
            needsRestart=state.needs_restart, metadata=conn.meta,
            syncHistory=[run_out(r) for r in state.history],
            coverage_alerts=[alert_out(a) for a in alerts]).model_dump(mode="json")


def _status_at(session: Session, integration_id: str, at: datetime, limit: int,
               grace: timedelta) -> Reply:
    state = as_of.status_at(session, integration_id, at, limit)
    if state is None or state.connection is None:
        raise not_connected(integration_id)
    conn = state.connection
    existed = state.status != "not_connected"
    gone = conn.disconnected_at if conn.disconnected_at and conn.disconnected_at <= at else None
    alerts = connection_alerts(session, conn, at, grace) if existed else []
    return StatusOut(
        integrationId=conn.integration_id, connectionId=conn.id,
        connected=existed and gone is None, status=state.status,
        statusMessage=state.status_message, syncFrequency=conn.sync_frequency.value,
        lastSync=iso(state.last_sync), nextSync=None, connectedAt=iso(conn.created_at),
        disconnectedAt=iso(gone), needsRestart=state.needs_restart, metadata=conn.meta,
        syncHistory=[run_out(r) for r in state.history], as_of=iso(at),
        coverage_alerts=[alert_out(a) for a in alerts]).model_dump(mode="json")


@bp.get("/<integration_id>/oauth-url",
        responses={200: OAuthUrlOut, 400: ErrorBody, 503: ErrorBody})
def oauth_url(path: IntegrationPath, query: OAuthUrlQuery) -> Reply:
    """The provider URL to send the user to; its `state` is signed, single-use and expires.

    Other query parameters are the integration's OAuth parameters, checked now and stored
    with the tokens: GitHub takes `organization` (required) and `base_url` (GitHub Enterprise
    Server).
    """
    with account_session() as session:
        issued = oauth.authorization_url(session, path.integration_id, query.sync_frequency,
                                         settings(), params=query.params)
    return OAuthUrlOut(authUrl=issued.url, expiresAt=iso(issued.expires_at)).model_dump()


@callback_bp.get("/callback", responses={
    200: ConnectOut, 202: ConnectOut, 302: None, 400: ErrorBody, 401: ErrorBody,
    403: ErrorBody, 404: ErrorBody, 422: ErrorBody, 502: ErrorBody, 503: ErrorBody})
def oauth_callback(query: CallbackQuery) -> Reply | Response:
    """The provider sends the browser here with `code` and `state` (no bearer token needed).

    The state must be one this server issued, unexpired and unused; with a bearer token the
    token's account must be the one that asked. The code is exchanged (PKCE), the tokens are
    stored encrypted and verified; then the browser goes to EVIDENCE_DASHBOARD_URL (unset: a
    caller that prefers HTML goes to the console's integrations page), or the answer is the
    connection as JSON.
    """
    claims = oauth.read_state(query.state, settings())
    caller = optional_principal()
    oauth.check_caller(claims, caller.account_id if caller else None)
    with account_session(claims.account_id) as session:
        grant = oauth.consume_state(session, claims, settings())
    if query.error:
        raise BadRequest(f"{grant.integration_id} did not grant access ({query.error}); "
                         f"start again with GET /api/v1/integrations/{grant.integration_id}"
                         "/oauth-url", code="oauth_denied")
    if not query.code:
        raise InvalidInput("the provider sent no authorization code", code="invalid_request",
                           fields=[{"field": "code", "message": "Field required"}])
    token = oauth.exchange_code(grant, query.code, settings())
    with account_session(grant.account_id) as session:
        conn = oauth.store_grant(session, grant, token, settings())
    with wait_slot(CALLBACK_WAIT_SECONDS, grant.account_id) as seconds:
        conn = engine.wait_for_connection(account_sessions(grant.account_id), conn.id, seconds)
    dashboard = settings().dashboard_url
    if not dashboard and request.accept_mimetypes.best_match(
            ["application/json", "text/html"]) == "text/html":
        # A browser (the console's "Connect with" button) lands on the console's catalog.
        dashboard = settings().public_base_url.rstrip("/") + CONSOLE_INTEGRATIONS
    if dashboard:
        separator = "&" if "?" in dashboard else "?"
        return redirect(dashboard + separator + urlencode({
            "integration": grant.integration_id, "connectionId": conn.id,
            "status": conn.status.value}))
    return _connect_answer(conn)
