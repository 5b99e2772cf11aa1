"""API keys (seed 002): create (the key is shown once), list and revoke, with the account's JWT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from api.auth import settings
from api.errors import ErrorBody
from api.fields import LINE, text
from api.keys_auth import authenticate_account_token, caller
from api.schemas import OrgPath, Reply
from engine import apikeys
from engine.db import unit_of_work
from engine.integrations import iso
from engine.models.push import ApiKey, Scope

bp = APIBlueprint("apikeys", __name__, url_prefix="/api/v1/orgs/<org_id>/api-keys",
                  abp_tags=[Tag(name="api keys")], abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 403: ErrorBody, 404: ErrorBody})


@bp.before_request
def _authorize() -> None:
    authenticate_account_token()


ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


class KeyPath(OrgPath):
    key_id: str = text(64, min_length=1, pattern=ID_PATTERN)


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = text(200, default="API key", min_length=1, pattern=LINE)
    scopes: list[Scope] = Field(min_length=1, description="read:evidence, write:evidence, "
                                "read:* or write:*")
    expires_in_days: int | None = Field(None, ge=1, le=3650,
                                        description="omit for a key that does not expire")


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    scopes: list[str]
    active: bool
    created_at: str | None
    created_by: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class CreatedKeyOut(KeyOut):
    success: bool = True
    key: str = Field(description="the secret: shown only in this answer, store it now")


class KeyList(BaseModel):
    success: bool = True
    keys: list[KeyOut]


class RevokedKeyOut(BaseModel):
    success: bool = True
    key: KeyOut


def key_out(row: ApiKey, now: datetime) -> KeyOut:
    active = row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
    return KeyOut(id=row.id, name=row.name, prefix=row.prefix, scopes=list(row.scopes),
                  active=active, created_at=iso(row.created_at), created_by=row.created_by,
                  expires_at=iso(row.expires_at), last_used_at=iso(row.last_used_at),
                  revoked_at=iso(row.revoked_at))


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
