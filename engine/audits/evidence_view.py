"""The evidence an auditor sees, frozen at the moment the audit entered `evidence_review`: each
collected item as it was then (its `evidence_version` valid at that moment), the pushed objects
linked before then, and anything collected, changed or linked later flagged as newer instead of
being mixed in. Before the freeze the view is the evidence as it stands now."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import String

from engine import pushed
from engine.audits.controls import framework
from engine.controls import status_of
from engine.frameworks import Control
from engine.models import ControlStatus, EvidenceStatus
from engine.models.audit import Audit

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

