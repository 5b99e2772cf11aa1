"""Conditional requests: re-reading an unchanged GitHub resource costs no rate limit.

GitHub answers a GET that carries the ETag of its last answer (`If-None-Match`) with 304 Not
Modified when nothing changed, and a 304 made with an Authorization header does not count
against the primary rate limit. PyGithub sends If-None-Match only from `GithubObject.update()`
on an object it still holds, so a sync, which builds new objects, never would: the session's
connections do it for every GET instead. Each connection (API URL, organization and token) has
an `EtagCache` of its last 200 answers that carried an ETag; a 304 is handed to PyGithub as
that 200, with the fresh answer's headers (rate limit, Link) over the stored ones.

The caches live in the worker process (`etag_cache`), bounded in bytes, so an unchanged
re-sync on the same worker costs a fraction of its budget. Between processes they live in the
connection's `ConditionalCache` (connectors.conditional; the engine's is a Postgres table): a
session whose worker holds nothing for the connection loads it, and at the end of a run the
answers that changed are saved and the evicted ones dropped (`take_changes`), so an unchanged
re-sync in a new worker still sends If-None-Match and writes nothing. `dump()` and `load()` give
a plain-JSON form as well.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import requests
from github.Requester import RequestsResponse
from requests.structures import CaseInsensitiveDict

from connectors.base import StoredAnswer

MAX_BYTES = 16 * 1024 * 1024  # one connection's stored answers (16 connections: 256 MiB at most)
MAX_BODY = 1024 * 1024  # larger answers are not stored
MAX_CONNECTIONS = 16  # connections whose caches a worker keeps (least recently used go)
_NOT_STORED = ("content-length", "content-encoding", "transfer-encoding", "connection", "date")


Stored = StoredAnswer
"""A 200 answer with its ETag: what a 304 to the same request stands for."""


class EtagCache:
    """Request key -> the last 200 answer that carried an ETag, least recently used first out,
    bounded in bytes; counts conditional requests and 304s. Thread-safe."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Stored] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._changed: set[str] = set()  # stored since the last take_changes()
        self._dropped: set[str] = set()  # evicted since then
        self.conditional = 0  # GETs sent with If-None-Match
        self.not_modified = 0  # of those, answered 304

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Stored | None:
        with self._lock:
            stored = self._entries.get(key)
            if stored is not None:
                self._entries.move_to_end(key)
            return stored

    def put(self, key: str, stored: Stored, *, changed: bool = True) -> None:
        """Keep an answer (`changed`: one to save at the end of the run, not one loaded)."""
        if len(stored.body) > MAX_BODY:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[key] = stored
            self._bytes += len(stored.body)
            if changed and old != stored:
                self._changed.add(key)
                self._dropped.discard(key)
            while self._bytes > self.max_bytes and self._entries:
                gone, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)
                self._changed.discard(gone)
                self._dropped.add(gone)

    def preload(self, stored: Mapping[str, Stored]) -> None:
        """Answers from the connection's store, most recently stored first (not changes)."""
        for key, answer in reversed(list(stored.items())):
            self.put(key, answer, changed=False)

    def take_changes(self) -> tuple[dict[str, Stored], set[str]]:
        """The answers stored and the keys evicted since the last call (then forgotten)."""
        with self._lock:
            changed = {k: self._entries[k] for k in self._changed if k in self._entries}
            dropped = set(self._dropped)
            self._changed.clear()
            self._dropped.clear()
            return changed, dropped

    def settle(self, key: str, sent: Stored | None, response: RequestsResponse) -> RequestsResponse:
        """The answer PyGithub sees: a 304 becomes the stored 200; a 200 with an ETag is kept."""
        with self._lock:
            if sent is not None:
                self.conditional += 1
                if response.status == 304:
                    self.not_modified += 1
        if response.status == 304 and sent is not None:
            return _replayed(sent, response)
        etag = response.headers.get("ETag")
        if response.status == 200 and etag:
            self.put(key, Stored(etag, {k: v for k, v in response.headers.items()
                                        if k.lower() not in _NOT_STORED},
                                 response.response.content))
        return response

    def dump(self) -> dict[str, Any]:
        """The stored answers as plain JSON (for the SDK to persist between processes)."""
        with self._lock:
            return {key: {"etag": s.etag, "headers": s.headers,
                          "body": base64.b64encode(s.body).decode()}
                    for key, s in self._entries.items()}

    def load(self, dumped: dict[str, Any]) -> None:
        """Answers from `dump()`; malformed entries are skipped (a cache is only an economy)."""
        for key, entry in dumped.items():
            try:
                self.put(str(key), Stored(str(entry["etag"]), dict(entry["headers"]),
                                          base64.b64decode(entry["body"])), changed=False)
            except (KeyError, TypeError, ValueError):
                continue


def _replayed(stored: Stored, fresh: RequestsResponse) -> RequestsResponse:
    answer = requests.Response()
    answer.status_code = 200
    answer._content = stored.body  # noqa: SLF001 - requests' own way to set a body
    answer.headers = CaseInsensitiveDict({**stored.headers, **{
        k: v for k, v in fresh.headers.items() if k.lower() not in _NOT_STORED}})
    answer.encoding = "utf-8"
    answer.url = fresh.response.url
    answer.request = fresh.response.request
    return RequestsResponse(answer)


def request_key(url: str, headers: dict[str, str]) -> str:
    """What identifies a stored answer: the URL and the representation asked for."""
    accept = next((v for k, v in headers.items() if k.lower() == "accept"), "")
    return f"{url} {accept}"


_CACHES: OrderedDict[str, EtagCache] = OrderedDict()
_CACHES_LOCK = threading.Lock()


def cache_scope(api_url: str, organization: str, token: str) -> str:
    """Whose answers these are: a digest of the API URL, organization and token (never the
    token), so an answer is only ever replayed to the credentials that were shown it."""
    return hashlib.sha256(f"{api_url}\0{organization.lower()}\0{token}".encode()).hexdigest()


def etag_cache(api_url: str, organization: str, token: str) -> EtagCache:
    """This worker's cache for one connection, keyed by its `cache_scope`."""
    key = cache_scope(api_url, organization, token)
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = EtagCache()
        _CACHES.move_to_end(key)
        while len(_CACHES) > MAX_CONNECTIONS:
            _CACHES.popitem(last=False)
        return cache


def forget_etag_caches() -> None:
    """Drop every connection's stored answers in this worker (tests; a rotated deployment)."""
    with _CACHES_LOCK:
        _CACHES.clear()
