"""Outgoing mail: queue a message in the database, send it from the `mail.send` task over SMTP.

The body is sealed with the vault while it waits (it may carry a magic link) and erased once the
SMTP server has taken the message, so a link exists in clear only in the recipient's mailbox.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db import Job, enqueue_after_commit
from engine.errors import StorageUnavailable
from engine.models.audit import MailStatus, OutboundMail
from engine.settings import Settings
from engine.vault import vault

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 20.0
MAX_ATTEMPTS = 6


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
    enqueue_after_commit(session, Job("mail.send", (mail.id,)))
    return mail


def compose(settings: Settings, mail: OutboundMail, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=mail.id)
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


def send_mail(session: Session, settings: Settings, mail_id: str) -> MailStatus:
    """Try to send one queued message; a sent row is left alone. Answers `queued` when the
    attempt failed and may be retried, `failed` after MAX_ATTEMPTS failed attempts."""
    mail = session.scalars(select(OutboundMail).where(OutboundMail.id == mail_id)
                           .with_for_update()).first()
    if mail is None:
        return MailStatus.FAILED
    if mail.status is not MailStatus.QUEUED or mail.body_sealed is None:
        return mail.status
    mail.attempts += 1
    try:
        require_mail(settings)
        body = str(vault(settings).open(mail.body_sealed)["body"])
        _deliver(settings, compose(settings, mail, body))
    except (OSError, smtplib.SMTPException, StorageUnavailable) as exc:
        mail.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("mail %s (attempt %d) was not sent: %s", mail.id, mail.attempts,
                    mail.last_error)
        if mail.attempts >= MAX_ATTEMPTS:
            mail.status = MailStatus.FAILED
        return mail.status
    mail.status, mail.sent_at, mail.body_sealed = MailStatus.SENT, datetime.now(UTC), None
    mail.last_error = None
    log.info("mail %s sent to the SMTP server", mail.id)
    return mail.status
