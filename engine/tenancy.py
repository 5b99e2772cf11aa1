"""Account scoping in one place: a session scoped to an account sees only that account's rows.

`scope_to_account(session, account_id)` marks a session; from then on every ORM SELECT, UPDATE
and DELETE it runs gets `account_id = :account` added for every mapped class that has an
`account_id` column (and `id = :account` for Account itself), whatever the query says. A row
of another account is therefore indistinguishable from a missing one: a 404, never its data.
Raw SQL (`text()`) is not rewritten; the few engine queries written that way bind the account
explicitly. Inserts set account_id from `account_of(session)`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.sql.base import ExecutableOption

from engine.models import Account, Base

ACCOUNT_KEY = "tenancy.account_id"


def scope_to_account(session: Session, account_id: str) -> Session:
    """Restrict everything `session` reads or changes to `account_id`'s rows."""
    session.info[ACCOUNT_KEY] = account_id
    return session


def account_of(session: Session) -> str:
    """The account a session is scoped to (an unscoped session here is a programming error)."""
    account_id: str | None = session.info.get(ACCOUNT_KEY)
    if account_id is None:
        raise RuntimeError("this session is not scoped to an account (engine.tenancy)")
    return account_id


def scoped_sessions(factory: sessionmaker[Session], account_id: str) -> Callable[[], Session]:
    """A session opener whose every session is scoped to `account_id` (for polling loops)."""

    def open_session() -> Session:
        return scope_to_account(factory(), account_id)

    return open_session


@lru_cache(maxsize=1)
def tenant_classes() -> tuple[type[Any], ...]:
    """Every mapped class that carries an account_id column (computed once all are imported)."""
    return tuple(sorted((m.class_ for m in Base.registry.mappers
                         if "account_id" in m.columns), key=lambda c: c.__name__))


@lru_cache(maxsize=4096)
def _criteria(account_id: str) -> tuple[ExecutableOption, ...]:
    """The options that restrict a statement to one account (built once per account)."""
    options: list[ExecutableOption] = [
        with_loader_criteria(cls, lambda c: c.account_id == account_id, include_aliases=True)
        for cls in tenant_classes()]
    options.append(with_loader_criteria(Account, lambda c: c.id == account_id))
    return tuple(options)


@event.listens_for(Session, "do_orm_execute")
def _restrict_to_account(state: ORMExecuteState) -> None:
    account_id = state.session.info.get(ACCOUNT_KEY)
    if account_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    state.statement = state.statement.options(*_criteria(account_id))
