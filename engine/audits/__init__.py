"""The audit domain (seed 001): audits and their one-way status flow, auditor invitations and
sessions, the frozen evidence view, control reviews, evidence requests and responses, findings,
the activity log, and the report.

Every change is written with an `audit_activity` row in the same transaction (who, what, when).
One module per concern, each importing only the ones below it:

    activity_log   Actor, record (the log entry every change writes), KEEP, reading the log
    controls       the audit's framework and its controls
    lifecycle      create, read, edit; the status flow and the read-only complete audit
    invitation     magic-link invitations, their mail, accepting one
    sessions       who has access: auditors, their sessions, revocation
    detail         progress, recent activity and auditors at a glance
    evidence_view  the evidence as frozen when the audit entered evidence_review
    review         controls under review, verdicts, evidence requests and answers
    finding        findings
    report         the Markdown report

(`invitation` and `finding` are singular so the modules do not shadow the `invitations` and
`findings` functions this package exports.) Callers import from `engine.audits`.
"""

from __future__ import annotations

from engine.audits.activity_log import KEEP, Actor, Keep, activity, now_utc, record
from engine.audits.controls import framework, framework_checks, resolve_control
from engine.audits.detail import (
    RECENT_ACTIVITY,
    AuditDetail,
    Progress,
    audit_detail,
    progress_of,
)
from engine.audits.evidence_view import (
    ControlResultAt,
    EvidenceItem,
    EvidenceView,
    NewerState,
    PushedItem,
    evidence_view,
    pushed_by_control,
    pushed_items,
)
from engine.audits.finding import FindingChanges, create_finding, findings, update_finding
from engine.audits.invitation import (
    INVITATION_MAIL,
    Acceptance,
    accept_invitation,
    invitations,
    invite_auditor,
)
from engine.audits.lifecycle import (
    AuditChanges,
    complete_audit,
    create_audit,
    get_audit,
    list_audits,
    require_writable,
    update_audit,
)
from engine.audits.report import Report, generate_report, render
from engine.audits.review import (
    MAX_ANSWER_ITEMS,
    ControlEvidence,
    ControlOverview,
    EvidenceChoice,
    EvidenceChoices,
    control_evidence,
    controls_overview,
    evidence_checks,
    evidence_choices,
    evidence_requests,
    request_evidence,
    respond_to_request,
    review_control,
    reviews,
)
from engine.audits.sessions import (
    AuditorAccess,
    access_of,
    auditors,
    is_live,
    require_session_writable,
    revoke_auditor,
)

__all__ = [
    "INVITATION_MAIL", "KEEP", "MAX_ANSWER_ITEMS", "RECENT_ACTIVITY", "Acceptance", "Actor",
    "AuditChanges", "AuditDetail", "AuditorAccess", "ControlEvidence", "ControlOverview",
    "ControlResultAt", "EvidenceChoice", "EvidenceChoices", "EvidenceItem", "EvidenceView",
    "FindingChanges", "Keep", "NewerState", "Progress", "PushedItem", "Report",
    "accept_invitation", "access_of", "activity", "audit_detail", "auditors", "complete_audit",
    "control_evidence", "controls_overview", "create_audit", "create_finding",
    "evidence_checks", "evidence_choices", "evidence_requests", "evidence_view", "findings",
    "framework", "framework_checks", "generate_report", "get_audit", "invitations",
    "invite_auditor", "is_live", "list_audits", "now_utc", "progress_of", "pushed_by_control",
    "pushed_items", "record", "render", "request_evidence", "require_session_writable",
    "require_writable", "resolve_control", "respond_to_request", "review_control", "reviews",
    "revoke_auditor", "update_audit", "update_finding",
]
