"""The audit report in Markdown: executive summary, control status, findings by severity with
remediation, evidence requests, and an evidence summary that lists every item's SHA-256.

The evidence listed is the audit's frozen view (as it stood when the audit entered
evidence_review), so a reader can check that the evidence shown is the evidence reviewed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from engine import ledger
from engine.audits.activity_log import Actor, now_utc, record
from engine.audits.controls import framework, framework_checks
from engine.audits.detail import Progress, progress_of
from engine.audits.evidence_view import (
    ControlResultAt,
    EvidenceItem,
    EvidenceView,
    PushedItem,
    evidence_view,
    pushed_by_control,
)
from engine.audits.finding import findings
from engine.audits.invitation import invitations
from engine.audits.review import evidence_requests
from engine.audits.review import reviews as control_reviews
from engine.frameworks import Control
from engine.models.audit import (
    ActivityType,
    Audit,
    AuditControl,
    AuditStatus,
    EvidenceRequest,
    Finding,
    FindingSeverity,
    FindingStatus,
    ReviewStatus,
)
from engine.period import Cause, audit_period, period_span
from engine.settings import get_settings

SHORT_NAMES = {"iso27001": "ISO/IEC 27001"}


@dataclass(frozen=True)
class Report:
    markdown: str
    sha256: str
    generated_at: datetime


def generate_report(session: Session, audit: Audit, actor: Actor,
                    now: datetime | None = None) -> Report:
    """Render the report and log who generated it, with the report's own SHA-256."""
    now = now or now_utc()
    markdown = render(session, audit, now)
    digest = hashlib.sha256(markdown.encode()).hexdigest()
    record(session, audit, actor, ActivityType.REPORT_GENERATED, now, sha256=digest,
           status=audit.status.value)
    return Report(markdown, digest, now)


def _inline(text: str | None) -> str:
    """Text for one table cell or line: no pipes or line breaks that would break the table."""
    if not text:
        return ""
    return " ".join(text.split()).replace("|", "\\|")


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines())


def _when(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(session: Session, audit: Audit, now: datetime) -> str:
    fw = framework(audit.framework_id)
    controls = sorted(fw.controls.values(), key=lambda c: c.sort_key)
    progress = progress_of(session, [audit])[audit.id]
    reviews = control_reviews(session, audit)
    found = findings(session, audit)
    requests = evidence_requests(session, audit)
    view = evidence_view(session, audit, framework_checks(fw))
    pushed = pushed_by_control(session, audit)
    auditors = [i for i in invitations(session, audit) if i.accepted_at is not None]

    heading = (f"SOC 2 {audit.type.label}" if fw.id == "soc2"
               else SHORT_NAMES.get(fw.id, fw.name))
    out: list[str] = [f"# {heading} Audit Report", ""]
    out += [f"- **Audit:** {_inline(audit.title)} (`{audit.id}`)",
            f"- **Organization:** `{audit.account_id}`",
            f"- **Framework:** {fw.name}, version {fw.version}; {len(controls)} controls",
            f"- **Type:** {audit.type.label}",
            f"- **Status:** {audit.status.value}"
            + (f" (completed {_when(audit.completed_at)})" if audit.completed_at else ""),
            f"- **Target completion:** {_when(audit.target_completion)}",
            f"- **Evidence frozen at:** {_when(audit.evidence_review_at)}"
            + ("" if audit.evidence_review_at else " (not frozen yet: evidence as it stands now)"),
            "- **Auditors:** " + ("; ".join(
                _inline(f"{i.name}" + (f" ({i.firm})" if i.firm else "") + f" <{i.email}>")
                for i in auditors) or "none has accepted an invitation"),
            f"- **Generated:** {_when(now)}", ""]

    out += _summary(audit, progress, reviews, fw.controls, found, requests, view, pushed)
    out += _control_table(controls, reviews, view, pushed)
    out += _period(session, audit, now)
    out += _findings(found, fw.controls)
    out += _requests(requests)
    out += _evidence(view, pushed)
    out += _checkpoints(session, audit)
    return "\n".join(out).rstrip() + "\n"


def _summary(audit: Audit, progress: Progress, reviews: dict[str, AuditControl],
             controls: dict[str, Control], found: list[Finding],
             requests: list[EvidenceRequest], view: EvidenceView,
             pushed: dict[str, list[PushedItem]]) -> list[str]:
    by_severity = Counter(f.severity for f in found)
    unresolved = [f for f in found if f.status in (FindingStatus.OPEN, FindingStatus.IN_PROGRESS)]
    serious_open = [f for f in unresolved
                    if f.severity in (FindingSeverity.CRITICAL, FindingSeverity.MAJOR)]
    pushed_count = sum(not p.newer for items in pushed.values() for p in items)
    answered = sum(r.responded_at is not None for r in requests)
    lines = ["## Executive Summary", ""]
    if audit.status is not AuditStatus.COMPLETE:
        lines += [f"**Interim report:** the audit is in `{audit.status.value}`, not complete; "
                  "the figures below may still change.", ""]
    lines.append(
        f"This report covers the {audit.type.label} audit \"{_inline(audit.title)}\" of "
        f"`{audit.account_id}` against {progress.total_controls} controls. The auditor "
        f"reviewed {progress.reviewed} of {progress.total_controls} controls: "
        f"{progress.passed} passed, {progress.failed} failed and {progress.needs_evidence} "
        f"need more evidence; {progress.pending} remain pending. "
        f"{_plural(len(found), 'finding')} "
        f"{'was' if len(found) == 1 else 'were'} raised ("
        + ", ".join(f"{by_severity[s]} {s.value}" for s in FindingSeverity)
        + f"), of which {len(unresolved)} "
        f"{'remains' if len(unresolved) == 1 else 'remain'} open or in progress. "
        f"The review rests on {_plural(len(view.items), 'collected evidence item')} and "
        f"{_plural(pushed_count, 'pushed evidence object')}; "
        f"{_plural(len(requests), 'evidence request')} "
        f"{'was' if len(requests) == 1 else 'were'} made and {answered} answered.")
    lines.append("")
    failed = sorted((cid for cid, r in reviews.items() if r.status is ReviewStatus.FAILED),
                    key=lambda cid: controls[cid].sort_key if cid in controls else ())
    if failed or serious_open:
        parts = []
        if failed:
            parts.append(f"{_plural(len(failed), 'failed control')} ({', '.join(failed)})")
        if serious_open:
            parts.append(f"{_plural(len(serious_open), 'critical or major finding')} still "
                         f"open ({', '.join(_inline(f.title) for f in serious_open)})")
        lines.append("**Exceptions:** " + "; ".join(parts) + ".")
    elif progress.pending or progress.needs_evidence:
        lines.append("**No exception so far**, but the review is not finished: "
                     f"{progress.pending + progress.needs_evidence} controls are pending or "
                     "awaiting evidence.")
    else:
        lines.append("**No exceptions:** every control passed and no critical or major "
                     "finding remains open.")
    if view.frozen_at is not None:
        changed = (sum(i.newer is not None for i in view.items) + len(view.collected_after)
                   + sum(p.newer for items in pushed.values() for p in items))
        if changed:
            lines += ["", f"{_plural(changed, 'evidence item')} changed or arrived after the "
                      f"evidence was frozen ({_when(view.frozen_at)}); they are listed apart "
                      "at the end and were not part of the review."]
    return [*lines, ""]


def _control_table(controls: list[Control], reviews: dict[str, AuditControl],
                   view: EvidenceView,
                   pushed: dict[str, list[PushedItem]]) -> list[str]:
    items: dict[str, list[EvidenceItem]] = {c.id: [] for c in controls}
    for item in view.items:
        for c in item.controls:
            items[c.id].append(item)
    lines = ["## Control Status", "",
             "| Control | Title | Auditor status | Evidence sufficient | Automated result "
             "| Evidence | Auditor notes |",
             "|---|---|---|---|---|---|---|"]
    for c in controls:
        review = reviews.get(c.id)
        status = review.status if review else ReviewStatus.PENDING
        sufficient = {True: "yes", False: "no", None: "—"}[
            review.evidence_sufficient if review else None]
        result = ControlResultAt.of(items[c.id])
        automated = (f"{result.status.value} ({result.passing}/{result.total} passing)"
                     if result.total else "no automated evidence")
        n_pushed = sum(not p.newer for p in pushed.get(c.id, []))
        evidence = f"{len(items[c.id])} collected" + (f", {n_pushed} pushed" if n_pushed else "")
        lines.append(f"| {c.id} | {_inline(c.title)} | {status.value} | {sufficient} | "
                     f"{automated} | {evidence} | {_inline(review.notes if review else '')} |")
    return [*lines, ""]


def _findings(found: list[Finding], controls: dict[str, Control]) -> list[str]:
    lines = ["## Findings by Severity", ""]
    if not found:
        return [*lines, "No findings were raised.", ""]
    for severity in FindingSeverity:
        group = [f for f in found if f.severity is severity]
        lines += [f"### {severity.value.title()} ({len(group)})", ""]
        if not group:
            lines += ["None.", ""]
        for f in group:
            control = controls.get(f.control_id)
            lines += [f"#### {_inline(f.title)}", "",
                      f"- **Finding:** `{f.id}`",
                      f"- **Control:** {f.control_id}"
                      + (f" — {_inline(control.title)}" if control else ""),
                      f"- **Status:** {f.status.value}",
                      f"- **Raised by:** {_inline(f.created_by)} on {_when(f.created_at)}",
                      "", "**Description**", "", _quote(f.description), "",
                      "**Remediation**", "",
                      _quote(f.remediation) if f.remediation else "> None recommended.", ""]
    return lines


def _requests(requests: list[EvidenceRequest]) -> list[str]:
    lines = ["## Evidence Requests", ""]
    if not requests:
        return [*lines, "The auditor made no evidence requests.", ""]
    lines += ["| Request | Control | Priority | Status | Asked | Answer | SHA-256 |",
              "|---|---|---|---|---|---|---|"]
    for r in requests:
        if r.response_pushed_id:
            answer = f"pushed evidence `{r.response_pushed_id}`"
        elif r.response_url:
            answer = f"<{_inline(r.response_url)}>"
        elif r.evidence_items:
            answer = "collected: " + "; ".join(
                f"`ev-{i.evidence_id}` ({i.check_id} on {_inline(i.resource_id)}, "
                f"{i.status.value}, `{i.content_hash}`)" for i in r.evidence_items)
        else:
            answer = "—"
        digest = (f"`{r.response_sha256}`" + ("" if r.response_sha256_verified else
                                               " (declared by the customer)")
                  if r.response_sha256 else "—")
        lines.append(f"| `{r.id}` | {r.control_id} | {r.priority.value} | {r.status.value} | "
                     f"{_inline(r.description)} | {answer} | {digest} |")
    return [*lines, ""]


def _evidence(view: EvidenceView,
              pushed: dict[str, list[PushedItem]]) -> list[str]:
    lines = ["## Evidence Summary", "",
             "Each collected item's SHA-256 is the engine's content hash of the result as "
             "reviewed: its status, resource type, title and canonical JSON data. The version "
             "id names the exact stored record (`evidence_version`), so a reader can fetch it "
             "and check the hash.", ""]
    if view.frozen_at is not None:
        lines += [f"Evidence is shown as it stood at {_when(view.frozen_at)}, when the audit "
                  "entered evidence review.", ""]
    lines += ["### Collected evidence", ""]
    if not view.items:
        lines += ["No collected evidence maps to this framework.", ""]
    else:
        lines += ["| Evidence | Controls | Source | Check | Resource | Status | Recorded | "
                  "SHA-256 |", "|---|---|---|---|---|---|---|---|"]
        for i in view.items:
            ref = f"ev-{i.evidence_id}" + (f" / evv-{i.version_id}" if i.version_id else "")
            lines.append(
                f"| `{ref}` | {', '.join(c.id for c in i.controls)} | {i.integration_id} | "
                f"`{i.check_id}` | {_inline(i.resource_id)} | {i.status.value} | "
                f"{_when(i.recorded_at)} | `{i.sha256}` |")
        lines.append("")
    all_pushed = [(cid, p) for cid, items in pushed.items() for p in items]
    lines += ["### Pushed evidence", ""]
    if not [p for _, p in all_pushed if not p.newer]:
        lines += ["No pushed evidence is linked to this framework's controls.", ""]
    else:
        lines += ["| Evidence | Control | File | Bytes | Verified | SHA-256 |",
                  "|---|---|---|---|---|---|"]
        for cid, p in all_pushed:
            if not p.newer:
                lines.append(f"| `{p.id}` | {cid} | {_inline(p.filename)} | {p.size or '—'} | "
                             f"{_when(p.verified_at)} | `{p.sha256}` |")
        lines.append("")
    changed = [(i, i.newer) for i in view.items if i.newer is not None]
    later_pushed = [(cid, p) for cid, p in all_pushed if p.newer]
    if view.collected_after or changed or later_pushed:
        lines += ["### After the freeze (not reviewed)", "",
                  "| Evidence | Controls | Check | Resource | What happened | Recorded | "
                  "SHA-256 now |", "|---|---|---|---|---|---|---|"]
        for i, newer in changed:
            what = "removed" if newer.closed else (
                f"changed to {newer.status.value}" if newer.status else "changed")
            lines.append(f"| `ev-{i.evidence_id}` | {', '.join(c.id for c in i.controls)} | "
                         f"`{i.check_id}` | {_inline(i.resource_id)} | {what} | "
                         f"{_when(newer.recorded_at)} | `{newer.sha256}` |")
        for i in view.collected_after:
            lines.append(f"| `ev-{i.evidence_id}` | {', '.join(c.id for c in i.controls)} | "
                         f"`{i.check_id}` | {_inline(i.resource_id)} | collected "
                         f"({i.status.value}) | {_when(i.recorded_at)} | `{i.sha256}` |")
        for cid, p in later_pushed:
            lines.append(f"| `{p.id}` | {cid} | — | {_inline(p.filename)} | pushed | "
                         f"{_when(p.linked_at)} | `{p.sha256}` |")
        lines.append("")
    return lines


def _period(session: Session, audit: Audit, now: datetime) -> list[str]:
    """Type II: each automated control over the audit's period (engine/period.py)."""
    lines = ["## Operation Over the Period", ""]
    if audit.period_start is None or audit.period_end is None:
        why = ("a Type I audit covers a point in time" if audit.type.value == "type_i" else
               "set period_start and period_end to report coverage over the period")
        return [*lines, f"No period is set ({why}).", ""]
    whole = period_span(audit.period_start, audit.period_end)
    if whole.start >= now:
        return [*lines, f"The period begins on {audit.period_start.isoformat()}.", ""]
    grace = timedelta(seconds=get_settings().freshness_grace_seconds)
    answer = audit_period(session, audit, grace, now=now)
    automated = [c for c in answer.controls if c.automated]
    so_far = " so far: the period is still running" if whole.end > now else ""
    lines += [f"From {_when(answer.period.start)} up to {_when(answer.period.end)} "
              f"({answer.period.length.days} days{so_far}). A test result counts as fresh for its "
              f"connection's sync period plus {int(grace.total_seconds())} s; coverage is the "
              "share of the period with a fresh result, operating time the share with a fresh "
              "passing one.", "",
              "| Control | Coverage | Operating time | Exceptions | Gaps | Population |",
              "|---|---|---|---|---|---|"]
    for c in automated:
        lines.append(f"| {c.control.id} | {c.coverage:.2%} | {c.operating_share:.2%} | "
                     f"{len(c.exceptions)} | {len(c.gaps)} | {len(c.population)} |")
    lines.append("")
    for c in automated:
        for e in c.exceptions:
            failed = "; ".join(
                f"{_inline(r.resource_id)} (`{r.check_id}`) failed {_when(r.failed_at)}, "
                + (f"{r.outcome.value.replace('_', ' ')} {_when(r.fixed_at)}" if r.fixed_at
                   else "still failing at the period's end") for r in e.resources)
            lines.append(f"- **Exception, {c.control.id}:** {_when(e.span.start)} to "
                         f"{_when(e.span.end)}: {failed or 'no resource named'}.")
        for g in c.gaps:
            lines.append(f"- **Gap, {c.control.id}:** {_when(g.span.start)} to "
                         f"{_when(g.span.end)}: {'; '.join(map(_cause, g.causes))}.")
    return [*lines, ""]


def _cause(cause: Cause) -> str:
    """Why a gap opened, in words: the integration, and the failed runs with the last error."""
    where = [cause.integration_id] if cause.integration_id else []
    if cause.runs:
        last = cause.runs[-1].error
        where.append(_plural(len(cause.runs), "failed run") + (f": {_inline(last)}" if last
                                                              else ""))
    return cause.kind.explanation + (f" ({', '.join(where)})" if where else "")


def _checkpoints(session: Session, audit: Audit) -> list[str]:
    """The ledger checkpoints signed within the audit's period (else its lifetime so far)."""
    if audit.period_start is not None and audit.period_end is not None:
        since = datetime.combine(audit.period_start, time.min, tzinfo=UTC)
        until: datetime | None = datetime.combine(audit.period_end, time.min, tzinfo=UTC)
        span = "the audit's period"
    else:
        since, until, span = audit.created_at, audit.completed_at, "the audit's lifetime"
    found, total = ledger.checkpoints(session, audit.account_id, since=since, until=until,
                                      limit=1000)
    lines = ["## Ledger Checkpoints", "",
             "Every evidence version, judgement, pushed-evidence link, review, finding and run "
             "completion of this organization is chained in a tamper-evident ledger. Each "
             "checkpoint is this deployment's Ed25519 signature over the chain's length and "
             "head hash (key at `GET /api/v1/ledger/public-key`); keep one and run `evidence "
             "ledger verify --checkpoint FILE` to prove nothing recorded up to it was removed "
             f"or rewritten. Checkpoints signed within {span}:", ""]
    if not found:
        return [*lines, "None was signed in that time.", ""]
    lines += ["| Signed | Entries | Head SHA-256 | Key | Reason | Signature |",
              "|---|---|---|---|---|---|"]
    for cp in found:
        lines.append(f"| {_when(cp.signed_at)} | {cp.length} | `{cp.head_sha256}` | "
                     f"`{cp.key_id}` | {cp.reason} | `{cp.signature}` |")
    if total > len(found):
        lines.append(f"\n{total - len(found)} later checkpoints are not listed.")
    latest = ledger.checkpoint_document(found[-1])
    return [*lines, "", "The latest, as a file to keep:", "", "```json",
            json.dumps(latest, indent=2, sort_keys=True), "```", ""]
