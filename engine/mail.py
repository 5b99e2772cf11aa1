"""Outgoing mail: queue a message in the database, send it from the `mail.send` task over SMTP.

The body is sealed with the vault while it waits (it may carry a magic link) and erased once the
SMTP server has taken the message, so a link exists in clear only in the recipient's mailbox.

Sending is leased (engine/lease.py): one worker at a time holds a mail, a second delivery of
its task leaves, and a worker killed mid-send is replaced by the reaper within the lease
staleness. Delivery is at least once: if a worker dies after the SMTP server accepted the
message but before the row says `sent`, the mail is sent again (with the same Message-ID, so
a mail client may fold the two). A sender that finds it lost its lease still records `sent`,
so a replacement that has not started yet finds the mail sent and leaves.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from sqlalchemy.orm import Session, sessionmaker

from engine.db import enqueue_after_commit
from engine.errors import StorageUnavailable
from engine.lease import (
    Lease,
    TaskKind,
    TaskLease,
    claim_task,
    drop_task,
    end_task,
    queue_task,
    requeue_task,
    task_job,
    worker_id,
)
from engine.models.audit import MailStatus, OutboundMail
from engine.settings import Settings
from engine.vault import vault

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 20.0
MAX_ATTEMPTS = 6
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 5.0, 300.0


class MailNotSent(Exception):
    """An attempt failed and the message is still queued: the task retries it."""


def require_mail(settings: Settings) -> None:
    """Refuse work that depends on mail when no SMTP server is configured."""
    if not settings.smtp_host:
        raise StorageUnavailable("outgoing mail is not configured: set EVIDENCE_SMTP_HOST "
                                 "(and EVIDENCE_SMTP_PORT, EVIDENCE_SMTP_FROM)",
                                 code="mail_unavailable")


def queue_mail(session: Session, settings: Settings, *, to: str, subject: str, body: str,
               account_id: str | None = None) -> OutboundMail:
    """Store a sealed message and send it from a worker once the transaction commits."""
    require_mail(settings)
    mail = OutboundMail(account_id=account_id, to_address=to, subject=subject,
                        body_sealed=vault(settings).seal({"body": body}),
                        status=MailStatus.QUEUED, attempts=0)
    session.add(mail)
    session.flush()
    queue_task(session, TaskKind.MAIL, mail.id)
    enqueue_after_commit(session, task_job(TaskKind.MAIL, mail.id))
    return mail


def compose(settings: Settings, mail: OutboundMail, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # The same on every attempt, so a message sent twice (see above) can be told apart.
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{mail.id}@{domain}>"
    message.set_content(body)
    return message


def _deliver(settings: Settings, message: EmailMessage) -> None:
    host = settings.smtp_host or ""
    with smtplib.SMTP(host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user and settings.smtp_password is not None:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


@dataclass(frozen=True)
class MailAttempt:
    """What one `send_mail` did: the mail's status, and when to try again if it is queued."""

    status: MailStatus
    retry_in: float | None = None
    """Seconds until the next attempt, which the caller must send (None: nothing to retry)."""


def send_mail(factory: sessionmaker[Session], settings: Settings, mail_id: str, *,
              worker: str | None = None) -> MailAttempt:
    """Try to send one queued message under its lease; a sent row is left alone. A failed
    attempt leaves it queued with a retry due (backing off), `failed` after MAX_ATTEMPTS."""
    worker = worker or worker_id()
    error: str | None = None
    message: EmailMessage | None = None
    with factory() as session, session.begin():
        mail = session.get(OutboundMail, mail_id)
        if mail is None:
            return MailAttempt(MailStatus.FAILED)
        if mail.status is not MailStatus.QUEUED or mail.body_sealed is None:
            drop_task(session, TaskKind.MAIL, mail_id)
            return MailAttempt(mail.status)
        held = claim_task(session, TaskKind.MAIL, mail_id, worker, settings)
        if held is None:  # another worker is sending it right now
            return MailAttempt(mail.status)
        mail.attempts += 1  # counted before the SMTP call, so a kill mid-send counts too
        try:
            require_mail(settings)
            message = compose(settings, mail, str(vault(settings).open(mail.body_sealed)["body"]))
        except StorageUnavailable as exc:
            error = f"{type(exc).__name__}: {exc}"
    with Lease(factory, held, worker, settings.heartbeat_seconds, TaskLease) as lease:
        if message is not None:
            try:
                _deliver(settings, message)
            except (OSError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
    with factory() as session, session.begin():
        owned = lease.renew(session)
        mail = session.get_one(OutboundMail, mail_id, with_for_update=True)
        if error is None:  # sent is a fact: recorded even by a worker that lost the lease
            if mail.status is not MailStatus.SENT:
                mail.status, mail.sent_at = MailStatus.SENT, datetime.now(UTC)
                mail.body_sealed, mail.last_error = None, None
            drop_task(session, TaskKind.MAIL, mail_id)
            log.info("mail %s sent to the SMTP server", mail_id)
            return MailAttempt(mail.status)
        if not owned:  # a replacement holds it now and makes its own attempt
            return MailAttempt(mail.status)
        mail.last_error = error[:500]
        log.warning("mail %s (attempt %d) was not sent: %s", mail_id, mail.attempts,
                    mail.last_error)
        if mail.attempts >= MAX_ATTEMPTS:
            mail.status = MailStatus.FAILED
            end_task(session, lease)
            return MailAttempt(mail.status)
        retry_in = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (mail.attempts - 1))
        requeue_task(session, lease, retry_in)
        return MailAttempt(mail.status, retry_in)


def give_up_mail(session: Session, mail_id: str, attempts: int) -> None:
    """The workers sending the mail kept dying: fail it, saying so (the reaper calls this
    after EVIDENCE_MAX_RUN_ATTEMPTS)."""
    mail = session.get(OutboundMail, mail_id, with_for_update=True)
    if mail is not None and mail.status is MailStatus.QUEUED:
        mail.status = MailStatus.FAILED
        mail.last_error = (f"the worker sending this mail stopped answering {attempts} times; "
                           "the SMTP server may or may not have received it")
