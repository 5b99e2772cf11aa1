"""API keys (seed 002): create (the key is shown once), list and revoke, with the account's JWT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask_openapi3 import APIBlueprint, Tag

from api.auth import settings
from api.keys_auth import authenticate_account_token, caller
from api.schemas.apikeys import (
    CreatedKeyOut,
    CreateKeyRequest,
    KeyList,
    KeyPath,
    RevokedKeyOut,
    key_out,
)
from api.schemas.common import ErrorBody, OrgPath, Reply
from engine import apikeys
from engine.db import unit_of_work

bp = APIBlueprint("apikeys", __name__, url_prefix="/api/v1/orgs/<org_id>/api-keys",
                  abp_tags=[Tag(name="api keys")], abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 403: ErrorBody, 404: ErrorBody})


@bp.before_request
def _authorize() -> None:
    authenticate_account_token()


@bp.post("", responses={201: CreatedKeyOut, 422: ErrorBody})
def create_api_key(path: OrgPath, body: CreateKeyRequest) -> Reply:
    """Create a scoped key `sk-…`; the answer is the only time the key is shown."""
    now = datetime.now(UTC)
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    with unit_of_work(settings()) as session:
        row, secret = apikeys.create_key(session, caller().account_id, name=body.name,
                                         scopes=body.scopes, created_by=caller().subject,
                                         expires_at=expires)
        session.refresh(row)
        out = key_out(row, now)
    return CreatedKeyOut(**out.model_dump(), key=secret).model_dump(), 201


@bp.get("", responses={200: KeyList})
def list_api_keys(path: OrgPath) -> Reply:
    """The organization's keys (never their secrets), revoked ones included."""
    now = datetime.now(UTC)
    with unit_of_work(settings()) as session:
        rows = apikeys.list_keys(session, caller().account_id)
        return KeyList(keys=[key_out(r, now) for r in rows]).model_dump()


@bp.delete("/<key_id>", responses={200: RevokedKeyOut})
def revoke_api_key(path: KeyPath) -> Reply:
    """Revoke a key: it is refused from the next request on."""
    now = datetime.now(UTC)
    with unit_of_work(settings()) as session:
        row = apikeys.revoke_key(session, caller().account_id, path.key_id, now)
        return RevokedKeyOut(key=key_out(row, now)).model_dump()
