"""Custom integrations, configuration parameters and OAuth authorization states.

Every row carries account_id. A configuration parameter belongs to exactly one owner: a
connection (a catalog integration the account connected) or a custom integration. Secret
values live only in `value_encrypted` (the vault), never in `value`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import Base, Frequency

TS = DateTime(timezone=True)


class IntegrationType(StrEnum):
    COLLECTOR = "COLLECTOR"
    FORWARDER = "FORWARDER"
    SCANNER = "SCANNER"
    CLOUD = "CLOUD"
    WEBHOOK = "WEBHOOK"
    API = "API"


def _enum(cls: type[StrEnum], name: str, *, create: bool = True) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e],
                validate_strings=True, create_type=create)


class CustomIntegration(Base):
    """An integration the account declares itself (a collector, forwarder, webhook…)."""

    __tablename__ = "custom_integration"
    __table_args__ = (UniqueConstraint("account_id", "short_name",
                                       name="uq_custom_integration_short_name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    integration_type: Mapped[IntegrationType] = mapped_column(
        _enum(IntegrationType, "integration_type"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    needs_restart: Mapped[bool] = mapped_column(Boolean, default=False)
    config_changed_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())


class ConfigParameter(Base):
    """One named setting of a connection or of a custom integration."""

    __tablename__ = "config_parameter"
    __table_args__ = (
        CheckConstraint("(connection_id IS NULL) <> (custom_integration_id IS NULL)",
                        name="ck_config_parameter_one_owner"),
        CheckConstraint("(is_secret AND value IS NULL) OR "
                        "(NOT is_secret AND value_encrypted IS NULL)",
                        name="ck_config_parameter_secret_sealed"),
        Index("uq_config_parameter_connection_name", "connection_id", "name", unique=True,
              postgresql_where=text("connection_id IS NOT NULL")),
        Index("uq_config_parameter_custom_name", "custom_integration_id", "name", unique=True,
              postgresql_where=text("custom_integration_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"))
    custom_integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("custom_integration.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(Text)
    value_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    description: Mapped[str | None] = mapped_column(Text)
    is_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())


class OAuthState(Base):
    """One issued OAuth `state`: its nonce (hashed), PKCE verifier (sealed) and binding.

    Consumed at most once (`consumed_at`), and only before `expires_at`.
    """

    __tablename__ = "oauth_state"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    integration_id: Mapped[str] = mapped_column(String(64))
    code_verifier_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    redirect_uri: Mapped[str] = mapped_column(Text)
    sync_frequency: Mapped[Frequency] = mapped_column(
        _enum(Frequency, "sync_frequency", create=False))
    expires_at: Mapped[datetime] = mapped_column(TS)
    consumed_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
