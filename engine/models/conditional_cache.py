"""Stored answers of conditional requests, per connection (the engine's ConditionalCache).

A provider that sends If-None-Match (GitHub) keeps the last answer to each GET that carried an
ETag; these rows let a worker process that never saw the connection replay a 304 as that answer.
Bounded in bytes per connection (engine.conditional_cache) and deleted with the connection, or
when it is disconnected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import Base


class ConditionalCacheEntry(Base):
    """One request's last ETagged answer for one connection."""

    __tablename__ = "conditional_cache"

    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(Text, primary_key=True)
    """The request key: the API URL and the representation asked for."""
    scope: Mapped[str] = mapped_column(String(64))
    """A digest of whose answer it is (API URL, organization, token; never the token)."""
    etag: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    """len(body): what the per-connection bound counts."""
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
