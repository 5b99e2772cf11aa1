"""The web console's sign-in: single-use login links and the server-side sessions they open.

Only SHA-256 digests of the secrets are stored: a login link's token, and a session's id (the
cookie's value), so a copy of the database opens no console.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import Base, new_id

TS = DateTime(timezone=True)


class ConsoleLoginLink(Base):
    """A sign-in link for one account: works once, until it expires."""

    __tablename__ = "console_login_link"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("cll"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)


class ConsoleSession(Base):
    """A signed-in browser: ends on sign-out, when idle too long, or at its absolute expiry."""

    __tablename__ = "console_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the session cookie's value."""
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    login_link_id: Mapped[str | None] = mapped_column(ForeignKey("console_login_link.id"))
    created_at: Mapped[datetime] = mapped_column(TS)
    last_seen_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    ended_at: Mapped[datetime | None] = mapped_column(TS)
