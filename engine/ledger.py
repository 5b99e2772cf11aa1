"""The tamper-evident ledger: every state change an auditor relies on, in a per-account hash
chain, with checkpoints signed by the deployment's Ed25519 key.

An entry holds the canonical JSON of what it records (`content`), its SHA-256, the previous
entry's hash and its own: entry_sha256 = SHA-256 of the canonical JSON array
[prev_sha256, content_sha256, seq, kind, account_id, subject, recorded_at]. The table refuses
UPDATE, DELETE and TRUNCATE (triggers of migration 0012_ledger).

Writers call `append` at the point of their write; the content and its hash are computed then,
and the entry is written as the last step of the transaction (a `before_commit` hook), under
the account's `ledger_head` row lock: concurrent writers of one account queue on that lock for
three short statements and never fork the chain. Evidence versions are recorded per (run,
check) batch, by id range and a digest of the rows (`append_versions`), so a sync of thousands
of resources adds one entry per changed check, and an unchanged re-sync adds none.

`verify` recomputes a chain (hashes, links, sequence, and each batch's rows) and names the first
broken entry; `checkpoint` signs (account, length, head) so a kept checkpoint later proves its
prefix intact.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import bindparam, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, object_session
from sqlalchemy.types import BigInteger

from engine.errors import InvalidInput
from engine.models.audit import ActivityType, AuditActivity
from engine.models.core import EvidenceVersion, SyncRun
from engine.models.ledger import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerHead,
    LedgerKind,
    LedgerSigningKey,
)
from engine.models.push import EvidenceLineage
from engine.settings import Settings, get_settings
from engine.vault import vault

GENESIS = "0" * 64
"""The prev_sha256 of an account's first entry."""
_PENDING = "ledger.pending"
_KEY_ROW = "deployment"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"ledger content holds a {type(value).__name__}, which is not JSON")


def canonical(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces, UTF-8), so equal content hashes equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def sha256_hex(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def timestamp(value: datetime) -> str:
    """A time as the ledger spells it: UTC, ISO 8601, microseconds."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(*, account_id: str, seq: int, kind: str, subject: str, recorded_at: datetime,
               content_sha256: str, prev_sha256: str) -> str:
    return sha256_hex(canonical([prev_sha256, content_sha256, seq, kind, account_id, subject,
                                 timestamp(recorded_at)]))


# --- appending -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pending:
    """An entry waiting for the end of its transaction: everything but seq and the links."""

    account_id: str
    kind: str
    subject: str
    content: str
    content_sha256: str
    recorded_at: datetime


def append(session: Session, account_id: str, kind: LedgerKind, content: Mapping[str, Any], *,
           subject: str = "", now: datetime | None = None) -> None:
    """Record `content` in the account's chain when the session's transaction commits."""
    body = canonical(content)
    pending: list[Pending] = session.info.setdefault(_PENDING, [])
    pending.append(Pending(account_id, kind.value, subject, body, sha256_hex(body),
                           now or datetime.now(UTC)))


_LOCK_HEAD = text("""
INSERT INTO ledger_head (account_id, seq, entry_sha256, updated_at)
VALUES (:account_id, 0, :genesis, now())
ON CONFLICT (account_id) DO UPDATE SET account_id = excluded.account_id
RETURNING seq, entry_sha256
""")


def write_pending(session: Session) -> int:
    """Chain the session's pending entries, account by account (in id order, so two writers of
    the same accounts never wait on each other crosswise); how many were written."""
    pending: list[Pending] = session.info.pop(_PENDING, [])
    by_account: dict[str, list[Pending]] = {}
    for p in pending:
        by_account.setdefault(p.account_id, []).append(p)
    for account_id in sorted(by_account):
        seq, prev = session.execute(_LOCK_HEAD, {"account_id": account_id,
                                                 "genesis": GENESIS}).one()
        rows = []
        for p in by_account[account_id]:
            seq += 1
            digest = entry_hash(account_id=account_id, seq=seq, kind=p.kind, subject=p.subject,
                                recorded_at=p.recorded_at, content_sha256=p.content_sha256,
                                prev_sha256=prev)
            rows.append({"account_id": account_id, "seq": seq, "kind": p.kind,
                         "subject": p.subject, "recorded_at": p.recorded_at,
                         "content": p.content, "content_sha256": p.content_sha256,
                         "prev_sha256": prev, "entry_sha256": digest})
            prev = digest
        session.execute(insert(LedgerEntry).values(rows))
        session.execute(update(LedgerHead).where(LedgerHead.account_id == account_id)
                        .values(seq=seq, entry_sha256=prev, updated_at=func.now()))
    return len(pending)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """The transaction's last writes: its other changes are flushed first, so the head's row
    lock is the last lock it takes and is held only for the three statements and the commit."""
    if session.info.get(_PENDING):
        session.flush()
        write_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # committed (already written) or rolled back: forget
        session.info.pop(_PENDING, None)


# A batch is the newest rows (ids above the mark, by the primary key: a range closed on both
# ends, so even a generic plan scans the index, not the table) of this account, run and
# store time: `now` is taken once per stored check, so only a store of another check of the
# same run in the very same microsecond could share it, and then both entries cover both
# batches (each still verifies). Matching rows to their check by a join instead costs a probe
# per row and, on a large first sync's stale statistics, plans quadratic.
# The digest of one evidence_version row: every column the record depends on (what was judged,
# by which check version, from which snapshot), spelled by
# Postgres the same way at write and at verify (the title's length makes the fields
# unambiguous; jsonb text escapes control characters).
_ROW_DIGEST = """encode(sha256(convert_to(concat_ws(chr(31),
    v.id, v.evidence_id, v.account_id, coalesce(v.run_id, ''), v.change, v.status,
    length(v.title), v.title, v.data, v.content_hash, extract(epoch FROM v.recorded_at),
    v.check_version, coalesce(v.snapshot_sha256, '')), 'UTF8')), 'hex')"""

_BATCH_DIGEST = """
SELECT count(*) AS n, min(id) AS lo, max(id) AS hi,
       encode(sha256(convert_to(coalesce(
           string_agg(id::text || ' ' || digest, E'\\n' ORDER BY id), ''), 'UTF8')), 'hex')
           AS rows_sha256
FROM v
"""

_BATCH = text(f"""
WITH v AS MATERIALIZED (
    SELECT v.id, {_ROW_DIGEST} AS digest
    FROM evidence_version v
    WHERE v.id > :after_id AND v.id <= (SELECT max(id) FROM evidence_version)
      AND v.account_id = :account_id AND v.recorded_at = :now
      AND v.run_id IS NOT DISTINCT FROM CAST(:run_id AS text)
)
{_BATCH_DIGEST}
""")  # noqa: S608 (built of constants only)

_COVERED = text(f"""
WITH v AS (
    SELECT v.id, {_ROW_DIGEST} AS digest
    FROM evidence_version v
    WHERE v.id BETWEEN :first AND :last
      AND EXISTS (SELECT 1 FROM unnest(CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) AS r(lo, hi)
                  WHERE v.id BETWEEN r.lo AND r.hi)
)
{_BATCH_DIGEST}
""")  # noqa: S608 (built of constants only)

_ISLANDS = text("""
SELECT min(id) AS lo, max(id) AS hi
FROM (SELECT v.id, v.id - row_number() OVER (ORDER BY v.id) AS island
      FROM evidence_version v
      WHERE v.id BETWEEN :lo AND :hi AND v.account_id = :account_id AND v.recorded_at = :now
        AND v.run_id IS NOT DISTINCT FROM CAST(:run_id AS text)) s
GROUP BY island ORDER BY lo
""")

_MISSING = text("""
SELECT i FROM unnest(CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) AS r(lo, hi),
     generate_series(r.lo, r.hi) AS i
WHERE NOT EXISTS (SELECT 1 FROM evidence_version v WHERE v.id = i)
ORDER BY i LIMIT 5
""")


def version_mark(session: Session) -> int:
    """The highest evidence_version id this transaction can see: a batch written after this
    call has higher ids (a lower bound that lets `append_versions` read only the new rows)."""
    return session.scalar(text("SELECT coalesce(max(id), 0) FROM evidence_version")) or 0


def append_versions(session: Session, *, account_id: str, connection_id: str, check_id: str,
                    run_id: str | None, now: datetime, after_id: int) -> None:
    """Record the evidence versions one store of one check just wrote (ids above `after_id`,
    stamped `now`) as one entry: their id ranges and the digest of their rows."""
    where = {"account_id": account_id, "now": now, "run_id": run_id}
    batch = session.execute(_BATCH, {"after_id": after_id, **where}).one()
    if not batch.n:
        return
    ids = [[batch.lo, batch.hi]]
    if batch.hi - batch.lo + 1 != batch.n:  # one statement's ids are contiguous, mostly
        ids = [list(r) for r in session.execute(_ISLANDS, {"lo": batch.lo, "hi": batch.hi,
                                                          **where})]
    append(session, account_id, LedgerKind.EVIDENCE_VERSIONS, {
        "run_id": run_id, "connection_id": connection_id, "check_id": check_id,
        "versions": batch.n, "ids": ids, "rows_sha256": batch.rows_sha256,
    }, subject=f"{connection_id}/{check_id}", now=now)


def record_run(run: SyncRun) -> None:
    """Record a run's final status and tally, in the transaction of the session holding it."""
    session = object_session(run)
    if session is None:
        raise RuntimeError(f"run {run.id} is not in a session: its completion cannot be recorded")
    append(session, run.account_id, LedgerKind.RUN_COMPLETED, {
        "run_id": run.id, "connection_id": run.connection_id, "status": run.status,
        "evidence_count": run.evidence_count, "changed_count": run.changed_count,
        "checks_errored": run.checks_errored, "started_at": run.started_at,
        "finished_at": run.finished_at,
    }, subject=run.id, now=run.finished_at)


def record_link(session: Session, lineage: EvidenceLineage, sha256: str | None) -> None:
    """Record a new link of pushed evidence (by its content's SHA-256) to a control."""
    append(session, lineage.account_id, LedgerKind.PUSHED_LINK, {
        "lineage_id": lineage.id, "evidence_object_id": lineage.evidence_object_id,
        "sha256": sha256, "framework_id": lineage.framework_id,
        "control_id": lineage.control_id, "assessment_id": lineage.assessment_id,
        "linked_by": lineage.linked_by, "linked_by_key_id": lineage.linked_by_key_id,
        "created_at": lineage.created_at,
    }, subject=lineage.id, now=lineage.created_at)


def record_activity(session: Session, entry: AuditActivity) -> None:
    """Record an audit's activity (a status change, review, finding, …) with its details."""
    append(session, entry.account_id, audit_kind(entry.type), {
        "audit_id": entry.audit_id, "type": entry.type, "actor_kind": entry.actor_kind,
        "actor": entry.actor, "control_id": entry.control_id, "details": entry.details,
        "at": entry.at,
    }, subject=entry.audit_id, now=entry.at)


_AUDIT_KINDS = {
    ActivityType.STATUS_CHANGED: LedgerKind.AUDIT_STATUS,
    ActivityType.CONTROL_REVIEWED: LedgerKind.AUDIT_REVIEW,
    ActivityType.FINDING_CREATED: LedgerKind.FINDING,
    ActivityType.FINDING_UPDATED: LedgerKind.FINDING,
}


def audit_kind(activity: ActivityType) -> LedgerKind:
    """The ledger kind an audit activity is recorded under."""
    return _AUDIT_KINDS.get(activity, LedgerKind.AUDIT_ACTIVITY)


# --- the signing key -------------------------------------------------------------------------

def _configured_key(settings: Settings) -> Ed25519PrivateKey | None:
    if settings.ledger_signing_key is None:
        return None
    raw = settings.ledger_signing_key.get_secret_value().strip()
    try:
        if raw.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(raw.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw, validate=True))
    except ValueError as exc:  # binascii.Error and UnsupportedAlgorithm are ValueErrors too
        raise RuntimeError("EVIDENCE_LEDGER_SIGNING_KEY is not an Ed25519 private key (PEM, "
                           f"or the 32-byte raw key in base64): {exc}") from None


def key_id_of(public: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of its raw bytes' SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signing_key(session: Session, settings: Settings | None = None) -> Ed25519PrivateKey:
    """The deployment's key: EVIDENCE_LEDGER_SIGNING_KEY, else the one generated on first use
    and stored sealed by the vault (concurrent first uses agree on one)."""
    settings = settings or get_settings()
    configured = _configured_key(settings)
    if configured is not None:
        return configured
    sealer = vault(settings)
    row = session.get(LedgerSigningKey, _KEY_ROW)
    if row is None:
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        session.execute(pg_insert(LedgerSigningKey).values(
            id=_KEY_ROW, key_id=key_id_of(key.public_key()), created_at=datetime.now(UTC),
            sealed=sealer.seal({"ed25519": base64.b64encode(seed).decode()}),
        ).on_conflict_do_nothing())
        row = session.get_one(LedgerSigningKey, _KEY_ROW, populate_existing=True)
    seed = base64.b64decode(sealer.open(row.sealed)["ed25519"])
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    raw_base64: str
    pem: str


def public_key(session: Session, settings: Settings | None = None) -> PublicKey:
    public = signing_key(session, settings).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(key_id_of(public), base64.b64encode(raw).decode(), pem.decode())


# --- checkpoints -----------------------------------------------------------------------------

def signed_payload(account_id: str, length: int, head_sha256: str, signed_at: str,
                   key_id: str) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical({"account_id": account_id, "length": length, "head_sha256": head_sha256,
                      "signed_at": signed_at, "key_id": key_id}).encode()


def checkpoint_document(cp: LedgerCheckpoint) -> dict[str, Any]:
    """A checkpoint as served and kept: what `verify --checkpoint` reads back."""
    return {"account_id": cp.account_id, "length": cp.length, "head_sha256": cp.head_sha256,
            "signed_at": timestamp(cp.signed_at), "key_id": cp.key_id,
            "signature": cp.signature, "algorithm": "Ed25519", "reason": cp.reason,
            "audit_id": cp.audit_id}


def checkpoint(session: Session, account_id: str, *, reason: str, now: datetime | None = None,
               audit_id: str | None = None, settings: Settings | None = None) -> LedgerCheckpoint:
    """Sign the account's chain as it stands in this transaction (its pending entries first)."""
    now = now or datetime.now(UTC)
    write_pending(session)
    head = session.get(LedgerHead, account_id, populate_existing=True)
    length, head_sha = (head.seq, head.entry_sha256) if head is not None else (0, GENESIS)
    key = signing_key(session, settings)
    key_id = key_id_of(key.public_key())
    signature = key.sign(signed_payload(account_id, length, head_sha, timestamp(now), key_id))
    cp = LedgerCheckpoint(account_id=account_id, length=length, head_sha256=head_sha,
                          signed_at=now, key_id=key_id, reason=reason, audit_id=audit_id,
                          signature=base64.b64encode(signature).decode())
    session.add(cp)
    session.flush()
    return cp


def checkpoint_moved(session: Session, now: datetime,
                     settings: Settings | None = None) -> list[LedgerCheckpoint]:
    """The daily checkpoint: one for every account whose chain grew since its last one."""
    last = (select(func.max(LedgerCheckpoint.length))
            .where(LedgerCheckpoint.account_id == LedgerHead.account_id).scalar_subquery())
    moved = session.scalars(select(LedgerHead.account_id)
                            .where(LedgerHead.seq > func.coalesce(last, 0))
                            .order_by(LedgerHead.account_id)).all()
    return [checkpoint(session, a, reason="daily", now=now, settings=settings) for a in moved]


def checkpoints(session: Session, account_id: str, *, since: datetime | None = None,
                until: datetime | None = None, limit: int = 100,
                offset: int = 0) -> tuple[list[LedgerCheckpoint], int]:
    """The account's checkpoints, oldest first, optionally within [since, until]."""
    where = [LedgerCheckpoint.account_id == account_id]
    if since is not None:
        where.append(LedgerCheckpoint.signed_at >= since)
    if until is not None:
        where.append(LedgerCheckpoint.signed_at <= until)
    total = session.scalar(select(func.count()).select_from(LedgerCheckpoint).where(*where))
    rows = session.scalars(select(LedgerCheckpoint).where(*where)
                           .order_by(LedgerCheckpoint.signed_at, LedgerCheckpoint.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), total or 0


# --- verifying -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    """The first entry of a chain that does not hold, and what differs."""

    account_id: str
    seq: int
    kind: str
    reason: str


@dataclass(frozen=True)
class CheckpointVerdict:
    ok: bool
    length: int
    reason: str


@dataclass(frozen=True)
class Verdict:
    account_id: str
    length: int
    head_sha256: str
    broken: Break | None = None
    checkpoint: CheckpointVerdict | None = None
    unrecorded: tuple[int, ...] = ()
    """The first evidence_version ids that no entry covers (rows added behind its back)."""
    unrecorded_count: int = 0

    @property
    def ok(self) -> bool:
        return (self.broken is None and not self.unrecorded_count
                and (self.checkpoint is None or self.checkpoint.ok))


_RANGES = bindparam("lo", type_=ARRAY(BigInteger)), bindparam("hi", type_=ARRAY(BigInteger))


def _batch_differs(session: Session, entry: LedgerEntry) -> str | None:
    """Recompute an evidence_versions entry from the rows it covers; what differs, if anything."""
    recorded = json.loads(entry.content)
    ranges = recorded.get("ids") or []
    params = {"lo": [r[0] for r in ranges], "hi": [r[1] for r in ranges]}
    bounds = {"first": min(params["lo"], default=0), "last": max(params["hi"], default=-1)}
    found = session.execute(_COVERED.bindparams(*_RANGES), {**params, **bounds}).one()
    if found.n != recorded.get("versions"):
        missing = session.scalars(_MISSING.bindparams(*_RANGES), params).all()
        return (f"it covers {recorded.get('versions')} evidence versions but {found.n} remain"
                + (f" (missing ids {', '.join(map(str, missing))})" if missing else ""))
    if found.rows_sha256 != recorded.get("rows_sha256"):
        spans = ", ".join(f"{lo}–{hi}" if lo != hi else str(lo) for lo, hi in ranges)
        return (f"the evidence versions it covers (ids {spans}) no longer hash to its "
                "rows_sha256: a covered evidence_version row was changed")
    return None


def _entry_differs(session: Session, entry: LedgerEntry, seq: int, prev: str) -> str | None:
    if entry.seq != seq:
        return (f"entry {seq} is missing (the next entry is {entry.seq})" if entry.seq > seq
                else f"entry {entry.seq} appears twice")
    if entry.prev_sha256 != prev:
        return (f"prev_sha256 {entry.prev_sha256[:12]}… does not match entry {seq - 1} "
                f"({prev[:12]}…): this entry or the one before was rewritten")
    content_sha = sha256_hex(entry.content)
    if content_sha != entry.content_sha256:
        return (f"its content hashes to {content_sha[:12]}…, not the recorded "
                f"{entry.content_sha256[:12]}…: the content was changed")
    recomputed = entry_hash(account_id=entry.account_id, seq=entry.seq, kind=entry.kind,
                            subject=entry.subject, recorded_at=entry.recorded_at,
                            content_sha256=entry.content_sha256, prev_sha256=entry.prev_sha256)
    if recomputed != entry.entry_sha256:
        return (f"its fields hash to {recomputed[:12]}…, not the recorded entry_sha256 "
                f"{entry.entry_sha256[:12]}…: a field (kind, subject, time or hash) was changed")
    if entry.kind == LedgerKind.EVIDENCE_VERSIONS.value:
        return _batch_differs(session, entry)
    return None


def _entries(session: Session, account_id: str) -> Iterator[LedgerEntry]:
    stmt = (select(LedgerEntry).where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.seq).execution_options(yield_per=1000))
    yield from session.scalars(stmt)


def verify_signature(document: Mapping[str, Any], public: Ed25519PublicKey) -> str | None:
    """Why a checkpoint document's signature fails with `public`, or None when it holds."""
    try:
        payload = signed_payload(str(document["account_id"]), int(document["length"]),
                                 str(document["head_sha256"]), str(document["signed_at"]),
                                 str(document["key_id"]))
        signature = base64.b64decode(str(document["signature"]), validate=True)
    except (KeyError, ValueError, TypeError) as exc:
        return f"the checkpoint is malformed ({exc.__class__.__name__}: {exc})"
    if document["key_id"] != key_id_of(public):
        return (f"it was signed by key {document['key_id']}, not this deployment's key "
                f"{key_id_of(public)}")
    try:
        public.verify(signature, payload)
    except InvalidSignature:
        return "its signature does not verify with this deployment's public key"
    return None


def read_checkpoint(raw: str) -> dict[str, Any]:
    """A checkpoint document as kept (JSON, as served); InvalidInput when it is not one."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the checkpoint is not JSON: {exc}", code="invalid_checkpoint") \
            from None
    if not isinstance(document, dict):
        raise InvalidInput("the checkpoint is not a JSON object", code="invalid_checkpoint")
    missing = [k for k in ("account_id", "length", "head_sha256", "signed_at", "key_id",
                           "signature") if k not in document]
    if missing:
        raise InvalidInput(f"the checkpoint lacks {', '.join(missing)}",
                           code="invalid_checkpoint")
    length = document["length"]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise InvalidInput("the checkpoint's length is not a count of entries",
                           code="invalid_checkpoint")
    wrong = [k for k in ("account_id", "head_sha256", "signed_at", "key_id", "signature")
             if not isinstance(document[k], str)]
    if wrong:
        raise InvalidInput(f"the checkpoint's {', '.join(wrong)} must be text",
                           code="invalid_checkpoint")
    return document


def verify(session: Session, account_id: str, *, checkpoint: Mapping[str, Any] | None = None,
           settings: Settings | None = None) -> Verdict:
    """Recompute the account's chain from its first entry; stop at the first broken one.

    With `checkpoint` (a document as `checkpoint_document` gives it), also check its signature
    with this deployment's key and that the chain's first `length` entries still hash to its
    head: a checkpoint taken before a later edit holds, an edit inside its prefix fails it.
    """
    cp_length = int(checkpoint["length"]) if checkpoint is not None else None
    cp_head: str | None = None
    prev, seq, broken = GENESIS, 0, None
    covered: list[tuple[int, int]] = []
    for entry in _entries(session, account_id):
        reason = _entry_differs(session, entry, seq + 1, prev)
        if reason is not None:
            broken = Break(account_id, seq + 1, entry.kind if entry.seq == seq + 1 else "?",
                           reason)
            break
        seq, prev = entry.seq, entry.entry_sha256
        if entry.kind == LedgerKind.EVIDENCE_VERSIONS.value:
            covered.extend((lo, hi) for lo, hi in json.loads(entry.content)["ids"])
        if seq == cp_length:
            cp_head = prev
    head = session.get(LedgerHead, account_id)
    if broken is None and head is not None and (head.seq, head.entry_sha256) != (seq, prev):
        broken = Break(account_id, seq + 1 if head.seq > seq else head.seq, "?", (
            f"entries {seq + 1}–{head.seq} are missing (the head says {head.seq} entries)"
            if head.seq > seq else
            f"the head says {head.seq} entries ending {head.entry_sha256[:12]}…, the chain "
            f"has {seq} ending {prev[:12]}…"))
    verdict = None
    if checkpoint is not None:
        verdict = _checkpoint_verdict(session, account_id, checkpoint, cp_head, broken, seq,
                                      settings)
    unrecorded, count = _unrecorded(session, account_id, covered) if broken is None else ([], 0)
    return Verdict(account_id, seq, prev, broken, verdict, tuple(unrecorded), count)


def _unrecorded(session: Session, account_id: str,
                covered: list[tuple[int, int]]) -> tuple[list[int], int]:
    """The account's evidence versions since its first recorded one that no entry covers:
    every version is written with its entry, so one without is a row added behind the ledger's
    back. (Versions from before the ledger existed are older than the first covered one.)"""
    if not covered:
        return [], 0
    spans = iter(sorted(covered))
    lo, hi = next(spans)
    found: list[int] = []
    count = 0
    ids = session.scalars(select(EvidenceVersion.id).where(
        EvidenceVersion.account_id == account_id, EvidenceVersion.id >= lo)
        .order_by(EvidenceVersion.id).execution_options(yield_per=10_000))
    for version_id in ids:
        while version_id > hi:
            lo, hi = next(spans, (2**63, 2**63))  # past the last: nothing covers the rest
        if version_id < lo:
            count += 1
            if len(found) < 5:
                found.append(version_id)
    return found, count


def _checkpoint_verdict(session: Session, account_id: str, document: Mapping[str, Any],
                        prefix_head: str | None, broken: Break | None, length: int,
                        settings: Settings | None) -> CheckpointVerdict:
    cp_length = int(document["length"])
    if document["account_id"] != account_id:
        return CheckpointVerdict(False, cp_length, f"it is a checkpoint of account "
                                 f"{document['account_id']}, not {account_id}")
    bad_signature = verify_signature(document, signing_key(session, settings).public_key())
    if bad_signature is not None:
        return CheckpointVerdict(False, cp_length, bad_signature)
    if cp_length == 0:
        return CheckpointVerdict(True, 0, "an empty chain: nothing to compare")
    if broken is not None and broken.seq <= cp_length:
        return CheckpointVerdict(False, cp_length, f"entry {broken.seq}, inside the "
                                 f"checkpoint's {cp_length} entries, is broken")
    if prefix_head is None:
        return CheckpointVerdict(False, cp_length, f"the chain has {length} entries; the "
                                 f"checkpoint vouches for {cp_length}: entries were removed")
    if prefix_head != document["head_sha256"]:
        return CheckpointVerdict(False, cp_length, f"the first {cp_length} entries hash to "
                                 f"{prefix_head[:12]}…, the checkpoint says "
                                 f"{str(document['head_sha256'])[:12]}…")
    return CheckpointVerdict(True, cp_length, f"the first {cp_length} entries hash to the "
                             f"signed head {prefix_head[:12]}…")


def accounts(session: Session) -> list[str]:
    """Every account with a chain (a head, or entries whose head was removed)."""
    heads = session.scalars(select(LedgerHead.account_id)).all()
    chains = session.scalars(select(LedgerEntry.account_id).distinct()).all()
    return sorted({*heads, *chains})


def verify_accounts(session: Session, account_id: str | None = None, *,
                    checkpoint: Mapping[str, Any] | None = None,
                    settings: Settings | None = None) -> list[Verdict]:
    """Verify one account's chain (the checkpoint's account, when one is given), or every
    account's."""
    if account_id is None and checkpoint is not None:
        account_id = str(checkpoint["account_id"])
    names = [account_id] if account_id is not None else accounts(session)
    return [verify(session, a, checkpoint=checkpoint, settings=settings) for a in names]


def describe(verdict: Verdict) -> list[str]:
    """A verdict in words, one line per finding (what `evidence ledger verify` prints)."""
    if verdict.broken is None:
        lines = [f"OK {verdict.account_id}: {verdict.length} entries, head "
                 f"{verdict.head_sha256}"]
    else:
        b = verdict.broken
        lines = [f"BROKEN {b.account_id}: entry {b.seq} ({b.kind}): {b.reason}"]
    if verdict.unrecorded_count:
        lines.append(f"UNRECORDED {verdict.account_id}: {verdict.unrecorded_count} evidence "
                     "versions are covered by no ledger entry (ids "
                     + ", ".join(map(str, verdict.unrecorded))
                     + (", …" if verdict.unrecorded_count > len(verdict.unrecorded) else "")
                     + "): added behind the ledger's back")
    cp = verdict.checkpoint
    if cp is not None:
        lines.append(f"checkpoint of {verdict.account_id} at {cp.length} entries: "
                     + ("OK, " if cp.ok else "FAILED, ") + cp.reason)
    return lines
