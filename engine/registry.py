"""The connector registry: every connector installed under the entry point group."""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module

from connectors.base import Connector, load_connectors
from engine.errors import NotFound
from engine.settings import get_settings


@lru_cache(maxsize=1)
def connectors() -> dict[str, type[Connector]]:
    """All registered connectors by id, loaded and validated once per process."""
    found = load_connectors()
    for cls in _extra_connectors(get_settings().extra_connectors):
        if found.get(cls.id, cls) is not cls:
            raise TypeError(f"two connectors claim the id {cls.id}")
        found[cls.id] = cls
    return found


def _extra_connectors(spec: str) -> list[type[Connector]]:
    """Connectors named as `module:Class,...` (EVIDENCE_EXTRA_CONNECTORS), e.g. for a test
    connector a worker subprocess must load without an installed entry point."""
    loaded = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        module, _, name = item.partition(":")
        cls = getattr(import_module(module), name, None) if name else None
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"EVIDENCE_EXTRA_CONNECTORS: {item!r} is not module:ConnectorClass")
        loaded.append(cls)
    return loaded


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


def unregister(connector_id: str) -> None:
    connectors().pop(connector_id, None)
