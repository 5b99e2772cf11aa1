"""`evidence keys rotate`: re-encrypt every stored secret with the newest key, so old keys retire.

EVIDENCE_ENCRYPTION_KEYS lists keys newest first; the vault encrypts with the first and
decrypts with any. Rotation walks each sealed column in primary-key order, in batches of one
transaction each, and re-seals only the values the newest key cannot open. So it can be
interrupted at any point and run again: what is done stays done, and rows another transaction
holds locked are skipped and reported, not waited on. Once the report says nothing remains
under older keys, the old key can be removed from the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from engine.models import ConfigParameter, Connection, OAuthState
from engine.models.audit import OutboundMail
from engine.models.ledger import LedgerSigningKey


@dataclass(frozen=True)
class SealedColumn:
    """One column that holds vault-sealed values, and the primary key that orders a walk."""

    label: str
    key: InstrumentedAttribute[Any]
    value: InstrumentedAttribute[Any]

    @property
    def model(self) -> type[Any]:
        return self.key.parent.class_


# Every column the vault writes: credentials (OAuth tokens included), secret parameters, the
# PKCE verifiers of pending OAuth states, the bodies of mail still waiting to be sent, and the
# ledger's generated signing key (when EVIDENCE_LEDGER_SIGNING_KEY is not set).
SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn("connection credentials", Connection.id, Connection.credentials_encrypted),
    SealedColumn("secret parameters", ConfigParameter.id, ConfigParameter.value_encrypted),
    SealedColumn("OAuth states", OAuthState.nonce_hash, OAuthState.code_verifier_encrypted),
    SealedColumn("queued mail", OutboundMail.id, OutboundMail.body_sealed),
    SealedColumn("ledger signing key", LedgerSigningKey.id, LedgerSigningKey.sealed),
)


class KeyRing:
    """The configured keys, newest first: which key opens a value, and re-sealing with the first."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("no encryption keys configured")
        self._each = [Fernet(k) for k in keys]
        self._all = MultiFernet(self._each)

    def key_index(self, token: bytes) -> int | None:
        """0 for the newest key, n for the (n+1)th, None when no configured key opens it."""
        for index, fernet in enumerate(self._each):
            try:
                fernet.decrypt(token)
            except InvalidToken:
                continue
            return index
        return None

    def reseal(self, token: bytes) -> bytes:
        return self._all.rotate(token)


@dataclass
class ColumnReport:
    """What one sealed column holds, by key: `by_key[0]` under the newest."""

    label: str
    rotated: int = 0
    by_key: dict[int, int] = field(default_factory=dict)
    unreadable: int = 0

    @property
    def under_older_keys(self) -> int:
        return sum(n for index, n in self.by_key.items() if index > 0)


def rotate(factory: sessionmaker[Session], ring: KeyRing, *, batch_size: int = 500,
           after_batch: Callable[[str, int], None] | None = None) -> list[ColumnReport]:
    """Re-seal, with the newest key, every stored value an older key sealed; one commit a batch.

    `after_batch(label, rotated_in_batch)` runs after each committed batch (progress, tests).
    Returns how many values each column had re-sealed; `status` says what remains.
    """
    reports = []
    for column in SEALED_COLUMNS:
        report = ColumnReport(column.label)
        last: Any = None
        while True:
            with factory() as session, session.begin():
                rows = _batch(session, column, last, batch_size)
                if not rows:
                    break
                changes = [{column.key.key: pk, column.value.key: ring.reseal(bytes(token))}
                           for pk, token in rows if ring.key_index(bytes(token)) not in (0, None)]
                if changes:
                    session.execute(update(column.model), changes)
                last = rows[-1][0]
            report.rotated += len(changes)
            if after_batch is not None:
                after_batch(column.label, len(changes))
        reports.append(report)
    return reports


def _batch(session: Session, column: SealedColumn, after: Any,
           size: int) -> Sequence[Any]:
    stmt = select(column.key, column.value).where(column.value.is_not(None))
    if after is not None:
        stmt = stmt.where(column.key > after)
    # Rows held by a running transaction are skipped (reported by `status`, done on a rerun).
    stmt = stmt.order_by(column.key).limit(size).with_for_update(skip_locked=True,
                                                                  of=column.model)
    return session.execute(stmt).tuples().all()


def status(factory: sessionmaker[Session], ring: KeyRing, *,
           batch_size: int = 2000) -> list[ColumnReport]:
    """How many stored values each configured key seals, per column, and how many none opens."""
    reports = []
    for column in SEALED_COLUMNS:
        report = ColumnReport(column.label)
        last: Any = None
        with factory() as session:
            while True:
                stmt = select(column.key, column.value).where(column.value.is_not(None))
                if last is not None:
                    stmt = stmt.where(column.key > last)
                rows = session.execute(stmt.order_by(column.key).limit(batch_size)).all()
                if not rows:
                    break
                for _, token in rows:
                    index = ring.key_index(bytes(token))
                    if index is None:
                        report.unreadable += 1
                    else:
                        report.by_key[index] = report.by_key.get(index, 0) + 1
                last = rows[-1][0]
        reports.append(report)
    return reports


def merge(rotated: list[ColumnReport], found: list[ColumnReport]) -> list[ColumnReport]:
    """The counts of `status` with the `rotated` figures of a rotation, column by column."""
    for done, now in zip(rotated, found, strict=True):
        now.rotated = done.rotated
    return found
