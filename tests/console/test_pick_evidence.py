"""Answering an evidence request in the console with collected evidence (issue 11): the picker
lists the account's current evidence (filtered by check, result and resource, a page at a
time), the ticked items are sent as they stand, and the auditor portal shows them, unchanged by
a later sync. Refusals: a POST without its CSRF token, nothing ticked, another account's
evidence, evidence removed meanwhile: each with nothing written."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from cli.wiring import api_app
from engine import audits
from engine.accounts import ensure_account
from engine.db import unit_of_work
from engine.evidence import Item, store_check_results
from engine.models import Connection, ConnectionStatus, Evidence
from engine.models.audit import (
    AuditActivity,
    AuditStatus,
    EvidenceRequest,
    EvidenceRequestItem,
    RequestStatus,
)
from tests.console.auditor_helpers import accept, invite
from tests.console.test_audit_pages import CUSTOMER, ask, make_audit, page

ENCRYPTION, VERSIONING = "aws.s3.bucket_default_encryption", "aws.s3.bucket_versioning"
EXPORTS, LOGS = "arn:aws:s3:::exports", "arn:aws:s3:::logs"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def connect(settings, account_id: str = "acme") -> str:
    with unit_of_work(settings) as session:
        ensure_account(session, account_id)
        conn = Connection(account_id=account_id, integration_id="aws",
                          status=ConnectionStatus.ACTIVE)
        session.add(conn)
        session.flush()
        return conn.id


def store(settings, connection_id: str, check_id: str, resources: dict[str, bool],
          account_id: str = "acme") -> None:
    """The check's current results (resource → passing), written as a sync writes them."""
    items = [Item.of(rid, "aws.s3.bucket", "passing" if ok else "failing",
                     f"Bucket {rid.rsplit(':', 1)[-1]} {'passes' if ok else 'fails'}", {"ok": ok})
             for rid, ok in sorted(resources.items())]
    with unit_of_work(settings) as session:
        store_check_results(session, account_id=account_id, connection_id=connection_id,
                            check_id=check_id, items=items, run_id=None, now=datetime.now(UTC))


def evidence(settings, resource_id: str, check_id: str = ENCRYPTION,
             account_id: str = "acme") -> Evidence:
    with unit_of_work(settings) as session:
        found = session.scalars(select(Evidence).where(
            Evidence.account_id == account_id, Evidence.check_id == check_id,
            Evidence.resource_id == resource_id)).one()
        session.expunge(found)
        return found


def written(settings) -> tuple[int, int, int]:
    with unit_of_work(settings) as session:
        return (int(session.scalar(select(func.count()).select_from(EvidenceRequestItem)) or 0),
                int(session.scalar(select(func.count()).select_from(AuditActivity).where(
                    AuditActivity.type == "evidence_provided")) or 0),
                int(session.scalar(select(func.count()).select_from(EvidenceRequest).where(
                    EvidenceRequest.status == RequestStatus.RESPONDED)) or 0))


def csrf(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, html[:500]
    return found.group(1)


def test_pick_collected_evidence_and_the_auditor_sees_it_as_it_was(sign_in, settings, sent):
    conn = connect(settings)
    store(settings, conn, ENCRYPTION, {EXPORTS: False, LOGS: True})
    store(settings, conn, VERSIONING, {LOGS: True})
    audit_id = make_audit(settings, status=AuditStatus.IN_PROGRESS)
    link, _ = invite(settings, audit_id)
    request_id = ask(settings, audit_id)
    client = sign_in("acme")
    base = f"/console/audits/{audit_id}/requests/{request_id}"

    assert f'href="{base}/collected"' in page(client, base)
    picker = page(client, f"{base}/collected")
    assert re.search(r'<optgroup label="Checks that serve CC6.1">[^/]*'
                     rf'<option value="{ENCRYPTION}"', picker)
    assert '<label for="filter-q">Resource</label>' in picker
    exports, logs = evidence(settings, EXPORTS), evidence(settings, LOGS)
    for e in (exports, logs):
        assert f'<label for="pick-{e.id}"><code class="resource">{e.resource_id}</code>' \
            in picker
    failing = page(client, f"{base}/collected?status=failing")
    assert f'id="pick-{exports.id}"' in failing and f'id="pick-{logs.id}"' not in failing
    searched = page(client, f"{base}/collected?q=LOGS&check={VERSIONING}")
    versioning_logs = evidence(settings, LOGS, VERSIONING)
    assert re.findall(r'id="pick-(\d+)"', searched) == [str(versioning_logs.id)]

    answer = client.post(f"{base}/collected", data={
        "csrf_token": csrf(picker), "evidence_id": [str(exports.id), str(logs.id)],
        "note": "Both buckets, as of today"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:800]
    assert answer.headers["Location"] == f"/console/audits/{audit_id}?done=answered#requests"
    detail = page(client, answer.headers["Location"])
    assert "Your answer is sent to the auditor" in detail
    assert "2 pieces of collected evidence" in detail and exports.content_hash in detail
    assert "answered an evidence request on CC6.1 with 2 pieces of collected evidence" in detail

    store(settings, conn, ENCRYPTION, {EXPORTS: True})   # exports fixed, logs gone
    assert evidence(settings, EXPORTS).content_hash != exports.content_hash

    auditor = api_app(settings).test_client()
    assert accept(auditor, link).status_code == 303
    assert "on CC6.1 with 2 pieces of collected evidence" in page(auditor, "/auditor")
    seen = page(auditor, "/auditor/controls/CC6.1")
    answered = seen[seen.index('class="files answered-evidence"'):]
    answered = answered[:answered.index("</ul>")]
    for e, words in ((exports, "Failing"), (logs, "Passing")):
        item = re.search(rf'data-evidence="ev-{e.id}">(.*?)</li>', answered, re.S)
        assert item, answered
        assert words in item.group(1) and e.resource_id in item.group(1)
        assert e.content_hash in item.group(1) and ENCRYPTION in item.group(1)
        assert "taken" in item.group(1)
    assert "Both buckets, as of today" in seen
    assert written(settings) == (2, 1, 1)


def test_refusals_write_nothing(sign_in, settings):
    conn = connect(settings)
    store(settings, conn, ENCRYPTION, {EXPORTS: False, LOGS: True})
    theirs = connect(settings, "globex")
    store(settings, theirs, ENCRYPTION, {"arn:aws:s3:::globex-private": False}, "globex")
    audit_id = make_audit(settings, status=AuditStatus.IN_PROGRESS)
    request_id = ask(settings, audit_id)
    other_audit = make_audit(settings, "globex", status=AuditStatus.IN_PROGRESS)
    other_request = ask(settings, other_audit, "globex")
    client = sign_in("acme")
    base = f"/console/audits/{audit_id}/requests/{request_id}/collected"
    exports, logs = evidence(settings, EXPORTS), evidence(settings, LOGS)
    private = evidence(settings, "arn:aws:s3:::globex-private", account_id="globex")
    picker = page(client, base)
    assert "globex-private" not in picker and f'id="pick-{private.id}"' not in picker
    token = csrf(picker)

    without = client.post(base, data={"evidence_id": str(exports.id)})
    assert without.status_code == 400 and "security token" in without.get_data(as_text=True)

    for ticked, words in (([], "Tick at least one piece of evidence"),
                          (["abc"], "Tick evidence from the list"),
                          ([f"{exports.id} OR 1=1"], "Tick evidence from the list"),
                          ([str(exports.id)] * 2, "Tick evidence from the list"),
                          ([str(private.id)], "Tick evidence from the list"),
                          ([str(exports.id), str(private.id)], "Tick evidence from the list"),
                          ([str(n) for n in range(1, 52)], "at most 50")):
        answer = client.post(base, data={"csrf_token": token, "evidence_id": ticked})
        html = answer.get_data(as_text=True)
        assert answer.status_code == 422, (ticked, html[:400])
        assert re.search(rf'id="evidence_id-error">.*{words}', html), ticked
        assert "globex-private" not in html
    refused = client.post(base, data={"csrf_token": token, "evidence_id": str(exports.id),
                                      "note": "bad \x00 byte"})
    assert refused.status_code == 422 and 'id="note-error"' in refused.get_data(as_text=True)

    store(settings, conn, ENCRYPTION, {EXPORTS: False})   # logs removed since the page
    gone = client.post(base, data={"csrf_token": token,
                                   "evidence_id": [str(exports.id), str(logs.id)]})
    html = gone.get_data(as_text=True)
    assert gone.status_code == 409 and f"ev-{logs.id}" in html and "was removed" in html
    assert f'id="pick-{logs.id}"' not in html   # the page shows what is current

    # another account's request, page or answer: not found
    other = f"/console/audits/{other_audit}/requests/{other_request}/collected"
    assert client.get(other).status_code == 404
    assert client.post(other, data={"csrf_token": token,
                                    "evidence_id": str(private.id)}).status_code == 404
    for bad in ("?status=unknown", "?page=0", "?page=abc", "?check=%00", "?q=" + "x" * 201):
        assert client.get(base + bad).status_code == 422, bad
    assert written(settings) == (0, 0, 0)


def test_the_picker_pages_through_the_evidence_keeping_its_filters(sign_in, settings):
    conn = connect(settings)
    store(settings, conn, ENCRYPTION, {f"arn:aws:s3:::bucket-{n:03d}": n % 2 == 0
                                       for n in range(120)})
    audit_id = make_audit(settings, status=AuditStatus.IN_PROGRESS)
    base = f"/console/audits/{audit_id}/requests/{ask(settings, audit_id)}/collected"
    client = sign_in("acme")
    first = page(client, f"{base}?status=passing")
    assert len(re.findall(r'name="evidence_id"', first)) == 50   # a whole answer's worth
    assert "Showing 1 to 50, more on the next page" in first
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert next_link and "status=passing" in next_link.group(1)
    second = page(client, next_link.group(1).replace("&amp;", "&"))
    assert "Showing 51 to 60." in second and 'rel="next"' not in second
    ids = set(re.findall(r'id="pick-(\d+)"', first)) | set(re.findall(r'id="pick-(\d+)"',
                                                                       second))
    assert len(ids) == 60
    with unit_of_work(settings) as session:
        passing = {str(e.id) for e in session.scalars(select(Evidence).where(
            Evidence.status == "passing"))}
    assert ids == passing


def test_a_complete_audit_offers_no_picking(sign_in, settings):
    conn = connect(settings)
    store(settings, conn, ENCRYPTION, {EXPORTS: False})
    audit_id = make_audit(settings, status=AuditStatus.IN_PROGRESS)
    request_id = ask(settings, audit_id)
    with unit_of_work(settings) as session:
        audit = audits.get_audit(session, "acme", audit_id)
        for step in (AuditStatus.EVIDENCE_REVIEW, AuditStatus.FINDINGS, AuditStatus.COMPLETE):
            audits.update_audit(session, audit, CUSTOMER, audits.AuditChanges(status=step))
    client = sign_in("acme")
    base = f"/console/audits/{audit_id}/requests/{request_id}/collected"
    html = page(client, base)
    assert 'id="read-only"' in html and 'name="evidence_id"' not in html
    answer = client.post(base, data={"csrf_token": csrf(page(client, "/console/audits/new")),
                                     "evidence_id": str(evidence(settings, EXPORTS).id)})
    assert answer.status_code == 409 and "read-only" in answer.get_data(as_text=True)
    assert written(settings) == (0, 0, 0)
