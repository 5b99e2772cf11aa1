"""Accounts: rows created on first use (an account is named by its tokens, not signed up)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from engine.models import Account


def ensure_account(session: Session, account_id: str) -> None:
    """Accounts come from tokens; the first request of an account creates its row."""
    session.execute(insert(Account).values(id=account_id).on_conflict_do_nothing())
