"""Helpers of the auditor portal tests: an audit made through the JSON API, an invitation made
through the engine with its mail read back (the link exactly as mailed), and accepting it as the
portal's page does."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from engine import audits
from engine.audits import Actor
from engine.db import unit_of_work
from engine.models.audit import ActorKind, OutboundMail
from engine.settings import Settings
from engine.vault import vault
from tests.console.conftest import CSRF

LINK = re.compile(r"(\S+/auditor/accept#token=[A-Za-z0-9_-]+)")


def create_audit(client: FlaskClient, auth: dict[str, str], **fields: Any) -> str:
    body = {"framework_id": "soc2", "type": "type_ii",
            "title": "SOC 2 Type II Annual Audit 2026",
            "period_start": "2026-01-01", "period_end": "2026-07-01", **fields}
    answer = client.post("/api/v1/audits", json=body, headers=auth)
    assert answer.status_code == 201, answer.get_json()
    audit_id: str = answer.get_json()["data"]["id"]
    return audit_id


def advance(client: FlaskClient, auth: dict[str, str], audit_id: str, *statuses: str) -> None:
    for status in statuses:
        answer = client.put(f"/api/v1/audits/{audit_id}", json={"status": status}, headers=auth)
        assert answer.status_code == 200, answer.get_json()


def invite(settings: Settings, audit_id: str, email: str = "auditor@firm.com",
           account_id: str = "acme") -> tuple[str, str]:
    """Invite an auditor (the engine call the API makes; the mail job goes to the `sent`
    fixture) and read the magic link from the queued mail: (link, invitation id)."""
    mail_settings = settings.model_copy(update={"smtp_host": "127.0.0.1"})
    with unit_of_work(mail_settings) as session:
        audit = audits.get_audit(session, account_id, audit_id)
        invitation = audits.invite_auditor(session, mail_settings, audit,
                                           Actor(ActorKind.CUSTOMER, "lead@acme.test"),
                                           email=email, name="Jane Smith", firm="Big4 Audit LLP")
        mail = session.get_one(OutboundMail, invitation.mail_id)
        assert mail.body_sealed is not None
        body = vault(mail_settings).open(mail.body_sealed)["body"]
        invitation_id = invitation.id
    found = LINK.search(body)
    assert found, body
    return found.group(1), invitation_id


def accept(client: FlaskClient, link: str) -> Any:
    """What the accept page's script does: post the fragment's token with the CSRF token."""
    page = client.get("/auditor/accept")
    csrf = CSRF.search(page.get_data(as_text=True))
    assert csrf, page.get_data(as_text=True)[:400]
    return client.post("/auditor/accept", data={"token": link.split("#token=", 1)[1],
                                                "csrf_token": csrf.group(1)})


def csrf_of(client: FlaskClient, path: str) -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)
