"""API keys (seed 002): create (the key is shown once), list and revoke."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.fields import LINE, text
from api.schemas.common import OrgPath
from engine.integrations import iso
from engine.models.push import ApiKey, Scope

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
