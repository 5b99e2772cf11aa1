"""Evidence customers push themselves: upload URLs, SHA-256 verification, lineage to controls.

The flow (seed 002): `request_upload` presigns a PUT to an unguessable key under the account;
the client PUTs the bytes straight to storage; `verify_upload` streams the stored object,
recomputes its SHA-256 and size, and copies it to a content-addressed key that no presigned
URL can write (so a verified object cannot be replaced afterwards); `link_to_control` writes an
idempotent lineage row. An account stores each content once: a second upload of the same bytes
becomes a `duplicate` of the first and links to it, so pushing the same file again is harmless.

Functions that may record a failed verification return the failure (`Outcome.error`) instead
of raising it, so the caller can commit the recorded state and then answer the error.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import ledger
from engine.accounts import ensure_account
from engine.apikeys import Caller
from engine.errors import Conflict, EngineError, Gone, InvalidInput, NotFound
from engine.frameworks import Control, catalog
from engine.models.core import new_id
from engine.models.push import EvidenceLineage, EvidenceObject, ObjectStatus
from engine.storage import ObjectChanged, ObjectMissing, ObjectTooLarge, Store

SHA256 = re.compile(r"^[0-9a-f]{64}$")
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SETTLED = (ObjectStatus.VERIFIED, ObjectStatus.DUPLICATE)


def safe_filename(filename: str) -> str:
    """The last path segment with only URL-safe characters (keys travel unencoded in URLs)."""
    name = UNSAFE.sub("-", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip(".-")
    return name[:100] or "evidence"


def content_key(account_id: str, sha256: str) -> str:
    return f"{account_id}/evidence/sha256/{sha256}"


def check_framework(framework_ref: str) -> None:
    frameworks = catalog().frameworks
    if framework_ref.lower() not in frameworks:
        raise InvalidInput(f"unknown framework {framework_ref!r}; known frameworks: "
                           + ", ".join(sorted(frameworks)), code="unknown_framework")


def resolve_control(control_ref: str, framework_ref: str | None) -> Control:
    """`CC6.1` (+ `SOC2`), or `soc2-cc6.1`; an unknown framework or control is 422."""
    if framework_ref is not None:
        check_framework(framework_ref)
        prefix = framework_ref.lower() + "-"
        if control_ref.lower().startswith(prefix):
            control_ref = control_ref[len(prefix):]
    return catalog().resolve(control_ref, framework_ref)


@dataclass(frozen=True)
class UploadTicket:
    evidence: EvidenceObject
    upload_url: str
    expires_in: int


def request_upload(session: Session, store: Store, caller: Caller, *, filename: str,
                   content_type: str, control_ref: str | None, framework_ref: str | None,
                   size: int | None, max_size: int, expires_in: int,
                   now: datetime) -> UploadTicket:
    """A pending evidence object and a presigned PUT for it."""
    control = resolve_control(control_ref, framework_ref) if control_ref else None
    if framework_ref is not None:
        check_framework(framework_ref)
    if size is not None and size > max_size:
        raise InvalidInput(f"the file is {size} bytes; the maximum is {max_size}",
                           code="object_too_large", size=size, max_size=max_size)
    store.check_bucket()
    ensure_account(session, caller.account_id)
    key = (f"{caller.account_id}/uploads/{secrets.token_urlsafe(24)}/"
           f"{safe_filename(filename)}")
    row = EvidenceObject(
        account_id=caller.account_id, upload_key=key, filename=filename,
        content_type=content_type, framework_id=control.framework_id if control else None,
        control_id=control.id if control else None, uploaded_by_key_id=caller.key_id,
        uploaded_by=caller.subject, upload_expires_at=now + timedelta(seconds=expires_in))
    session.add(row)
    session.flush()
    url = store.presign_put(key, content_type, expires_in)
    return UploadTicket(row, url, expires_in)


@dataclass
class Outcome:
    """The upload as recorded, the evidence it resolved to, and an error to answer, if any."""

    upload: EvidenceObject
    evidence: EvidenceObject | None = None
    error: EngineError | None = None


def find_upload(session: Session, account_id: str, object_key: str,
                *, for_update: bool = False) -> EvidenceObject:
    stmt = select(EvidenceObject).where(EvidenceObject.account_id == account_id,
                                        EvidenceObject.upload_key == object_key)
    row = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if row is None:
        raise NotFound(f"no upload with object_key {object_key!r} in this organization; "
                       "request one with POST .../evidence/upload-url", code="unknown_object")
    return row


def canonical(session: Session, row: EvidenceObject) -> EvidenceObject:
    """The verified object holding this upload's content (itself, or the one it duplicates)."""
    if row.status == ObjectStatus.DUPLICATE and row.duplicate_of is not None:
        original = session.get(EvidenceObject, row.duplicate_of)
        if original is not None:
            return original
    return row


def _mismatch(expected: str, actual: str, size: int | None, object_key: str) -> Conflict:
    return Conflict(f"SHA-256 mismatch: you expected {expected} but the stored object hashes "
                    f"to {actual} ({size} bytes); the upload was truncated or altered. "
                    "PUT the file again (or request a new upload URL) and verify again",
                    code="hash_mismatch", expected_hash=expected, actual_hash=actual,
                    size=size, object_key=object_key)


def verify_upload(session: Session, store: Store, row: EvidenceObject, *,
                  expected: str | None, max_size: int, now: datetime) -> Outcome:
    """Hash the stored bytes; settle the upload as verified, duplicate, mismatched or rejected.

    `row` must be locked (FOR UPDATE). A settled upload is answered from its record: the bytes
    it names live under a key no presigned URL can write, so they cannot have changed. An
    expired one (engine.maintenance.expire_unverified_uploads) is 410 `upload_expired`.
    """
    if row.status == ObjectStatus.EXPIRED:
        raise Gone("this upload was not verified in time: its object was deleted when the "
                   "verify window ran out (EVIDENCE_UPLOAD_VERIFY_WINDOW_SECONDS). Request a new "
                   "upload URL, PUT the file and verify it", code="upload_expired",
                   object_key=row.upload_key)
    if row.status in SETTLED:
        evidence = canonical(session, row)
        if expected is not None and expected != evidence.sha256:
            return Outcome(row, evidence, _mismatch(expected, evidence.sha256 or "",
                                                    evidence.size, row.upload_key))
        return Outcome(row, evidence)
    try:
        digest = store.digest(row.upload_key, max_size)
    except ObjectMissing:
        raise Conflict("nothing is stored at this object_key: PUT the file to its upload_url "
                       "first (a failed verification deletes the object; PUT it again)",
                       code="not_uploaded", object_key=row.upload_key) from None
    except ObjectTooLarge as exc:
        store.delete(row.upload_key)
        row.status, row.size, row.expected_sha256 = ObjectStatus.REJECTED, exc.size, expected
        return Outcome(row, None, InvalidInput(
            f"the stored object is {exc.size} bytes or more, over the maximum of {max_size}; "
            "it has been deleted", code="object_too_large", size=exc.size, max_size=max_size,
            object_key=row.upload_key))
    row.sha256, row.size, row.expected_sha256 = digest.sha256, digest.size, expected
    if expected is not None and expected != digest.sha256:
        store.delete(row.upload_key)
        row.status = ObjectStatus.MISMATCHED
        return Outcome(row, None, _mismatch(expected, digest.sha256, digest.size,
                                            row.upload_key))
    return _settle(session, store, row, digest.etag, now)


def _verified_original(session: Session, account_id: str, sha256: str) -> EvidenceObject | None:
    return session.scalars(select(EvidenceObject).where(
        EvidenceObject.account_id == account_id, EvidenceObject.sha256 == sha256,
        EvidenceObject.status == ObjectStatus.VERIFIED)).first()


def _settle(session: Session, store: Store, row: EvidenceObject, etag: str | None,
            now: datetime) -> Outcome:
    """Keep one copy per content: the first becomes the evidence, later ones duplicates."""
    assert row.sha256 is not None
    row.verified_at = now
    original = _verified_original(session, row.account_id, row.sha256)
    if original is None:
        target = content_key(row.account_id, row.sha256)
        try:
            store.copy(row.upload_key, target, if_match=etag)
        except ObjectChanged:
            raise Conflict("the object was replaced while it was being verified; verify again",
                           code="object_changed", object_key=row.upload_key) from None
        try:
            with session.begin_nested():
                row.status, row.stored_key = ObjectStatus.VERIFIED, target
                session.flush()
        except IntegrityError:  # the same bytes were verified concurrently: theirs stands
            original = _verified_original(session, row.account_id, row.sha256)
            if original is None:
                raise
    if original is not None:
        row.status, row.duplicate_of = ObjectStatus.DUPLICATE, original.id
        row.stored_key = original.stored_key
    store.delete(row.upload_key)
    return Outcome(row, original or row)


def verify_object(session: Session, store: Store, account_id: str, object_key: str, *,
                  expected: str, max_size: int, now: datetime) -> Outcome:
    """POST .../evidence/verify: check the stored object against the client's SHA-256."""
    row = find_upload(session, account_id, object_key, for_update=True)
    return verify_upload(session, store, row, expected=expected, max_size=max_size, now=now)


@dataclass
class Link:
    outcome: Outcome
    lineage: EvidenceLineage | None = None
    created: bool = False


def _evidence_for(session: Session, store: Store, account_id: str, evidence_ref: str,
                  object_key: str | None, max_size: int, now: datetime) -> Outcome:
    """Resolve `{evidence_id}`: the object's id (`evo-…`) or its content SHA-256."""
    ref = evidence_ref.lower() if SHA256.match(evidence_ref.lower()) else evidence_ref
    if SHA256.match(ref):
        if object_key is not None:
            row = find_upload(session, account_id, object_key, for_update=True)
            return verify_upload(session, store, row, expected=ref, max_size=max_size, now=now)
        original = _verified_original(session, account_id, ref)
        if original is None:
            raise NotFound(f"no verified evidence with SHA-256 {ref}: verify the upload first, "
                           "or pass its object_key", code="unknown_evidence")
        return Outcome(original, original)
    found = session.scalars(select(EvidenceObject).where(
        EvidenceObject.account_id == account_id, EvidenceObject.id == evidence_ref)
        .with_for_update()).first()
    if found is None:
        raise NotFound(f"no evidence {evidence_ref!r} in this organization; use the id from "
                       "verify (evo-…) or the file's SHA-256", code="unknown_evidence")
    if object_key is not None and object_key != found.upload_key:
        raise InvalidInput(f"object_key {object_key!r} is not the upload of {evidence_ref}",
                           code="object_key_mismatch")
    return verify_upload(session, store, found, expected=None, max_size=max_size, now=now)


def link_to_control(session: Session, store: Store, caller: Caller, evidence_ref: str, *,
                    control_ref: str, framework_ref: str | None, assessment_id: str | None,
                    object_key: str | None, max_size: int, now: datetime) -> Link:
    """Tie the evidence to a control; the same link again answers the first (created=False).

    An upload that was not verified yet is verified here (against the SHA-256 in the path,
    when that is what names it), so a link always pins content the engine has hashed.
    """
    control = resolve_control(control_ref, framework_ref)
    outcome = _evidence_for(session, store, caller.account_id, evidence_ref, object_key,
                            max_size, now)
    if outcome.error is not None or outcome.evidence is None:
        return Link(outcome)
    values = {"account_id": caller.account_id, "evidence_object_id": outcome.evidence.id,
              "framework_id": control.framework_id, "control_id": control.id,
              "assessment_id": assessment_id}
    inserted = session.scalar(insert(EvidenceLineage).values(
        id=new_id("lin"), linked_by_key_id=caller.key_id, linked_by=caller.subject,
        created_at=now, **values)
        .on_conflict_do_nothing(constraint="uq_evidence_lineage_link")
        .returning(EvidenceLineage.id))
    lineage = session.scalars(select(EvidenceLineage).where(*(
        getattr(EvidenceLineage, k).is_(None) if v is None else getattr(EvidenceLineage, k) == v
        for k, v in values.items()))).one()
    if inserted is not None:
        ledger.record_link(session, lineage, outcome.evidence.sha256)
    return Link(outcome, lineage, created=inserted is not None)


@dataclass(frozen=True)
class PushedEvidence:
    """A verified object with the controls it is linked to."""

    evidence: EvidenceObject
    links: tuple[EvidenceLineage, ...]


@dataclass(frozen=True)
class PushedPage:
    items: list[PushedEvidence]
    total: int


def _with_links(session: Session, rows: list[EvidenceObject]) -> list[PushedEvidence]:
    links: dict[str, list[EvidenceLineage]] = {r.id: [] for r in rows}
    if rows:
        for lin in session.scalars(select(EvidenceLineage).where(
                EvidenceLineage.evidence_object_id.in_(list(links)))
                .order_by(EvidenceLineage.created_at, EvidenceLineage.id)):
            links[lin.evidence_object_id].append(lin)
    return [PushedEvidence(r, tuple(links[r.id])) for r in rows]


def list_pushed(session: Session, account_id: str, *, limit: int, offset: int,
                status: ObjectStatus = ObjectStatus.VERIFIED, control_ref: str | None = None,
                framework_ref: str | None = None) -> PushedPage:
    """The account's pushed evidence, newest first, optionally only what a control links."""
    where = [EvidenceObject.account_id == account_id, EvidenceObject.status == status]
    if control_ref is not None:
        control = resolve_control(control_ref, framework_ref)
        where.append(EvidenceObject.id.in_(select(EvidenceLineage.evidence_object_id).where(
            EvidenceLineage.account_id == account_id,
            EvidenceLineage.framework_id == control.framework_id,
            EvidenceLineage.control_id == control.id)))
    total = session.scalar(select(func.count()).select_from(EvidenceObject).where(*where)) or 0
    rows = list(session.scalars(select(EvidenceObject).where(*where)
                                .order_by(EvidenceObject.created_at.desc(),
                                          EvidenceObject.id).limit(limit).offset(offset)))
    return PushedPage(_with_links(session, rows), total)


def get_pushed(session: Session, account_id: str, evidence_id: str) -> PushedEvidence:
    """One pushed object by id (`evo-…`), or the verified object with that SHA-256."""
    ref = evidence_id.lower()
    stmt = select(EvidenceObject).where(EvidenceObject.account_id == account_id)
    if SHA256.match(ref):
        stmt = stmt.where(EvidenceObject.sha256 == ref,
                          EvidenceObject.status == ObjectStatus.VERIFIED)
    else:
        stmt = stmt.where(EvidenceObject.id == evidence_id)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound(f"no evidence {evidence_id!r} in this organization",
                       code="unknown_evidence")
    return _with_links(session, [row])[0]


def download_url(session: Session, store: Store, account_id: str, evidence_id: str, *,
                 expires_in: int) -> tuple[EvidenceObject, str]:
    """A presigned GET for verified content (a duplicate serves its original's bytes)."""
    row = canonical(session, get_pushed(session, account_id, evidence_id).evidence)
    if row.status != ObjectStatus.VERIFIED or row.stored_key is None:
        raise Conflict(f"evidence {row.id} is {row.status.value}, not verified: only verified "
                       "content can be downloaded", code="not_verified")
    url = store.presign_get(row.stored_key, filename=safe_filename(row.filename),
                            content_type=row.content_type, expires=expires_in)
    return row, url


def pushed_for_control(session: Session, account_id: str, framework_id: str, control_id: str,
                       assessment_id: str | None = None) -> list[PushedEvidence]:
    """Verified pushed evidence linked to one control (for audits), oldest link first.

    With `assessment_id`, links made for that assessment and links made for none.
    """
    where = [EvidenceLineage.account_id == account_id,
             EvidenceLineage.framework_id == framework_id,
             EvidenceLineage.control_id == control_id]
    if assessment_id is not None:
        where.append((EvidenceLineage.assessment_id == assessment_id)
                     | EvidenceLineage.assessment_id.is_(None))
    rows = list(session.scalars(
        select(EvidenceObject).join(EvidenceLineage,
                                    EvidenceLineage.evidence_object_id == EvidenceObject.id)
        .where(*where, EvidenceObject.status == ObjectStatus.VERIFIED)
        .group_by(EvidenceObject.id)
        .order_by(func.min(EvidenceLineage.created_at), EvidenceObject.id)))
    return _with_links(session, rows)


def pushed_counts(session: Session, account_id: str) -> dict[tuple[str, str], int]:
    """(framework_id, control_id) → how many distinct verified objects are linked to it."""
    rows = session.execute(
        select(EvidenceLineage.framework_id, EvidenceLineage.control_id,
               func.count(func.distinct(EvidenceLineage.evidence_object_id)))
        .join(EvidenceObject, EvidenceObject.id == EvidenceLineage.evidence_object_id)
        .where(EvidenceLineage.account_id == account_id,
               EvidenceObject.status == ObjectStatus.VERIFIED)
        .group_by(EvidenceLineage.framework_id, EvidenceLineage.control_id)).tuples().all()
    return {(f, c): n for f, c, n in rows}
