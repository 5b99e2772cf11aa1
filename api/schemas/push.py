"""Evidence push (seed 002, field for field: `upload_url`, `object_key`, `expires_in`,
`max_size`, `lineage_id`, `created`, …): request and response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.fields import LINE, page_limit, page_offset, text
from api.schemas.common import OrgPath, QueryModel
from engine import pushed
from engine.integrations import iso
from engine.models.push import EvidenceLineage, EvidenceObject, ObjectStatus

SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
MIME_PART = "[A-Za-z0-9!#$&^_.+-]+"
CONTENT_TYPE = (rf"^{MIME_PART}/{MIME_PART}"
                rf"(\s*;\s*{MIME_PART}=(\"[^\"\r\n]*\"|{MIME_PART}))*$")
OBJECT_KEY_PATTERN = r"^[A-Za-z0-9._/-]+$"
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_FILE_SIZE = 2**62  # a bigint holds it; max_size refuses anything near it


class EvidencePath(OrgPath):
    evidence_id: str = text(100, min_length=1, pattern=ID_PATTERN,
                            description="the object's id (evo-…) or its SHA-256 (hex)")


class UploadRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
    content_type: str = Field("application/octet-stream", max_length=255,
                              pattern=CONTENT_TYPE,
                              description="send the same Content-Type header with the PUT")
    control_id: str | None = text(64, default=None, pattern=LINE,
                                  description="the control this file is meant for (checked)")
    framework_id: str | None = text(32, default=None, pattern=LINE)
    size: int | None = Field(None, ge=0, le=MAX_FILE_SIZE,
                             description="bytes, if known: refused early if over max_size")


class UploadUrlOut(BaseModel):
    success: bool = True
    upload_url: str
    object_key: str
    expires_in: int
    max_size: int
    evidence_id: str
    method: str = "PUT"
    headers: dict[str, str]


class VerifyQuery(BaseModel):
    object_key: str | None = Field(None, max_length=1024, pattern=OBJECT_KEY_PATTERN)
    expected_hash: str | None = Field(None, pattern=SHA256_PATTERN,
                                      description="SHA-256 of the file, hex")


class VerifyBody(VerifyQuery):
    """The same fields as JSON; the body is optional (query parameters are enough)."""

    model_config = ConfigDict(openapi_extra={  # type: ignore[typeddict-unknown-key]
        "required": False,
        "description": "optional: object_key and expected_hash may be query parameters"})

    @model_validator(mode="before")
    @classmethod
    def _no_body_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


class VerifyOut(BaseModel):
    success: bool = True
    verified: bool = True
    evidence_id: str = Field(description="the verified evidence holding these bytes")
    object_key: str
    sha256: str
    size: int
    status: str = Field(description="verified, or duplicate when the organization already "
                        "holds the same bytes (then evidence_id is that evidence)")
    verified_at: str | None


class LinkRequest(BaseModel):
    control_id: str = text(64, min_length=1, pattern=LINE, description="e.g. CC6.1 or soc2-cc6.1")
    framework_id: str | None = text(32, default=None, pattern=LINE,
                                    description="e.g. SOC2, ISO27001")
    assessment_id: str | None = Field(None, min_length=1, max_length=64,
                                      pattern=r"^[A-Za-z0-9._:-]+$")
    object_key: str | None = Field(None, max_length=1024, pattern=OBJECT_KEY_PATTERN)


class LinkOut(BaseModel):
    success: bool = True
    lineage_id: str
    evidence_id: str
    control_id: str
    framework_id: str
    assessment_id: str | None
    created: bool = Field(description="false when the link already existed (safe to retry)")
    control_key: str
    sha256: str | None
    object_key: str | None
    linked_at: str | None


class ControlLinkOut(BaseModel):
    lineage_id: str
    control_id: str
    framework_id: str
    control_key: str
    assessment_id: str | None
    linked_at: str | None


class PushedEvidenceOut(BaseModel):
    """One pushed object (named apart from the auditor view's PushedOut: the OpenAPI document
    keys schemas by class name)."""

    id: str
    source: str = "pushed"
    object_key: str
    filename: str
    content_type: str
    status: str
    sha256: str | None
    size: int | None
    duplicate_of: str | None
    uploaded_by: str
    uploaded_at: str | None
    verified_at: str | None
    controls: list[ControlLinkOut]


class PushedQuery(QueryModel):
    limit: int = page_limit(50, 200)
    offset: int = page_offset()
    status: ObjectStatus = ObjectStatus.VERIFIED
    control_id: str | None = text(64, default=None, pattern=LINE)
    framework_id: str | None = text(32, default=None, pattern=LINE)


class PushedList(BaseModel):
    success: bool = True
    evidence: list[PushedEvidenceOut]
    total: int
    limit: int
    offset: int


class PushedItem(BaseModel):
    success: bool = True
    evidence: PushedEvidenceOut


class DownloadOut(BaseModel):
    success: bool = True
    download_url: str
    expires_in: int
    evidence_id: str
    filename: str
    sha256: str | None
    size: int | None


def link_out(lin: EvidenceLineage) -> ControlLinkOut:
    return ControlLinkOut(lineage_id=lin.id, control_id=lin.control_id,
                          framework_id=lin.framework_id,
                          control_key=f"{lin.framework_id}-{lin.control_id.lower()}",
                          assessment_id=lin.assessment_id, linked_at=iso(lin.created_at))


def pushed_out(item: pushed.PushedEvidence) -> PushedEvidenceOut:
    row = item.evidence
    return PushedEvidenceOut(id=row.id, object_key=row.upload_key, filename=row.filename,
                     content_type=row.content_type, status=row.status.value, sha256=row.sha256,
                     size=row.size, duplicate_of=row.duplicate_of,
                     uploaded_by=row.uploaded_by_key_id or row.uploaded_by,
                     uploaded_at=iso(row.created_at), verified_at=iso(row.verified_at),
                     controls=[link_out(lin) for lin in item.links])


def verify_out(upload: EvidenceObject, evidence: EvidenceObject) -> VerifyOut:
    return VerifyOut(evidence_id=evidence.id, object_key=upload.upload_key,
                     sha256=evidence.sha256 or "", size=evidence.size or 0,
                     status=upload.status.value, verified_at=iso(evidence.verified_at))
