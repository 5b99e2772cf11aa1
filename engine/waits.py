"""Bounded waits: a request that waits for a run (`?wait=`) holds an API thread while it waits.

So waits are rationed. One account holds at most `per_account` waits at once over every API
process (a Redis sorted set of holders, each scored by the time it expires, so a process that
dies mid-wait frees its slot when that wait would have ended), and one process lends at most
`per_process` of its threads to waiting (the rest always serve). A request that gets no slot
does not wait: it answers at once with the run to poll.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError

from engine.settings import Settings

log = logging.getLogger(__name__)

# KEYS[1]: the account's holders. ARGV: holder, seconds it may hold, cap.
# Redis's own clock scores the holders, so API hosts' clocks need not agree.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
local ttl = math.ceil(tonumber(ARGV[2]) * 1000)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


def redis_client(url: str) -> Redis:
    """A client for REDIS_URL; the embedded Redis's `redis+socket://` is a unix socket."""
    for scheme in ("redis+socket://", "redis+unix://"):
        if url.startswith(scheme):
            url = "unix://" + url[len(scheme):]
    return Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


@dataclass
class WaitSlots:
    """Who may wait now: at most `per_account` per account (Redis) and `per_process` here."""

    redis: Redis
    key_prefix: str
    per_account: int
    per_process: int
    max_seconds: float
    margin_seconds: float = 30.0
    """How long past its wait a holder that never released (a killed process) still counts."""
    _process: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._process = threading.BoundedSemaphore(max(1, self.per_process))

    def _key(self, account_id: str) -> str:
        return f"{self.key_prefix}waits:{account_id}"

    @contextmanager
    def hold(self, account_id: str, seconds: float) -> Iterator[float]:
        """Yield the seconds this request may wait (capped), or 0.0 when it may not wait now;
        the slot is given back when the block ends, however it ends."""
        seconds = min(seconds, self.max_seconds)
        if seconds <= 0 or self.per_account <= 0 or self.per_process <= 0:
            yield 0.0
            return
        if not self._process.acquire(blocking=False):
            yield 0.0
            return
        try:
            holder = self._acquire(account_id, seconds)
            try:
                yield seconds if holder else 0.0
            finally:
                if holder:
                    self._release(account_id, holder)
        finally:
            self._process.release()

    def count(self, account_id: str) -> int:
        """How many waits the account holds now (expired holders are not counted)."""
        return int(self.redis.eval(_COUNT, 1, self._key(account_id)))  # type: ignore[arg-type]

    def _acquire(self, account_id: str, seconds: float) -> str | None:
        holder = uuid.uuid4().hex
        try:
            granted = self.redis.eval(_ACQUIRE, 1, self._key(account_id), holder,  # type: ignore[arg-type]
                                      str(seconds + self.margin_seconds), str(self.per_account))
        except RedisError:
            log.warning("Redis is unreachable: a wait is refused (answered at once)",
                        exc_info=True)
            return None
        return holder if granted else None

    def _release(self, account_id: str, holder: str) -> None:
        try:
            self.redis.zrem(self._key(account_id), holder)
        except RedisError:
            log.warning("Redis is unreachable: a wait slot is left to expire", exc_info=True)


def wait_slots(settings: Settings) -> WaitSlots:
    """The wait slots of one API process, on the engine's Redis and key prefix."""
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set and no embedded Redis was started")
    return WaitSlots(redis_client(settings.redis_url), settings.redis_key_prefix,
                     per_account=settings.sync_wait_per_account,
                     per_process=settings.waiters_per_process,
                     max_seconds=settings.sync_wait_max_seconds)
