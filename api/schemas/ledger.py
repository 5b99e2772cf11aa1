"""The ledger's public surface: the deployment's checkpoint-signing key and an account's signed
checkpoints (as `evidence ledger verify --checkpoint FILE` reads them back)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.fields import When, page_limit, page_offset
from api.schemas.common import QueryModel
from engine.ledger import PublicKey


class PublicKeyOut(BaseModel):
    key_id: str = Field(description="the first 16 hex digits of the SHA-256 of the raw key; "
                        "every checkpoint names the key that signed it")
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str = Field(description="the 32-byte raw public key, base64")
    public_key_pem: str = Field(description="the same key as PEM (SubjectPublicKeyInfo)")


class PublicKeyReply(BaseModel):
    data: PublicKeyOut


class CheckpointQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    since: When | None = Field(None, description="only checkpoints signed at or after this time")
    until: When | None = Field(None, description="only checkpoints signed at or before this "
                               "time")
    limit: int = page_limit(100, 1000)
    offset: int = page_offset()


class CheckpointOut(BaseModel):
    """A checkpoint as kept: save it whole; `evidence ledger verify --checkpoint FILE` checks
    the signature over account_id, length, head_sha256, signed_at and key_id (canonical JSON)."""

    account_id: str
    length: int = Field(description="how many entries of the chain it vouches for")
    head_sha256: str = Field(description="the entry_sha256 of entry `length`")
    signed_at: str = Field(description="ISO 8601, UTC, as signed")
    key_id: str
    signature: str = Field(description="Ed25519 signature, base64")
    algorithm: Literal["Ed25519"] = "Ed25519"
    reason: str = Field(description="audit_status (an audit moved) or daily")
    audit_id: str | None = None


class CheckpointListReply(BaseModel):
    data: list[CheckpointOut]
    total: int


def public_key_out(key: PublicKey) -> PublicKeyOut:
    return PublicKeyOut(key_id=key.key_id, public_key=key.raw_base64, public_key_pem=key.pem)


def checkpoint_out(document: dict[str, Any]) -> CheckpointOut:
    return CheckpointOut(**document)
