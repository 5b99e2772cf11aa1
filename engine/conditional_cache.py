"""The engine's ConditionalCache: a connection's stored answers to conditional requests in
Postgres (table conditional_cache), so a worker process that never synced the connection still
sends If-None-Match (connectors.conditional, connectors.github.etags).

Each call works in its own short transaction, outside the run's: a cache is only an economy, so
it never holds the run's locks and a failure only costs full reads next time. A connection keeps
one scope (whose answers they are) and at most `max_bytes` of bodies, least recently stored
dropped first; disconnecting deletes them (engine.connections), as does deleting the connection.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import StoredAnswer
from engine.models.conditional_cache import ConditionalCacheEntry

MAX_BYTES = 16 * 1024 * 1024
"""Bodies kept per connection (a GitHub worker keeps as much in memory)."""

_PRUNE = text("""
DELETE FROM conditional_cache c
USING (SELECT url, sum(size) OVER (ORDER BY stored_at DESC, url) AS kept
       FROM conditional_cache WHERE connection_id = :connection_id) ranked
WHERE c.connection_id = :connection_id AND c.url = ranked.url AND ranked.kept > :max_bytes
""")


class PostgresConditionalCache:
    """One connection's stored answers (the SDK's ConditionalCache protocol)."""

    def __init__(self, factory: sessionmaker[Session], connection_id: str,
                 max_bytes: int = MAX_BYTES) -> None:
        self.factory = factory
        self.connection_id = connection_id
        self.max_bytes = max_bytes

    def load(self, scope: str) -> dict[str, StoredAnswer]:
        """The scope's answers, most recently stored first."""
        with self.factory() as session:
            rows = session.execute(
                select(ConditionalCacheEntry.url, ConditionalCacheEntry.etag,
                       ConditionalCacheEntry.headers, ConditionalCacheEntry.body)
                .where(ConditionalCacheEntry.connection_id == self.connection_id,
                       ConditionalCacheEntry.scope == scope)
                .order_by(ConditionalCacheEntry.stored_at.desc(), ConditionalCacheEntry.url))
            return {r.url: StoredAnswer(r.etag, dict(r.headers), bytes(r.body)) for r in rows}

    def save(self, scope: str, changed: Mapping[str, StoredAnswer],
             dropped: Collection[str]) -> None:
        """Upsert the changed answers (one statement), delete the dropped ones and any other
        scope's, then keep the newest `max_bytes`."""
        now = datetime.now(UTC)
        with self.factory() as session, session.begin():
            session.execute(delete(ConditionalCacheEntry).where(
                ConditionalCacheEntry.connection_id == self.connection_id,
                ConditionalCacheEntry.scope != scope))
            if dropped:
                session.execute(delete(ConditionalCacheEntry).where(
                    ConditionalCacheEntry.connection_id == self.connection_id,
                    ConditionalCacheEntry.url.in_(list(dropped))))
            if changed:
                stmt = insert(ConditionalCacheEntry).values([
                    {"connection_id": self.connection_id, "url": url, "scope": scope,
                     "etag": a.etag, "headers": dict(a.headers), "body": a.body,
                     "size": len(a.body), "stored_at": now}
                    for url, a in sorted(changed.items())])  # one lock order for every part
                session.execute(stmt.on_conflict_do_update(
                    index_elements=[ConditionalCacheEntry.connection_id,
                                    ConditionalCacheEntry.url],
                    set_={"scope": stmt.excluded.scope, "etag": stmt.excluded.etag,
                          "headers": stmt.excluded.headers, "body": stmt.excluded.body,
                          "size": stmt.excluded.size, "stored_at": stmt.excluded.stored_at}))
            session.execute(_PRUNE, {"connection_id": self.connection_id,
                                     "max_bytes": self.max_bytes})


def forget_conditional_cache(session: Session, connection_id: str) -> None:
    """Delete a connection's stored answers (at disconnect: they were read with credentials
    that are gone)."""
    session.execute(delete(ConditionalCacheEntry).where(
        ConditionalCacheEntry.connection_id == connection_id))
