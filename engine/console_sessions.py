"""Console sign-in: single-use login links (no identity provider needed) and the server-side
sessions they, or a sign-in through the identity provider (console/oidc.py), open.

`issue_login_link` makes a link whose token lives only in the URL's fragment (a browser never
sends a fragment, so it reaches no server log); the console's sign-in page posts it back, and
`redeem_login_link` consumes it with one conditional UPDATE and opens a session. The database
keeps only SHA-256 digests of the link token and of the session cookie. A session ends on
sign-out (`end_session`), after `console_idle_seconds` unused, or `console_session_seconds`
after sign-in; `resume_session` checks all three on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.connections import ensure_account
from engine.db import rowcount
from engine.errors import InvalidInput, Unauthorized
from engine.models.console import ConsoleLoginLink, ConsoleSession
from engine.settings import Settings

LOGIN_PATH = "/console/login"
MAX_ACCOUNT_ID = 64


def digest(secret: str) -> str:
    """What the database keeps of a link token or a session cookie."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class LoginLink:
    url: str
    account_id: str
    expires_at: datetime


def issue_login_link(session: Session, settings: Settings, account_id: str,
                     now: datetime) -> LoginLink:
    """A single-use sign-in link for `account_id`, valid for `console_link_seconds`."""
    account_id = account_id.strip()
    if not account_id or len(account_id) > MAX_ACCOUNT_ID or "\x00" in account_id:
        raise InvalidInput(f"an account id is 1 to {MAX_ACCOUNT_ID} characters",
                           code="invalid_account")
    ensure_account(session, account_id)
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.console_link_seconds)
    session.add(ConsoleLoginLink(account_id=account_id, token_hash=digest(token),
                                 created_at=now, expires_at=expires_at))
    session.flush()
    base = settings.public_base_url.rstrip("/")
    return LoginLink(f"{base}{LOGIN_PATH}#token={token}", account_id, expires_at)


@dataclass(frozen=True)
class StartedSession:
    cookie: str
    """The session cookie's value: given to the browser once, stored only as its digest."""
    account_id: str
    expires_at: datetime


def redeem_login_link(session: Session, settings: Settings, token: str,
                      now: datetime) -> StartedSession:
    """Consume a login link, once, and open a session; a used, expired or unknown link is
    refused (401) with a code and a message that says which."""
    token_hash = digest(token)
    link = session.scalars(
        update(ConsoleLoginLink)
        .where(ConsoleLoginLink.token_hash == token_hash, ConsoleLoginLink.used_at.is_(None),
               ConsoleLoginLink.expires_at > now)
        .values(used_at=now).returning(ConsoleLoginLink)).first()
    if link is None:
        raise _refusal(session, token_hash)
    return start_session(session, settings, link.account_id, now, login_link_id=link.id)


def start_session(session: Session, settings: Settings, account_id: str, now: datetime, *,
                  login_link_id: str | None = None) -> StartedSession:
    """Open a console session for `account_id`: after a login link, or after the identity
    provider vouched for the person (console.oidc); the same timeouts and sign-out apply."""
    ensure_account(session, account_id)
    cookie = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.console_session_seconds)
    session.add(ConsoleSession(id=digest(cookie), account_id=account_id,
                               login_link_id=login_link_id, created_at=now, last_seen_at=now,
                               expires_at=expires_at))
    session.flush()
    return StartedSession(cookie, account_id, expires_at)


def _refusal(session: Session, token_hash: str) -> Unauthorized:
    found = session.scalars(select(ConsoleLoginLink)
                            .where(ConsoleLoginLink.token_hash == token_hash)).first()
    if found is None:
        return Unauthorized("This sign-in link is not valid. Ask for a new one.",
                            code="login_link_invalid")
    if found.used_at is not None:
        return Unauthorized("This sign-in link has already been used. A link works once: "
                            "ask for a new one.", code="login_link_used")
    return Unauthorized("This sign-in link has expired. Ask for a new one.",
                        code="login_link_expired")


def resume_session(session: Session, settings: Settings, cookie: str, now: datetime) -> str:
    """The account of a live session; an ended, idle or expired session is refused (401
    `session_ended` / `session_expired` / `no_session`). Its last use is written at most once
    per `_seen_step` (a page view is a read, not a write and a WAL flush)."""
    found = session.execute(
        select(ConsoleSession.account_id, ConsoleSession.last_seen_at, ConsoleSession.ended_at,
               ConsoleSession.expires_at)
        .where(ConsoleSession.id == digest(cookie))).first()
    if found is None:
        raise Unauthorized("Sign in to continue.", code="no_session")
    account_id, last_seen_at, ended_at, expires_at = found
    if ended_at is not None:
        raise Unauthorized("You signed out. Sign in again to continue.", code="session_ended")
    if expires_at <= now or last_seen_at <= now - timedelta(
            seconds=settings.console_idle_seconds):
        raise Unauthorized("Your session has expired. Sign in again to continue.",
                           code="session_expired")
    if now - last_seen_at >= _seen_step(settings):
        session.execute(update(ConsoleSession)
                        .where(ConsoleSession.id == digest(cookie),
                               ConsoleSession.last_seen_at < now)
                        .values(last_seen_at=now))
    return str(account_id)


def _seen_step(settings: Settings) -> timedelta:
    """How stale `last_seen_at` may be: a tenth of the idle timeout, a minute at most, so a
    session in use never reaches the idle timeout for want of a write."""
    return timedelta(seconds=min(60.0, settings.console_idle_seconds / 10))


def end_session(session: Session, cookie: str, now: datetime) -> bool:
    """Sign out: end the session server-side, so its cookie opens nothing from now on."""
    return rowcount(session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == digest(cookie), ConsoleSession.ended_at.is_(None))
        .values(ended_at=now))) == 1
