"""The connector registry: every connector installed under the entry point group."""

from __future__ import annotations

from functools import lru_cache

from connectors.base import Connector, load_connectors
from engine.errors import NotFound


@lru_cache(maxsize=1)
def connectors() -> dict[str, type[Connector]]:
    """All registered connectors by id, loaded and validated once per process."""
    return load_connectors()


def get_connector(integration_id: str) -> type[Connector]:
    try:
        return connectors()[integration_id]
    except KeyError:
        raise NotFound(f"unknown integration {integration_id!r}; GET /api/v1/integrations "
                       "lists the available ones", code="unknown_integration") from None


def register(cls: type[Connector]) -> None:
    """Add a connector in-process (tests, embedding); installed ones use the entry point."""
    existing = connectors().get(cls.id)
    if existing is not None and existing is not cls:
        raise TypeError(f"two connectors claim the id {cls.id}")
    connectors()[cls.id] = cls
    _forget_catalog()


def unregister(connector_id: str) -> None:
    connectors().pop(connector_id, None)
    _forget_catalog()


def _forget_catalog() -> None:
    from engine.frameworks import catalog

    catalog.cache_clear()
