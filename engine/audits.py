"""The audit domain (seed 001): audits and their one-way status flow, auditor invitations,
control reviews, evidence requests and responses, findings, and the activity log.

Every change is written with an `audit_activity` row in the same transaction (who, what, when).
The evidence an auditor sees is frozen at the moment the audit entered `evidence_review`: each
item is shown as it was then (its `evidence_version` valid at that moment), and anything
collected or changed later is flagged as newer instead of being mixed in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import String

from engine import pushed
from engine.auditor_tokens import (
    AuditorPrincipal,
    AuditorToken,
    end_session_writes,
    new_link_token,
    redeem_link_token,
    require_live,
    revoke_sessions,
    start_session,
)
from engine.connections import ensure_account
from engine.controls import status_of
from engine.errors import Conflict, EngineError, InvalidInput, NotFound
from engine.frameworks import Control, Framework, catalog
from engine.mail import queue_mail, require_mail
from engine.models import ControlStatus, EvidenceStatus
from engine.models.audit import (
    ActivityType,
    ActorKind,
    Audit,
    AuditActivity,
    AuditControl,
    AuditorInvitation,
    AuditorSession,
    AuditorStatus,
    AuditStatus,
    AuditType,
    EvidenceRequest,
    Finding,
    FindingSeverity,
    FindingStatus,
    Priority,
    RequestStatus,
    ReviewStatus,
    RevokeReason,
)
from engine.settings import Settings
from engine.tokens import Principal

RECENT_ACTIVITY = 10


class Keep(Enum):
    """Marks a field an update leaves as it is (distinct from None, which clears it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- who acts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Actor:
    """Who made a change, as the activity log records it."""

    kind: ActorKind
    label: str

    @classmethod
    def customer(cls, principal: Principal) -> Actor:
        return cls(ActorKind.CUSTOMER, principal.subject)

    @classmethod
    def auditor(cls, principal: AuditorPrincipal) -> Actor:
        return cls(ActorKind.AUDITOR, principal.label)


def record(session: Session, audit: Audit, actor: Actor, kind: ActivityType, now: datetime, *,
           control_id: str | None = None, **details: Any) -> AuditActivity:
    """Append one entry to the audit's activity log."""
    entry = AuditActivity(audit_id=audit.id, account_id=audit.account_id, actor_kind=actor.kind,
                          actor=actor.label[:400], type=kind, control_id=control_id,
                          details=details, at=now)
    session.add(entry)
    return entry


# --- frameworks and controls ---------------------------------------------------------------

def framework(framework_id: str) -> Framework:
    frameworks = catalog().frameworks
    found = frameworks.get(framework_id.lower())
    if found is None:
        raise InvalidInput(f"unknown framework {framework_id!r}; known frameworks: "
                           + ", ".join(sorted(frameworks)), code="unknown_framework")
    return found


def resolve_control(audit: Audit, control_ref: str, *,
                    missing: type[EngineError] = NotFound) -> Control:
    """`CC6.1` or `soc2-cc6.1` (any case) within the audit's framework."""
    fw = framework(audit.framework_id)
    prefix, sep, rest = control_ref.partition("-")
    ref = rest if sep and prefix.lower() == fw.id else control_ref
    for control in fw.controls.values():
        if control.id.lower() == ref.lower():
            return control
    raise missing(f"no control {control_ref!r} in framework {fw.id}", code="unknown_control")


def framework_checks(fw: Framework) -> dict[str, tuple[Control, ...]]:
    """Check id → the controls of `fw` it serves (checks serving none are left out)."""
    found: dict[str, tuple[Control, ...]] = {}
    for check_id, controls in catalog().check_controls.items():
        mine = tuple(c for c in controls if c.framework_id == fw.id)
        if mine:
            found[check_id] = mine
    return found


# --- audits --------------------------------------------------------------------------------

def create_audit(session: Session, account_id: str, actor: Actor, *, framework_id: str,
                 audit_type: AuditType, title: str, description: str | None = None,
                 target_completion: datetime | None = None,
                 now: datetime | None = None) -> Audit:
    now = now or now_utc()
    fw = framework(framework_id)
    ensure_account(session, account_id)
    audit = Audit(account_id=account_id, framework_id=fw.id, type=audit_type, title=title,
                  description=description, status=AuditStatus.DRAFT,
                  target_completion=target_completion, created_by=actor.label[:200],
                  created_at=now, updated_at=now)
    session.add(audit)
    session.flush()
    record(session, audit, actor, ActivityType.AUDIT_CREATED, now, framework_id=fw.id,
           type=audit_type.value, title=title, status=AuditStatus.DRAFT.value)
    return audit


def list_audits(session: Session, account_id: str) -> list[Audit]:
    return list(session.scalars(select(Audit).where(Audit.account_id == account_id)
                                .order_by(Audit.created_at.desc(), Audit.id)))


def get_audit(session: Session, account_id: str, audit_id: str, *,
              for_update: bool = False) -> Audit:
    """The account's audit (another account's audit is as missing as one that never was)."""
    stmt = select(Audit).where(Audit.account_id == account_id, Audit.id == audit_id)
    audit = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if audit is None:
        raise NotFound(f"no audit {audit_id}", code="audit_not_found")
    return audit


def require_writable(audit: Audit) -> None:
    if audit.status.is_read_only:
        raise Conflict(f"audit {audit.id} is complete and read-only", code="audit_read_only",
                       status=audit.status.value, allowed_next_statuses=[])


def _check_transition(audit: Audit, to: AuditStatus) -> None:
    allowed = audit.status.next_statuses
    if to not in allowed:
        nexts = ", ".join(s.value for s in allowed) or "none (the audit is complete)"
        raise Conflict(f"an audit in {audit.status.value} cannot move to {to.value}; "
                       f"allowed next status: {nexts}", code="invalid_status_transition",
                       status=audit.status.value, requested=to.value,
                       allowed_next_statuses=[s.value for s in allowed])


def _transition(session: Session, audit: Audit, actor: Actor, to: AuditStatus,
                now: datetime) -> None:
    _check_transition(audit, to)
    previous = audit.status
    audit.status, audit.updated_at = to, now
    details: dict[str, Any] = {}
    if to is AuditStatus.EVIDENCE_REVIEW:
        audit.evidence_review_at = now
    if to is AuditStatus.COMPLETE:
        audit.completed_at = now
        details["auditor_sessions_read_only"] = end_session_writes(session, audit.id, now)
    record(session, audit, actor, ActivityType.STATUS_CHANGED, now, status=to.value,
           previous=previous.value, **details)


@dataclass(frozen=True)
class AuditChanges:
    """A PUT on an audit: KEEP leaves a field alone, None clears an optional one."""

    title: str | Keep = KEEP
    description: str | None | Keep = KEEP
    target_completion: datetime | None | Keep = KEEP
    status: AuditStatus | Keep = KEEP


def update_audit(session: Session, audit: Audit, actor: Actor, changes: AuditChanges,
                 now: datetime | None = None) -> Audit:
    """Edit the audit and move its status one step along the flow (same status: no move)."""
    now = now or now_utc()
    require_writable(audit)
    target = changes.status if isinstance(changes.status, AuditStatus) else None
    if target is audit.status:
        target = None
    if target is not None:
        _check_transition(audit, target)
    edited: dict[str, Any] = {}
    for name in ("title", "description", "target_completion"):
        value = getattr(changes, name)
        if isinstance(value, Keep) or value == getattr(audit, name):
            continue
        edited[name] = {"from": _jsonable(getattr(audit, name)), "to": _jsonable(value)}
        setattr(audit, name, value)
    if edited:
        audit.updated_at = now
        record(session, audit, actor, ActivityType.AUDIT_UPDATED, now, fields=edited)
    if target is not None:
        _transition(session, audit, actor, target, now)
    return audit


def complete_audit(session: Session, audit: Audit, actor: Actor,
                   now: datetime | None = None) -> Audit:
    require_writable(audit)
    _transition(session, audit, actor, AuditStatus.COMPLETE, now or now_utc())
    return audit


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


# --- progress and activity -----------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    total_controls: int
    passed: int = 0
    failed: int = 0
    needs_evidence: int = 0

    @property
    def reviewed(self) -> int:
        return self.passed + self.failed + self.needs_evidence

    @property
    def pending(self) -> int:
        return self.total_controls - self.reviewed


def progress_of(session: Session, audits: Sequence[Audit]) -> dict[str, Progress]:
    """Per audit: how many of its framework's controls the auditor passed, failed, or sent
    back for evidence; the rest are pending."""
    counts: dict[str, Counter[ReviewStatus]] = defaultdict(Counter)
    if audits:
        rows = session.execute(
            select(AuditControl.audit_id, AuditControl.status, func.count())
            .where(AuditControl.audit_id.in_([a.id for a in audits]))
            .group_by(AuditControl.audit_id, AuditControl.status)).tuples()
        for audit_id, status, n in rows:
            counts[audit_id][status] = n
    return {a.id: Progress(len(framework(a.framework_id).controls),
                           counts[a.id][ReviewStatus.PASSED], counts[a.id][ReviewStatus.FAILED],
                           counts[a.id][ReviewStatus.NEEDS_EVIDENCE]) for a in audits}


def activity(session: Session, audit: Audit, *, limit: int, offset: int = 0,
             newest_first: bool = False) -> list[AuditActivity]:
    order = AuditActivity.id.desc() if newest_first else AuditActivity.id
    return list(session.scalars(select(AuditActivity).where(AuditActivity.audit_id == audit.id)
                                .order_by(order).limit(limit).offset(offset)))


def invitations(session: Session, audit: Audit) -> list[AuditorInvitation]:
    return list(session.scalars(select(AuditorInvitation)
                                .where(AuditorInvitation.audit_id == audit.id)
                                .order_by(AuditorInvitation.created_at, AuditorInvitation.id)))


@dataclass(frozen=True)
class AuditDetail:
    audit: Audit
    progress: Progress
    recent_activity: list[AuditActivity]
    auditors: list[AuditorAccess]


def audit_detail(session: Session, audit: Audit) -> AuditDetail:
    return AuditDetail(audit, progress_of(session, [audit])[audit.id],
                       activity(session, audit, limit=RECENT_ACTIVITY, newest_first=True),
                       auditors(session, audit))


# --- who has access ------------------------------------------------------------------------

def is_live(row: AuditorSession, now: datetime) -> bool:
    return row.revoked_at is None and row.expires_at > now


@dataclass(frozen=True)
class AuditorAccess:
    """One invitation, the sessions opened through it, and where the auditor stands."""

    invitation: AuditorInvitation
    sessions: list[AuditorSession]
    status: AuditorStatus
    checked_at: datetime


def access_of(invitation: AuditorInvitation, sessions: Sequence[AuditorSession],
              now: datetime | None = None) -> AuditorAccess:
    """Revoked wins; an unused link is invited until it expires; an accepted one is accepted
    while one of its sessions is live, else expired."""
    now = now or now_utc()
    if invitation.revoked_at is not None:
        status = AuditorStatus.REVOKED
    elif invitation.accepted_at is None:
        status = AuditorStatus.INVITED if invitation.expires_at > now else AuditorStatus.EXPIRED
    else:
        status = (AuditorStatus.ACCEPTED if any(is_live(s, now) for s in sessions)
                  else AuditorStatus.EXPIRED)
    return AuditorAccess(invitation, list(sessions), status, now)


def auditors(session: Session, audit: Audit, now: datetime | None = None) -> list[AuditorAccess]:
    """Every auditor invited to the audit, oldest invitation first, with its sessions."""
    now = now or now_utc()
    by_invitation: dict[str, list[AuditorSession]] = defaultdict(list)
    for row in session.scalars(select(AuditorSession)
                               .where(AuditorSession.audit_id == audit.id)
                               .order_by(AuditorSession.created_at, AuditorSession.id)):
        by_invitation[row.invitation_id].append(row)
    return [access_of(i, by_invitation[i.id], now) for i in invitations(session, audit)]


def revoke_auditor(session: Session, audit: Audit, actor: Actor, invitation_id: str,
                   now: datetime | None = None) -> AuditorAccess:
    """Withdraw an auditor: its link stops working and every session it opened ends, so the
    auditor's next request is refused. Allowed on a complete audit too (so access to its
    report can be withdrawn); revoking twice changes nothing."""
    now = now or now_utc()
    invitation = session.scalars(select(AuditorInvitation).where(
        AuditorInvitation.audit_id == audit.id, AuditorInvitation.id == invitation_id)
        .with_for_update()).first()
    if invitation is None:
        raise NotFound(f"no auditor {invitation_id} in audit {audit.id}",
                       code="auditor_not_found")
    newly = invitation.revoked_at is None
    if newly:
        invitation.revoked_at, invitation.revoked_by = now, actor.label[:400]
    ended = revoke_sessions(session, [invitation.id], now, by=actor.label,
                            reason=RevokeReason.REVOKED)
    if newly or ended:
        record(session, audit, actor, ActivityType.AUDITOR_REVOKED, now,
               invitation_id=invitation.id, email=invitation.email, name=invitation.name,
               reason=RevokeReason.REVOKED.value, session_ids=[e.id for e in ended])
    session.flush()
    rows = session.scalars(select(AuditorSession)
                           .where(AuditorSession.invitation_id == invitation.id)
                           .order_by(AuditorSession.created_at, AuditorSession.id)
                           .execution_options(populate_existing=True))
    return access_of(invitation, list(rows), now)


def require_session_writable(session: Session, principal: AuditorPrincipal,
                             now: datetime | None = None) -> None:
    """Before an auditor's change, with the audit row locked (as revoking and completing lock
    it): the session is read again, so a change never lands after a revocation committed, and
    a session whose writes ended (its audit is complete) changes nothing."""
    row = session.get_one(AuditorSession, principal.session_id)
    require_live(row, now or now_utc())
    if row.writes_ended_at is not None:
        raise Conflict("this audit is complete: the auditor session is read-only (the audit "
                       "and its report stay readable)", code="audit_read_only",
                       status=AuditStatus.COMPLETE.value, allowed_next_statuses=[])


# --- invitations ---------------------------------------------------------------------------

INVITATION_MAIL = """\
Hello {name},

{inviter} invites you to audit "{title}" ({framework}, {type}) on evidence-engine.

Open the invitation:
{link}

Or accept it through the API, which answers your auditor token:
curl -X POST {base}/api/v1/auditor/accept-invitation \\
     -H 'Content-Type: application/json' -d '{{"token": "{token}"}}'

The link works once and expires on {expires}.
If you did not expect this invitation, ignore this mail.
"""


def invite_auditor(session: Session, settings: Settings, audit: Audit, actor: Actor, *,
                   email: str, name: str, firm: str | None = None,
                   now: datetime | None = None) -> AuditorInvitation:
    """Invite an auditor by magic link; the mail leaves from a worker after commit. Earlier
    invitations of the same address to this audit are replaced: an unused link stops working
    and an accepted one's sessions end (each recorded as `auditor_revoked`, reason
    `replaced`), so a re-invitation never leaves an older token valid."""
    now = now or now_utc()
    require_writable(audit)
    require_mail(settings)
    replaced = list(session.execute(update(AuditorInvitation).where(
        AuditorInvitation.audit_id == audit.id,
        func.lower(AuditorInvitation.email) == email.lower(),
        AuditorInvitation.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor.label[:400])
        .returning(AuditorInvitation.id, AuditorInvitation.email, AuditorInvitation.name))
        .tuples())
    ended = revoke_sessions(session, [r[0] for r in replaced], now, by=actor.label,
                            reason=RevokeReason.REPLACED)
    token, token_hash = new_link_token()
    invitation = AuditorInvitation(
        audit_id=audit.id, account_id=audit.account_id, email=email, name=name, firm=firm,
        token_hash=token_hash, invited_by=actor.label[:200], created_at=now,
        expires_at=now + timedelta(seconds=settings.magic_link_ttl_seconds))
    session.add(invitation)
    session.flush()
    fw = framework(audit.framework_id)
    base = settings.public_base_url.rstrip("/")
    body = INVITATION_MAIL.format(
        name=name, inviter=actor.label, title=audit.title, framework=fw.name,
        type=audit.type.label,
        link=f"{base}/auditor/accept#token={token}", base=base, token=token,
        expires=invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"))
    mail = queue_mail(session, settings, to=email, subject=f"Audit invitation: {audit.title}",
                      body=body, account_id=audit.account_id)
    invitation.mail_id = mail.id
    record(session, audit, actor, ActivityType.AUDITOR_INVITED, now, invitation_id=invitation.id,
           email=email, name=name, firm=firm, expires_at=invitation.expires_at.isoformat())
    for old_id, old_email, old_name in sorted(replaced):
        record(session, audit, actor, ActivityType.AUDITOR_REVOKED, now, invitation_id=old_id,
               email=old_email, name=old_name, reason=RevokeReason.REPLACED.value,
               replaced_by=invitation.id,
               session_ids=[e.id for e in ended if e.invitation_id == old_id])
    return invitation


@dataclass(frozen=True)
class Acceptance:
    token: AuditorToken
    audit: Audit
    invitation: AuditorInvitation


def accept_invitation(session: Session, settings: Settings, token: str,
                      now: datetime | None = None) -> Acceptance:
    """Exchange a magic-link token (once) for an auditor session and the JWT naming it; on a
    complete audit the session only reads."""
    now = now or now_utc()
    invitation = redeem_link_token(session, token, now)
    audit = session.get_one(Audit, invitation.audit_id)
    issued = start_session(session, settings, invitation, now,
                           can_write=not audit.status.is_read_only)
    auditor = Actor(ActorKind.AUDITOR, f"{invitation.name} <{invitation.email}>")
    record(session, audit, auditor, ActivityType.INVITATION_ACCEPTED, now,
           invitation_id=invitation.id, session_id=issued.session_id)
    return Acceptance(issued, audit, invitation)


# --- the frozen evidence view ------------------------------------------------------------

_EVIDENCE_AT = text("""
SELECT e.id, e.check_id, e.resource_id, e.resource_type, c.integration_id,
       e.status AS cur_status, e.title AS cur_title, e.content_hash AS cur_hash,
       e.last_changed_at, e.closed_at, CASE WHEN :with_data THEN e.data END AS cur_data,
       v.id AS version_id, v.change, v.status, v.title, v.content_hash, v.recorded_at, v.data
FROM evidence e
JOIN connection c ON c.id = e.connection_id
LEFT JOIN LATERAL (
    SELECT v.id, v.change, v.status, v.title, v.content_hash, v.recorded_at,
           CASE WHEN :with_data THEN v.data END AS data
    FROM evidence_version v
    WHERE v.evidence_id = e.id AND v.recorded_at <= :at
    ORDER BY v.recorded_at DESC, v.id DESC
    LIMIT 1
) v ON TRUE
WHERE e.account_id = :account_id AND e.check_id = ANY(:checks)
  AND (c.status <> 'disconnected' OR c.disconnected_at > :at)
ORDER BY e.check_id, e.resource_id, e.id
""").bindparams(bindparam("checks", type_=ARRAY(String)))


@dataclass(frozen=True)
class NewerState:
    """What an item became after the freeze (not part of what the auditor reviews)."""

    status: EvidenceStatus | None
    sha256: str
    recorded_at: datetime
    closed: bool


@dataclass(frozen=True)
class EvidenceItem:
    """One collected item as the audit sees it: its state at the freeze (or now, if the audit
    is not frozen yet), and what changed since, if anything."""

    evidence_id: int
    version_id: int | None
    check_id: str
    resource_id: str
    resource_type: str
    integration_id: str
    status: EvidenceStatus
    title: str
    sha256: str
    recorded_at: datetime
    data: dict[str, Any] | None
    controls: tuple[Control, ...]
    newer: NewerState | None = None


@dataclass(frozen=True)
class EvidenceView:
    """`items` is what the auditor reviews; `collected_after` arrived after the freeze."""

    frozen_at: datetime | None
    items: list[EvidenceItem]
    collected_after: list[EvidenceItem]


def evidence_view(session: Session, audit: Audit, checks: dict[str, tuple[Control, ...]], *,
                  with_data: bool = False) -> EvidenceView:
    """The collected evidence of `checks` as of the audit's freeze (or as it stands now)."""
    frozen_at = audit.evidence_review_at
    at = frozen_at or datetime.max.replace(tzinfo=UTC)
    rows = session.execute(_EVIDENCE_AT, {
        "account_id": audit.account_id, "checks": sorted(checks), "at": at,
        "with_data": with_data}).mappings().all() if checks else []
    items: list[EvidenceItem] = []
    later: list[EvidenceItem] = []
    for r in rows:
        controls = checks[r["check_id"]]
        if frozen_at is None:
            if r["closed_at"] is None:
                items.append(_current_item(r, controls))
        elif r["version_id"] is not None and r["change"] != "closed":
            newer = None
            if r["last_changed_at"] > frozen_at:
                newer = NewerState(_status(r["cur_status"]), r["cur_hash"], r["last_changed_at"],
                                   r["closed_at"] is not None)
            items.append(EvidenceItem(
                r["id"], r["version_id"], r["check_id"], r["resource_id"], r["resource_type"],
                r["integration_id"], EvidenceStatus(r["status"]), r["title"],
                r["content_hash"], r["recorded_at"], r["data"], controls, newer))
        elif r["closed_at"] is None:
            later.append(_current_item(r, controls))
    return EvidenceView(frozen_at, items, later)


def _status(value: str | None) -> EvidenceStatus | None:
    return EvidenceStatus(value) if value is not None else None


def _current_item(r: Any, controls: tuple[Control, ...]) -> EvidenceItem:
    return EvidenceItem(r["id"], None, r["check_id"], r["resource_id"], r["resource_type"],
                        r["integration_id"], EvidenceStatus(r["cur_status"]), r["cur_title"],
                        r["cur_hash"], r["last_changed_at"], r["cur_data"], controls)


@dataclass(frozen=True)
class PushedItem:
    """A verified object the customer pushed and linked to a control (issue 6's evidence)."""

    id: str
    filename: str
    content_type: str
    sha256: str
    size: int | None
    verified_at: datetime | None
    linked_at: datetime
    newer: bool


def pushed_items(session: Session, audit: Audit, control: Control) -> list[PushedItem]:
    """Pushed evidence linked to `control` (for this audit, or for no assessment); a link made
    after the freeze is flagged as newer."""
    found = []
    for entry in pushed.pushed_for_control(session, audit.account_id, control.framework_id,
                                           control.id, assessment_id=audit.id):
        obj = entry.evidence
        links = [lin.created_at for lin in entry.links
                 if lin.framework_id == control.framework_id and lin.control_id == control.id
                 and lin.assessment_id in (None, audit.id)]
        linked_at = min(links) if links else obj.created_at
        first_seen = max(linked_at, obj.verified_at or linked_at)
        newer = audit.evidence_review_at is not None and first_seen > audit.evidence_review_at
        found.append(PushedItem(obj.id, obj.filename, obj.content_type, obj.sha256 or "",
                                obj.size, obj.verified_at, linked_at, newer))
    return found


def pushed_by_control(session: Session, audit: Audit) -> dict[str, list[PushedItem]]:
    """Control id → its pushed items, for every control of the audit's framework that has any."""
    fw = framework(audit.framework_id)
    linked = {control_id for (framework_id, control_id), n in
              pushed.pushed_counts(session, audit.account_id).items()
              if framework_id == fw.id and n and control_id in fw.controls}
    return {cid: pushed_items(session, audit, fw.controls[cid]) for cid in sorted(linked)}


# --- what the auditor reviews ---------------------------------------------------------------

@dataclass(frozen=True)
class ControlResultAt:
    """A control's automated result from the evidence in the audit's view."""

    status: ControlStatus
    passing: int
    failing: int
    errored: int

    @property
    def total(self) -> int:
        return self.passing + self.failing + self.errored

    @classmethod
    def of(cls, items: Iterable[EvidenceItem]) -> ControlResultAt:
        counts = Counter(i.status for i in items)
        p, f, e = (counts[EvidenceStatus.PASSING], counts[EvidenceStatus.FAILING],
                   counts[EvidenceStatus.ERROR])
        return cls(status_of(p, f, e), p, f, e)


@dataclass(frozen=True)
class ControlOverview:
    control: Control
    review: AuditControl | None
    result: ControlResultAt
    evidence_count: int
    newer_count: int
    pushed_count: int
    open_requests: int
    findings: int


def reviews(session: Session, audit: Audit) -> dict[str, AuditControl]:
    return {r.control_id: r for r in session.scalars(
        select(AuditControl).where(AuditControl.audit_id == audit.id))}


def controls_overview(session: Session, audit: Audit) -> list[ControlOverview]:
    """Every control of the audit's framework with its review, evidence counts and result."""
    fw = framework(audit.framework_id)
    view = evidence_view(session, audit, framework_checks(fw))
    by_control: dict[str, list[EvidenceItem]] = defaultdict(list)
    newer: Counter[str] = Counter()
    for item in view.items:
        for c in item.controls:
            by_control[c.id].append(item)
            newer[c.id] += item.newer is not None
    for item in view.collected_after:
        for c in item.controls:
            newer[c.id] += 1
    pushed_map = pushed_by_control(session, audit)
    done = reviews(session, audit)
    open_requests = Counter(session.scalars(select(EvidenceRequest.control_id).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.status == RequestStatus.OPEN)))
    finding_counts = Counter(session.scalars(select(Finding.control_id)
                                             .where(Finding.audit_id == audit.id)))
    return [ControlOverview(
        c, done.get(c.id), ControlResultAt.of(by_control[c.id]), len(by_control[c.id]),
        newer[c.id] + sum(p.newer for p in pushed_map.get(c.id, [])),
        sum(not p.newer for p in pushed_map.get(c.id, [])), open_requests[c.id],
        finding_counts[c.id]) for c in sorted(fw.controls.values(), key=lambda c: c.sort_key)]


@dataclass(frozen=True)
class ControlEvidence:
    control: Control
    review: AuditControl | None
    result: ControlResultAt
    view: EvidenceView
    pushed: list[PushedItem]
    requests: list[EvidenceRequest] = field(default_factory=list)


def control_evidence(session: Session, audit: Audit, control_ref: str) -> ControlEvidence:
    """One control's evidence: collected (frozen), pushed, and the answers to requests."""
    control = resolve_control(audit, control_ref)
    checks = {check_id: controls for check_id, controls in
              framework_checks(framework(audit.framework_id)).items() if control in controls}
    view = evidence_view(session, audit, checks, with_data=True)
    requests = list(session.scalars(select(EvidenceRequest).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.control_id == control.id)
        .order_by(EvidenceRequest.created_at, EvidenceRequest.id)))
    return ControlEvidence(control, reviews(session, audit).get(control.id),
                           ControlResultAt.of(view.items), view,
                           pushed_items(session, audit, control), requests)


def review_control(session: Session, audit: Audit, actor: Actor, control_ref: str, *,
                   status: ReviewStatus, notes: str | None | Keep = KEEP,
                   evidence_sufficient: bool | None | Keep = KEEP,
                   now: datetime | None = None) -> AuditControl:
    """Record the auditor's verdict on one control."""
    now = now or now_utc()
    require_writable(audit)
    control = resolve_control(audit, control_ref)
    row = session.get(AuditControl, (audit.id, control.id), with_for_update=True)
    previous = row.status.value if row is not None else ReviewStatus.PENDING.value
    if row is None:
        row = AuditControl(audit_id=audit.id, control_id=control.id,
                           account_id=audit.account_id)
        session.add(row)
    row.status = status
    if not isinstance(notes, Keep):
        row.notes = notes
    if not isinstance(evidence_sufficient, Keep):
        row.evidence_sufficient = evidence_sufficient
    row.reviewed_by, row.reviewed_at = actor.label[:400], now
    audit.updated_at = now
    record(session, audit, actor, ActivityType.CONTROL_REVIEWED, now, control_id=control.id,
           status=status.value, previous=previous, notes=row.notes,
           evidence_sufficient=row.evidence_sufficient)
    session.flush()
    return row


# --- evidence requests ---------------------------------------------------------------------

def request_evidence(session: Session, audit: Audit, actor: Actor, *, control_ref: str,
                     description: str, priority: Priority = Priority.MEDIUM,
                     now: datetime | None = None) -> EvidenceRequest:
    now = now or now_utc()
    require_writable(audit)
    control = resolve_control(audit, control_ref, missing=InvalidInput)
    req = EvidenceRequest(audit_id=audit.id, account_id=audit.account_id, control_id=control.id,
                          description=description, priority=priority,
                          status=RequestStatus.OPEN, requested_by=actor.label[:400],
                          created_at=now)
    session.add(req)
    session.flush()
    record(session, audit, actor, ActivityType.EVIDENCE_REQUESTED, now, control_id=control.id,
           request_id=req.id, priority=priority.value, description=description)
    return req


def evidence_requests(session: Session, audit: Audit) -> list[EvidenceRequest]:
    return list(session.scalars(select(EvidenceRequest)
                                .where(EvidenceRequest.audit_id == audit.id)
                                .order_by(EvidenceRequest.created_at, EvidenceRequest.id)))


def respond_to_request(session: Session, audit: Audit, actor: Actor, request_id: str, *,
                       evidence_file_url: str | None = None,
                       pushed_evidence_id: str | None = None, sha256: str | None = None,
                       note: str | None = None, now: datetime | None = None) -> EvidenceRequest:
    """Answer an evidence request with a URL (and, optionally, the SHA-256 the customer
    declares for it) or with a pushed evidence object, whose hash the engine verified."""
    now = now or now_utc()
    require_writable(audit)
    req = session.scalars(select(EvidenceRequest).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.id == request_id)
        .with_for_update()).first()
    if req is None:
        raise NotFound(f"no evidence request {request_id} in audit {audit.id}",
                       code="evidence_request_not_found")
    if (evidence_file_url is None) == (pushed_evidence_id is None):
        raise InvalidInput("answer with exactly one of evidence_file_url or "
                           "pushed_evidence_id", code="invalid_response")
    if pushed_evidence_id is not None:
        obj = pushed.canonical(session, pushed.get_pushed(session, audit.account_id,
                                                          pushed_evidence_id).evidence)
        if obj.sha256 is None or obj.status.value != "verified":
            raise Conflict(f"pushed evidence {pushed_evidence_id} is {obj.status.value}, not "
                           "verified: verify the upload first", code="not_verified")
        req.response_url, req.response_pushed_id = None, obj.id
        req.response_sha256, req.response_sha256_verified = obj.sha256, True
    else:
        req.response_url, req.response_pushed_id = evidence_file_url, None
        req.response_sha256 = sha256.lower() if sha256 else None
        req.response_sha256_verified = False if sha256 else None
    req.response_note, req.status = note, RequestStatus.RESPONDED
    req.responded_by, req.responded_at = actor.label[:200], now
    record(session, audit, actor, ActivityType.EVIDENCE_PROVIDED, now, control_id=req.control_id,
           request_id=req.id, evidence_file_url=req.response_url,
           pushed_evidence_id=req.response_pushed_id, sha256=req.response_sha256,
           sha256_verified=req.response_sha256_verified)
    return req


# --- findings ------------------------------------------------------------------------------

def create_finding(session: Session, audit: Audit, actor: Actor, *, control_ref: str,
                   severity: FindingSeverity, title: str, description: str,
                   remediation: str | None = None, now: datetime | None = None) -> Finding:
    now = now or now_utc()
    require_writable(audit)
    control = resolve_control(audit, control_ref, missing=InvalidInput)
    finding = Finding(audit_id=audit.id, account_id=audit.account_id, control_id=control.id,
                      severity=severity, title=title, description=description,
                      remediation=remediation, status=FindingStatus.OPEN,
                      created_by=actor.label[:400], created_at=now, updated_at=now)
    session.add(finding)
    session.flush()
    record(session, audit, actor, ActivityType.FINDING_CREATED, now, control_id=control.id,
           finding_id=finding.id, severity=severity.value, title=title,
           status=FindingStatus.OPEN.value)
    return finding


def findings(session: Session, audit: Audit) -> list[Finding]:
    return list(session.scalars(select(Finding).where(Finding.audit_id == audit.id)
                                .order_by(Finding.created_at, Finding.id)))


@dataclass(frozen=True)
class FindingChanges:
    severity: FindingSeverity | Keep = KEEP
    status: FindingStatus | Keep = KEEP
    title: str | Keep = KEEP
    description: str | Keep = KEEP
    remediation: str | None | Keep = KEEP
    control_ref: str | Keep = KEEP


def update_finding(session: Session, audit: Audit, actor: Actor, finding_id: str,
                   changes: FindingChanges, now: datetime | None = None) -> Finding:
    now = now or now_utc()
    require_writable(audit)
    finding = session.scalars(select(Finding).where(
        Finding.audit_id == audit.id, Finding.id == finding_id).with_for_update()).first()
    if finding is None:
        raise NotFound(f"no finding {finding_id} in this audit", code="finding_not_found")
    values: dict[str, Any] = {
        "severity": changes.severity, "status": changes.status, "title": changes.title,
        "description": changes.description, "remediation": changes.remediation,
        "control_id": changes.control_ref if isinstance(changes.control_ref, Keep)
        else resolve_control(audit, changes.control_ref, missing=InvalidInput).id}
    edited: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Keep) or value == getattr(finding, name):
            continue
        edited[name] = {"from": _jsonable(getattr(finding, name)), "to": _jsonable(value)}
        setattr(finding, name, value)
    if edited:
        finding.updated_at = now
        record(session, audit, actor, ActivityType.FINDING_UPDATED, now,
               control_id=finding.control_id, finding_id=finding.id, fields=edited,
               status=finding.status.value)
    return finding
