"""The console's Audits pages through Flask's test client: listing and creating audits, the
status flow (only the next stage offered, the engine refusing a skip), inviting and withdrawing
an auditor (the mail queued on the outbound path), answering an evidence request with a file
uploaded through the push path (moto's S3) or one pushed before, findings and the activity log,
the report as a download; refusals: bad input beside its field with nothing written, a POST
without its CSRF token, another account's ids (404, nothing written)."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date

import boto3
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from cli.wiring import api_app
from engine import audits
from engine.audits import Actor
from engine.db import set_job_sender, unit_of_work
from engine.models.audit import (
    ActorKind,
    Audit,
    AuditActivity,
    AuditorInvitation,
    AuditStatus,
    AuditType,
    EvidenceRequest,
    FindingSeverity,
    OutboundMail,
    RequestStatus,
)
from engine.models.push import EvidenceLineage, EvidenceObject, ObjectStatus
from tests.console.conftest import csrf_token, login_link, post_link

AUDITOR = Actor(ActorKind.AUDITOR, "Jane Smith <auditor@firm.com>")
CUSTOMER = Actor(ActorKind.CUSTOMER, "lead@acme.test")
BUCKET = "console-audit-uploads"
MAX_SIZE = 4096


def count(settings, model) -> int:
    with unit_of_work(settings) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def make_audit(settings, account_id: str = "acme", status: AuditStatus | None = None) -> str:
    """An audit written through the engine (as the JSON API writes it), moved to `status`."""
    with unit_of_work(settings) as session:
        audit = audits.create_audit(session, account_id, CUSTOMER, framework_id="soc2",
                                    audit_type=AuditType.TYPE_II, title=f"{account_id} SOC 2",
                                    period_start=date(2026, 1, 1), period_end=date(2026, 7, 1))
        flow = list(AuditStatus)
        for step in flow[1:flow.index(status) + 1] if status else []:
            audits.update_audit(session, audit, CUSTOMER, audits.AuditChanges(status=step))
        return audit.id


def ask(settings, audit_id: str, account_id: str = "acme", control: str = "CC6.1") -> str:
    """An evidence request the auditor made."""
    with unit_of_work(settings) as session:
        audit = audits.get_audit(session, account_id, audit_id)
        return audits.request_evidence(session, audit, AUDITOR, control_ref=control,
                                       description="Export of the access review").id


def page(client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:800]
    return answer.get_data(as_text=True)


def signed_in_client(settings, account_id: str = "acme"):
    """A console client of an app on `settings` (another app than the `client` fixture's)."""
    client = api_app(settings).test_client()
    status, body = post_link(client, login_link(settings, account_id))
    assert status == 303, body
    return client


def test_the_audits_page_lists_audits_and_the_form_creates_a_draft(sign_in, settings):
    client = sign_in("acme")
    listing = page(client, "/console/audits")
    assert 'aria-current="page">Audits' in listing and 'id="no-audits"' in listing
    form = page(client, "/console/audits/new")
    for field in ("title", "framework_id", "type-type_ii", "description", "target_completion"):
        assert f'<label for="{field}"' in form, field
    answer = client.post("/console/audits", data={
        "csrf_token": csrf_token(client, "/console/audits/new"), "title": "SOC 2 Type II 2026",
        "framework_id": "soc2", "type": "type_ii", "target_completion": "2026-12-31",
        "period_start": "2026-01-01", "period_end": "2026-07-01"})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    location = answer.headers["Location"]
    assert re.fullmatch(r"/console/audits/[^/?]+\?done=created", location)
    detail = page(client, location)
    assert "The audit is created as a draft" in detail and "SOC 2 Type II 2026" in detail
    assert "31 Dec 2026" in detail
    assert "from 01 Jan 2026 up to 01 Jul 2026" in detail
    assert 'aria-current="step" class="current">Draft' in detail
    assert 'id="move-in_progress"' in detail  # only the next stage is offered
    assert 'id="move-evidence_review"' not in detail and 'id="move-complete"' not in detail
    assert re.search(r"0 of \d+ controls reviewed", detail)
    assert "SOC 2 Type II 2026" in page(client, "/console/audits")


def test_bad_audit_input_shows_each_message_beside_its_field_and_writes_nothing(
        sign_in, settings):
    client = sign_in("acme")
    answer = client.post("/console/audits", data={
        "csrf_token": csrf_token(client, "/console/audits/new"), "title": "",
        "framework_id": "nope", "type": "type_iii", "target_completion": "31/12/2026",
        "description": "bad \x00 byte"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422, html[:500]
    for field, words in (("title", "Enter a title"), ("framework_id", "Choose a framework"),
                         ("type", "Choose Type I or Type II"),
                         ("target_completion", "as a date"),
                         ("description", "cannot be stored")):
        assert re.search(rf'id="{field}-error">.*{words}', html), field
    assert 'aria-describedby="title-error" aria-invalid="true"' in html
    assert "Nothing was saved: 5 things to fix" in html
    assert count(settings, Audit) == 0

    # The period, as the engine checks it (type_ii only, start before end), beside its field.
    for kind, start, end, field, words in (
            ("type_i", "2026-01-01", "2026-07-01", "period_start", "Only a Type II audit"),
            ("type_ii", "2026-07-01", "2026-01-01", "period_end", "must end after its first"),
            ("type_ii", "2026-07-01", "", "period_end", "Enter both"),
            ("type_ii", "2026-02-30", "", "period_start", "as a date")):
        answer = client.post("/console/audits", data={
            "csrf_token": csrf_token(client, "/console/audits/new"), "title": "T",
            "framework_id": "soc2", "type": kind, "period_start": start, "period_end": end})
        assert answer.status_code == 422, (kind, start, end)
        assert re.search(rf'id="{field}-error">[^<]*(<[^>]*>[^<]*)*{words}',
                         answer.get_data(as_text=True)), (kind, start, end)
    assert count(settings, Audit) == 0


def test_a_post_without_its_csrf_token_is_refused_and_writes_nothing(sign_in, settings):
    client = sign_in("acme")
    audit_id = make_audit(settings)
    before = count(settings, AuditActivity)
    for path, data in (("/console/audits", {"title": "x", "framework_id": "soc2",
                                            "type": "type_i"}),
                       (f"/console/audits/{audit_id}/status", {"status": "in_progress"}),
                       (f"/console/audits/{audit_id}/report", {})):
        answer = client.post(path, data=data)
        assert answer.status_code == 400, path
        assert "security token" in answer.get_data(as_text=True)
    assert count(settings, Audit) == 1 and count(settings, AuditActivity) == before


def test_the_status_moves_one_step_and_the_engine_refuses_a_skip(sign_in, settings):
    client = sign_in("acme")
    audit_id = make_audit(settings)
    token = csrf_token(client, f"/console/audits/{audit_id}")
    moved = client.post(f"/console/audits/{audit_id}/status",
                        data={"csrf_token": token, "status": "in_progress"})
    assert moved.status_code == 303
    html = page(client, moved.headers["Location"])
    assert "moved to its next stage" in html and 'id="move-evidence_review"' in html
    skipped = client.post(f"/console/audits/{audit_id}/status",
                          data={"csrf_token": token, "status": "complete"})
    assert skipped.status_code == 409
    assert "can only move to Evidence review" in skipped.get_data(as_text=True)
    bogus = client.post(f"/console/audits/{audit_id}/status",
                        data={"csrf_token": token, "status": "done!"})
    assert bogus.status_code == 422
    with unit_of_work(settings) as session:
        assert audits.get_audit(session, "acme", audit_id).status is AuditStatus.IN_PROGRESS
    assert "moved the audit to In progress" in page(client, f"/console/audits/{audit_id}")


def test_inviting_an_auditor_queues_the_mail_and_withdrawing_ends_the_access(
        sign_in, settings, sent):
    client = sign_in("acme")
    audit_id = make_audit(settings)
    no_mail = client.post(f"/console/audits/{audit_id}/auditors", data={
        "csrf_token": csrf_token(client, f"/console/audits/{audit_id}"),
        "email": "auditor@firm.com", "name": "Jane Smith"})
    assert no_mail.status_code == 503 and "cannot send mail" in no_mail.get_data(as_text=True)

    mailing = signed_in_client(settings.model_copy(update={"smtp_host": "127.0.0.1"}))
    set_job_sender(sent.append)  # that app sends to Celery: capture the mail job instead
    token = csrf_token(mailing, f"/console/audits/{audit_id}")
    bad = mailing.post(f"/console/audits/{audit_id}/auditors", data={
        "csrf_token": token, "email": "not an address", "name": ""})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert re.search(r'id="email-error">.*like auditor@firm.com', html)
    assert re.search(r'id="name-error">.*Enter the auditor', html)
    assert 'value="not an address"' in html
    assert count(settings, AuditorInvitation) == 0 and count(settings, OutboundMail) == 0

    invited = mailing.post(f"/console/audits/{audit_id}/auditors", data={
        "csrf_token": token, "email": "auditor@firm.com", "name": "Jane Smith",
        "firm": "Big4 Audit LLP"})
    assert invited.status_code == 303
    with unit_of_work(settings) as session:
        mail = session.scalars(select(OutboundMail)).one()
        assert mail.to_address == "auditor@firm.com"
        invitation_id = session.scalars(select(AuditorInvitation.id)).one()
    assert [j for j in sent if mail.id in j.args]  # for a worker, after the commit
    html = page(mailing, invited.headers["Location"])
    assert "The invitation is on its way" in html
    assert "Jane Smith" in html and "Invited, link not opened yet" in html
    assert "invited Jane Smith (auditor@firm.com)" in html

    confirm = page(mailing, f"/console/audits/{audit_id}/auditors/{invitation_id}/revoke")
    assert "Withdraw Jane Smith" in confirm and "link stops working" in confirm
    revoked = mailing.post(f"/console/audits/{audit_id}/auditors/{invitation_id}/revoke",
                           data={"csrf_token": token})
    assert revoked.status_code == 303
    html = page(mailing, revoked.headers["Location"])
    assert "access is withdrawn" in html and "Withdrawn" in html
    assert f'href="/console/audits/{audit_id}/auditors/{invitation_id}/revoke"' not in html


@pytest.fixture
def store_settings(settings, moto_endpoint):
    """The suite's settings with the evidence store on moto's S3 server, bucket empty."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    changed = settings.model_copy(update={
        "storage_endpoint_url": moto_endpoint, "storage_bucket": BUCKET,
        "storage_access_key_id": "testing",
        "storage_secret_access_key": SecretStr("testing-secret"),
        "storage_max_object_bytes": MAX_SIZE})
    return changed, s3


def test_an_upload_answers_the_request_through_the_push_path(db, store_settings):
    cfg, s3 = store_settings
    audit_id = make_audit(cfg, status=AuditStatus.EVIDENCE_REVIEW)
    request_id = ask(cfg, audit_id)
    browser = signed_in_client(cfg)
    html = page(browser, f"/console/audits/{audit_id}/requests/{request_id}")
    assert "Export of the access review" in html and 'enctype="multipart/form-data"' in html
    assert '<label for="file">' in html and "Up to 4,096 bytes" in html
    token = csrf_token(browser, f"/console/audits/{audit_id}/requests/{request_id}")
    path = f"/console/audits/{audit_id}/requests/{request_id}/upload"

    too_big = browser.post(path, data={"csrf_token": token, "file": (
        io.BytesIO(b"x" * (MAX_SIZE + 1)), "big.csv", "text/csv")})
    assert too_big.status_code == 422
    assert re.search(r'id="file-error">.*4,097 bytes', too_big.get_data(as_text=True))
    huge = browser.post(path, data={"csrf_token": token, "file": (
        io.BytesIO(b"x" * 200_000), "huge.csv", "text/csv")})  # over the body limit too
    assert huge.status_code == 413 and "4,096 bytes at most" in huge.get_data(as_text=True)
    none = browser.post(path, data={"csrf_token": token, "note": "here"})
    assert none.status_code == 422 and "Choose a file to upload" in none.get_data(as_text=True)
    assert count(cfg, EvidenceObject) == 0
    assert not s3.list_objects_v2(Bucket=BUCKET).get("Contents")

    content = b"user,reviewed\nalice,2026-11-30\n"
    answer = browser.post(path, data={"csrf_token": token, "note": "Q4 review",
                                      "file": (io.BytesIO(content), "access review.csv",
                                               "text/csv")})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:800]
    digest = hashlib.sha256(content).hexdigest()
    with unit_of_work(cfg) as session:
        req = session.get_one(EvidenceRequest, request_id)
        assert req.status is RequestStatus.RESPONDED and req.response_note == "Q4 review"
        assert req.response_sha256 == digest and req.response_sha256_verified is True
        obj = session.get_one(EvidenceObject, req.response_pushed_id)
        assert obj.status is ObjectStatus.VERIFIED and obj.content_type == "text/csv"
        lineage = session.scalars(select(EvidenceLineage)).one()
        assert (lineage.control_id, lineage.assessment_id) == ("CC6.1", audit_id)
    stored = s3.get_object(Bucket=BUCKET, Key=f"acme/evidence/sha256/{digest}")
    assert stored["Body"].read() == content
    html = page(browser, answer.headers["Location"])
    assert "Your answer is sent" in html and digest in html and "(verified)" in html
    assert "the file <strong>access review.csv</strong>" in html

    # A second request answered with the file pushed before; another account's id is refused.
    second = ask(cfg, audit_id, control="CC7.2")
    pick = f"/console/audits/{audit_id}/requests/{second}/answer"
    assert "access review.csv" in page(browser, f"/console/audits/{audit_id}/requests/{second}")
    foreign = browser.post(pick, data={"csrf_token": token, "pushed_evidence_id": "evo-other"})
    assert foreign.status_code == 422
    assert re.search(r'id="pushed_evidence_id-error">.*Choose one of the files',
                     foreign.get_data(as_text=True))
    picked = browser.post(pick, data={"csrf_token": token, "pushed_evidence_id": obj.id})
    assert picked.status_code == 303
    with unit_of_work(cfg) as session:
        assert session.get_one(EvidenceRequest, second).response_pushed_id == obj.id

    # A complete audit is read-only: the page says so, an upload is refused, nothing stored.
    with unit_of_work(cfg) as session:
        audit = audits.get_audit(session, "acme", audit_id)
        audits.update_audit(session, audit, CUSTOMER,
                            audits.AuditChanges(status=AuditStatus.FINDINGS))
        audits.complete_audit(session, audit, AUDITOR)
    third = f"/console/audits/{audit_id}/requests/{second}"
    assert 'id="read-only"' in page(browser, third) and 'id="file"' not in page(browser, third)
    late = browser.post(f"{third}/upload", data={"csrf_token": token, "file": (
        io.BytesIO(b"late"), "late.csv", "text/csv")})
    assert late.status_code == 409 and "complete and read-only" in late.get_data(as_text=True)
    assert count(cfg, EvidenceObject) == 1


def test_findings_activity_and_the_report_download(sign_in, settings):
    client = sign_in("acme")
    audit_id = make_audit(settings, status=AuditStatus.FINDINGS)
    with unit_of_work(settings) as session:
        audit = audits.get_audit(session, "acme", audit_id)
        audits.create_finding(session, audit, AUDITOR, control_ref="CC6.1",
                              severity=FindingSeverity.MAJOR, title="MFA not enforced",
                              description="Two admins without MFA",
                              remediation="Enforce MFA for admins")
    html = page(client, f"/console/audits/{audit_id}")
    assert "MFA not enforced" in html and "Enforce MFA for admins" in html and "Major" in html
    assert "Jane Smith</strong> (auditor) filed a finding on CC6.1" in html

    token = csrf_token(client, f"/console/audits/{audit_id}")
    report = client.post(f"/console/audits/{audit_id}/report", data={"csrf_token": token})
    assert report.status_code == 200
    assert report.headers["Content-Disposition"] == \
        f'attachment; filename="{audit_id}-report.md"'
    text = report.get_data(as_text=True)
    assert "acme SOC 2" in text and "MFA not enforced" in text
    assert report.headers["X-Report-SHA256"] == hashlib.sha256(text.encode()).hexdigest()
    log = page(client, f"/console/audits/{audit_id}/activity")
    assert "generated the report" in log and report.headers["X-Report-SHA256"] in log
    assert log.index("created the audit") < log.index("generated the report")
    for bad in ("0", "²", "x", "9" * 9):
        assert client.get(f"/console/audits/{audit_id}/activity?page={bad}").status_code == 422


def test_another_accounts_audit_answers_404_and_nothing_is_written(sign_in, settings):
    theirs = make_audit(settings, "beta", status=AuditStatus.EVIDENCE_REVIEW)
    their_request = ask(settings, theirs, "beta")
    with unit_of_work(settings) as session:
        invitation = AuditorInvitation(audit_id=theirs, account_id="beta", email="a@b.co",
                                       name="Their Auditor", token_hash="0" * 64,
                                       invited_by="beta", created_at=audits.now_utc(),
                                       expires_at=audits.now_utc())
        session.add(invitation)
        session.flush()
        their_auditor = invitation.id
    client = sign_in("acme")
    token = csrf_token(client, "/console/audits")
    before = count(settings, AuditActivity)
    base = f"/console/audits/{theirs}"
    for path in (base, f"{base}/activity", f"{base}/requests/{their_request}",
                 f"{base}/auditors/{their_auditor}/revoke"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "belongs to another account" in answer.get_data(as_text=True)
        assert "beta SOC 2" not in answer.get_data(as_text=True)
    for path, data in ((f"{base}/status", {"status": "findings"}),
                       (f"{base}/auditors", {"email": "x@y.co", "name": "X"}),
                       (f"{base}/auditors/{their_auditor}/revoke", {}),
                       (f"{base}/requests/{their_request}/answer",
                        {"pushed_evidence_id": "evo-x"}),
                       (f"{base}/report", {})):
        answer = client.post(path, data={"csrf_token": token, **data})
        assert answer.status_code == 404, path
    assert count(settings, AuditActivity) == before
    with unit_of_work(settings) as session:
        assert audits.get_audit(session, "beta", theirs).status is AuditStatus.EVIDENCE_REVIEW
        assert session.get_one(EvidenceRequest, their_request).status is RequestStatus.OPEN
        assert session.get_one(AuditorInvitation, their_auditor).revoked_at is None
    assert "beta SOC 2" not in page(client, "/console/audits")
    for hostile in ("%00", "a" * 65, "x%0Ay", "%F0%9F%92%A5"):  # never reaches the database
        assert client.get(f"/console/audits/{hostile}").status_code == 404
        assert client.get(f"{base}/requests/{hostile}").status_code == 404
        assert client.post(f"/console/audits/{hostile}/status",
                           data={"csrf_token": token, "status": "findings"}).status_code == 404
