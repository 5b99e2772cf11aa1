"""Alembic environment: migrations run under an advisory lock so concurrent starts are safe."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from engine.models import Base

config = context.config
target_metadata = Base.metadata
_LOCK = 72_646_471  # any constant: serialises concurrent `db upgrade`s


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with connectable.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata,
                              compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK})
            connection.commit()


run_migrations_online()
