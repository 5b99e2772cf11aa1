"""Conditional requests remembered between processes: the SDK's side of a per-connection store.

A provider whose API honours ETags (GitHub) keeps the last answer to each GET that carried one,
so the next request sends If-None-Match and an unchanged resource costs no rate limit. Within a
worker process the provider keeps them in memory; across processes it asks a `ConditionalCache`,
which the engine supplies per connection (a Postgres table) when it opens the connector. The SDK
only defines the shape, so it imports nothing of the engine.

`scope` names whose answers these are (a digest of the API URL, organization and token, never
the token): an answer is only replayed to the credentials that were shown it, so a store keeps
one scope per connection and forgets the others when a new one saves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["ConditionalCache", "StoredAnswer"]


@dataclass(frozen=True)
class StoredAnswer:
    """A 200 answer with its ETag: what a 304 to the same request stands for."""

    etag: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@runtime_checkable
class ConditionalCache(Protocol):
    """One connection's stored answers, by request key (URL and representation)."""

    def load(self, scope: str) -> Mapping[str, StoredAnswer]:
        """The stored answers of `scope` (most recently stored first); empty when none."""
        ...

    def save(self, scope: str, changed: Mapping[str, StoredAnswer],
             dropped: Collection[str]) -> None:
        """Store new and changed answers and forget dropped ones; one call per run."""
        ...
