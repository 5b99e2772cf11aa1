"""Evidence push (seed 002): presigned upload, SHA-256 verify, idempotent link to a control.

Callers are an API key (`write:evidence` for POST, `read:evidence` for GET; `write:*` /
`read:*` cover them) or the account's JWT; `org_id` must be the caller's account.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import request
from flask_openapi3 import APIBlueprint, Tag

from api.auth import settings
from api.keys_auth import authenticate_caller, caller
from api.schemas.common import ErrorBody, OrgPath, Reply
from api.schemas.push import (
    DownloadOut,
    EvidencePath,
    LinkOut,
    LinkRequest,
    PushedItem,
    PushedList,
    PushedQuery,
    UploadRequest,
    UploadUrlOut,
    VerifyBody,
    VerifyOut,
    VerifyQuery,
    pushed_out,
    verify_out,
)
from engine import pushed
from engine.apikeys import require_scope
from engine.db import unit_of_work
from engine.errors import InvalidInput
from engine.integrations import iso
from engine.models.push import Scope
from engine.storage import open_store

bp = APIBlueprint("push", __name__, url_prefix="/api/v1/orgs/<org_id>/evidence",
                  abp_tags=[Tag(name="evidence push")], abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 403: ErrorBody, 404: ErrorBody,
                                 503: ErrorBody})


@bp.before_request
def _authorize() -> None:
    """401 without a valid key or token, 403 for another org or a key without the scope."""
    needed = Scope.READ_EVIDENCE if request.method in ("GET", "HEAD") else Scope.WRITE_EVIDENCE
    require_scope(authenticate_caller(), needed)


@bp.post("/upload-url", responses={201: UploadUrlOut, 422: ErrorBody})
def create_upload_url(path: OrgPath, body: UploadRequest) -> Reply:
    """Mint a presigned PUT URL and the object_key to carry through the later steps."""
    cfg = settings()
    store = open_store(cfg)
    with unit_of_work(cfg) as session:
        ticket = pushed.request_upload(
            session, store, caller(), filename=body.filename, content_type=body.content_type,
            control_ref=body.control_id, framework_ref=body.framework_id, size=body.size,
            max_size=cfg.storage_max_object_bytes, expires_in=cfg.storage_presign_seconds,
            now=datetime.now(UTC))
        row = ticket.evidence
        out = UploadUrlOut(upload_url=ticket.upload_url, object_key=row.upload_key,
                           expires_in=ticket.expires_in, max_size=cfg.storage_max_object_bytes,
                           evidence_id=row.id, headers={"Content-Type": row.content_type})
    return out.model_dump(), 201


@bp.post("/verify", responses={200: VerifyOut, 409: ErrorBody, 410: ErrorBody, 422: ErrorBody})
def verify_upload(path: OrgPath, query: VerifyQuery, body: VerifyBody) -> Reply:
    """Recompute the stored object's SHA-256 and size and check them against yours.

    `object_key` and `expected_hash` as query parameters or JSON. A mismatch (a truncated or
    altered upload) is 409 `hash_mismatch` with both hashes; an object over max_size is 422
    `object_too_large` and is deleted; in both cases PUT again and verify again. An upload not
    verified within EVIDENCE_UPLOAD_VERIFY_WINDOW_SECONDS is deleted: 410 `upload_expired`.
    """
    object_key = query.object_key or body.object_key
    expected = query.expected_hash or body.expected_hash
    missing = [name for name, value in (("object_key", object_key),
                                        ("expected_hash", expected)) if not value]
    if missing or object_key is None or expected is None:
        raise InvalidInput(f"send {' and '.join(missing)} as query parameters or JSON",
                           code="invalid_request",
                           fields=[{"field": m, "message": "Field required"} for m in missing])
    cfg = settings()
    store = open_store(cfg)
    with unit_of_work(cfg) as session:
        outcome = pushed.verify_object(session, store, caller().account_id, object_key,
                                       expected=expected.lower(),
                                       max_size=cfg.storage_max_object_bytes,
                                       now=datetime.now(UTC))
        out = verify_out(outcome.upload, outcome.evidence) if outcome.evidence else None
    if outcome.error is not None:
        raise outcome.error
    assert out is not None
    return out.model_dump()


@bp.post("/<evidence_id>/link-to-control",
         responses={200: LinkOut, 201: LinkOut, 409: ErrorBody, 410: ErrorBody,
                    422: ErrorBody})
def link_to_control(path: EvidencePath, body: LinkRequest) -> Reply:
    """Link the evidence to a control (and optionally an assessment); idempotent.

    `evidence_id` is the id from verify (evo-…) or the file's SHA-256; pass `object_key` too
    when the upload was not verified yet: it is verified here against that SHA-256.
    """
    cfg = settings()
    store = open_store(cfg)
    with unit_of_work(cfg) as session:
        link = pushed.link_to_control(
            session, store, caller(), path.evidence_id, control_ref=body.control_id,
            framework_ref=body.framework_id, assessment_id=body.assessment_id,
            object_key=body.object_key, max_size=cfg.storage_max_object_bytes,
            now=datetime.now(UTC))
        lin, evidence = link.lineage, link.outcome.evidence
        out = LinkOut(
            lineage_id=lin.id, evidence_id=lin.evidence_object_id, control_id=lin.control_id,
            framework_id=lin.framework_id, assessment_id=lin.assessment_id,
            created=link.created, control_key=f"{lin.framework_id}-{lin.control_id.lower()}",
            sha256=evidence.sha256 if evidence else None,
            object_key=link.outcome.upload.upload_key, linked_at=iso(lin.created_at),
        ) if lin is not None else None
    if link.outcome.error is not None:
        raise link.outcome.error
    assert out is not None
    return out.model_dump(), (201 if link.created else 200)


@bp.get("", responses={200: PushedList})
def list_pushed_evidence(path: OrgPath, query: PushedQuery) -> Reply:
    """Pushed evidence, newest first; `control_id` (+ `framework_id`) for one control's."""
    with unit_of_work(settings()) as session:
        page = pushed.list_pushed(session, caller().account_id, limit=query.limit,
                                  offset=query.offset, status=query.status,
                                  control_ref=query.control_id,
                                  framework_ref=query.framework_id)
        return PushedList(evidence=[pushed_out(i) for i in page.items], total=page.total,
                          limit=query.limit, offset=query.offset).model_dump()


@bp.get("/<evidence_id>", responses={200: PushedItem})
def get_pushed_evidence(path: EvidencePath) -> Reply:
    """One pushed object's metadata and the controls it is linked to."""
    with unit_of_work(settings()) as session:
        item = pushed.get_pushed(session, caller().account_id, path.evidence_id)
        return PushedItem(evidence=pushed_out(item)).model_dump()


@bp.get("/<evidence_id>/download-url", responses={200: DownloadOut, 409: ErrorBody})
def create_download_url(path: EvidencePath) -> Reply:
    """A short-lived presigned GET for the verified bytes."""
    cfg = settings()
    store = open_store(cfg)
    with unit_of_work(cfg) as session:
        row, url = pushed.download_url(session, store, caller().account_id, path.evidence_id,
                                       expires_in=cfg.storage_presign_seconds)
        return DownloadOut(download_url=url, expires_in=cfg.storage_presign_seconds,
                           evidence_id=row.id, filename=row.filename, sha256=row.sha256,
                           size=row.size).model_dump()
