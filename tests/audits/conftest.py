"""Audit fixtures: a local SMTP server (aiosmtpd), a Celery worker that sends through it, an app
on the same settings, evidence written through the engine's evidence store, and helpers that
walk an audit through the API with a customer and an auditor token.

The worker is our own (not tests/conftest.py's `worker`): it needs the SMTP settings in its
environment, and it listens under its own Redis key prefix so the suite's shared worker, which
has no SMTP server, never takes our mail jobs.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient

from engine.connections import ensure_account
from engine.db import session_factory
from engine.evidence import Item, store_check_results
from engine.models import Connection, ConnectionStatus
from engine.models.push import EvidenceLineage, EvidenceObject, ObjectStatus
from engine.settings import Settings
from tests.conftest import running_worker, settings_env
from tests.emulators import free_port

ACCOUNT = "acme"
PERIOD = {"period_start": "2026-01-01", "period_end": "2026-07-01"}
"""A type_ii audit's period (required at creation): the first half of 2026."""
TOKEN_IN_MAIL = re.compile(r'"token": "([A-Za-z0-9_-]+)"')


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def discard(self, to: str) -> None:
        """Forget earlier messages to `to` (so the next wait sees only a new one)."""
        with self._changed:
            self.messages = [m for m in self.messages if m["To"] != to]

    def wait_for(self, to: str, *, timeout: float = 30.0) -> EmailMessage:
        """The newest message to `to`, waiting for the worker to deliver it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self.messages if m["To"] == to]
                if found:
                    self.messages.remove(found[-1])
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to} within {timeout}s")
                self._changed.wait(left)


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="session")
def audit_settings(settings: Settings, smtp: tuple[Inbox, int]) -> Settings:
    """The suite's settings plus SMTP, under a Redis key prefix of our own."""
    return settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp[1],
        "smtp_from": "evidence-engine <audits@example.test>",
        "redis_key_prefix": f"{settings.redis_key_prefix}audits-{uuid.uuid4().hex[:6]}:",
        "public_base_url": "https://evidence.example.test"})


def _env(s: Settings) -> dict[str, str]:
    return {**settings_env(s), "EVIDENCE_REDIS_KEY_PREFIX": s.redis_key_prefix,
            "EVIDENCE_SMTP_HOST": s.smtp_host or "", "EVIDENCE_SMTP_PORT": str(s.smtp_port),
            "EVIDENCE_SMTP_FROM": s.smtp_from, "EVIDENCE_PUBLIC_BASE_URL": s.public_base_url}


@pytest.fixture(scope="session")
def mail_worker(audit_settings: Settings,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real Celery worker (default queue) whose mail goes to the local SMTP server."""
    log = tmp_path_factory.mktemp("mail-worker") / "worker.log"
    with running_worker(_env(audit_settings), log, queues="default", concurrency=2):
        yield log


@pytest.fixture
def client(audit_settings: Settings, db: None) -> FlaskClient:
    """The API on the audit settings (its jobs go to the mail worker's key prefix)."""
    from cli.wiring import api_app

    return api_app(audit_settings).test_client()


# --- evidence, written the way a sync writes it --------------------------------------------

@dataclass
class Estate:
    """Evidence of one AWS connection, stored through engine.evidence like a sync stores it."""

    settings: Settings
    connection_id: str

    def store(self, check_id: str, resources: dict[str, bool]) -> None:
        """Make the check's current results `resources` (id → passing); versions as a sync."""
        items = [Item.of(rid, "aws.resource", "passing" if ok else "failing",
                         f"{rid} {'passes' if ok else 'fails'}", {"ok": ok, "resource": rid})
                 for rid, ok in sorted(resources.items())]
        with session_factory(self.settings)() as s, s.begin():
            store_check_results(s, account_id=ACCOUNT, connection_id=self.connection_id,
                                check_id=check_id, items=items, run_id=None,
                                now=datetime.now(UTC))


@pytest.fixture
def estate(audit_settings: Settings, db: None) -> Estate:
    """acme's AWS evidence: CC6.1 is served by root MFA and S3 encryption (one bucket fails),
    CC7.5 by S3 versioning."""
    with session_factory(audit_settings)() as s, s.begin():
        ensure_account(s, ACCOUNT)
        conn = Connection(account_id=ACCOUNT, integration_id="aws",
                          status=ConnectionStatus.ACTIVE)
        s.add(conn)
        s.flush()
        connection_id = conn.id
    e = Estate(audit_settings, connection_id)
    e.store("aws.iam.root_account_mfa", {"arn:aws:iam::123456789012:root": True})
    e.store("aws.s3.bucket_default_encryption",
            {"arn:aws:s3:::logs": True, "arn:aws:s3:::exports": False})
    e.store("aws.s3.bucket_versioning", {"arn:aws:s3:::logs": True})
    return e


@dataclass(frozen=True)
class PushedObject:
    id: str
    sha256: str


def push_evidence(settings: Settings, *, control_id: str, content: bytes,
                  filename: str = "access_review.csv", assessment_id: str | None = None,
                  at: datetime | None = None) -> PushedObject:
    """A verified pushed object linked to a SOC 2 control, as issue 6's flow leaves it."""
    at = at or datetime.now(UTC)
    digest = hashlib.sha256(content).hexdigest()
    with session_factory(settings)() as s, s.begin():
        ensure_account(s, ACCOUNT)
        obj = EvidenceObject(
            account_id=ACCOUNT, upload_key=f"{ACCOUNT}/uploads/{uuid.uuid4().hex}/{filename}",
            stored_key=f"{ACCOUNT}/evidence/sha256/{digest}", filename=filename,
            content_type="text/csv", status=ObjectStatus.VERIFIED, expected_sha256=digest,
            sha256=digest, size=len(content), uploaded_by="ci", created_at=at,
            upload_expires_at=at + timedelta(minutes=15), verified_at=at)
        s.add(obj)
        s.flush()
        s.add(EvidenceLineage(account_id=ACCOUNT, evidence_object_id=obj.id,
                              framework_id="soc2", control_id=control_id,
                              assessment_id=assessment_id, linked_by="ci", created_at=at))
        return PushedObject(obj.id, digest)


# --- walking an audit through the API ------------------------------------------------------

def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(resp: Any, status: int = 200) -> Any:
    """The `data` of a response that must have `status`."""
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    return resp.get_json()["data"]


def create_audit(client: FlaskClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"framework_id": "soc2", "type": "type_ii",
            "title": "SOC 2 Type II Annual Audit 2026", **PERIOD, **fields}
    return ok(client.post("/api/v1/audits", json=body, headers=auth), 201)


def advance(client: FlaskClient, auth: dict[str, str], audit_id: str, *statuses: str) -> None:
    for status in statuses:
        ok(client.put(f"/api/v1/audits/{audit_id}", json={"status": status}, headers=auth))


@pytest.fixture
def invite(client: FlaskClient, auth: dict[str, str], smtp: tuple[Inbox, int],
           mail_worker: Path) -> Callable[..., str]:
    """Invite an auditor through the API and return the magic-link token from the mail."""
    inbox = smtp[0]

    def run(audit_id: str, email_address: str = "auditor@firm.com",
            name: str = "Jane Smith") -> str:
        inbox.discard(email_address)
        ok(client.post(f"/api/v1/audits/{audit_id}/invite-auditor", headers=auth,
                       json={"email": email_address, "name": name, "firm": "Big4 Audit LLP"}),
           201)
        message = inbox.wait_for(email_address)
        found = TOKEN_IN_MAIL.search(message.get_content())
        assert found, message.get_content()
        return found.group(1)

    return run


@pytest.fixture
def auditor_for(client: FlaskClient, invite: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Invite, read the mail, accept: the auditor's Authorization header for an audit."""

    def run(audit_id: str, email_address: str = "auditor@firm.com") -> dict[str, str]:
        token = invite(audit_id, email_address)
        data = ok(client.post("/api/v1/auditor/accept-invitation", json={"token": token}))
        return bearer(data["token"])

    return run


def accepted_auditor(settings: Settings, audit_id: str,
                     email_address: str = "auditor@firm.com") -> dict[str, str]:
    """An accepted invitation written straight to the database, and its auditor header (for
    tests about what an auditor sees rather than how the invitation travels)."""
    from engine.auditor_tokens import new_link_token, start_session
    from engine.models.audit import AuditorInvitation

    _, token_hash = new_link_token()
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        invitation = AuditorInvitation(
            audit_id=audit_id, account_id=ACCOUNT, email=email_address, name="Jane Smith",
            token_hash=token_hash, invited_by="developer", created_at=now,
            expires_at=now + timedelta(days=7), accepted_at=now)
        s.add(invitation)
        s.flush()
        return bearer(start_session(s, settings, invitation, now).token)
