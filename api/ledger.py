"""The ledger (issue 12): the public key that signs checkpoints (no token needed: anyone holding
a checkpoint must be able to check it), and the caller's account's signed checkpoints (the
account's JWT), for a customer or their auditor to keep."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from api.auth import account_session, authenticate, principal, settings
from api.schemas.common import ErrorBody, Reply, dump
from api.schemas.ledger import (
    CheckpointListReply,
    CheckpointQuery,
    PublicKeyReply,
    checkpoint_out,
    public_key_out,
)
from engine import ledger
from engine.db import unit_of_work

TAG = Tag(name="ledger", description="the tamper-evident record: its signing key and signed "
          "checkpoints")
public_bp = APIBlueprint("ledger_public", __name__, url_prefix="/api/v1/ledger",
                         abp_tags=[TAG])
bp = APIBlueprint("ledger", __name__, url_prefix="/api/v1/ledger", abp_tags=[TAG],
                  abp_security=[{"bearer": []}], abp_responses={401: ErrorBody})
bp.before_request(authenticate)


@public_bp.get("/public-key", responses={200: PublicKeyReply})
def get_public_key() -> Reply:
    """The deployment's Ed25519 public key, which signs every ledger checkpoint (no token)."""
    with unit_of_work(settings()) as session:
        return dump(PublicKeyReply(data=public_key_out(ledger.public_key(session, settings()))))


@bp.get("/checkpoints", responses={200: CheckpointListReply, 422: ErrorBody})
def list_checkpoints(query: CheckpointQuery) -> Reply:
    """The account's signed checkpoints, oldest first: keep one to prove later that nothing
    recorded up to it was removed or rewritten."""
    with account_session() as session:
        rows, total = ledger.checkpoints(session, principal().account_id, since=query.since,
                                         until=query.until, limit=query.limit,
                                         offset=query.offset)
        return dump(CheckpointListReply(
            data=[checkpoint_out(ledger.checkpoint_document(r)) for r in rows], total=total))
