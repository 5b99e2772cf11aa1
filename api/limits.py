"""Fair use of the API: request rate limits per account, and rationed waits.

Rate limits (Flask-Limiter, counted in the engine's Redis under EVIDENCE_REDIS_KEY_PREFIX) are
keyed by the account a request speaks for, whether it sends the account's JWT, one of its API
keys or an auditor token of one of its audits; a request without a token that verifies is
keyed by its address. Every endpoint but the probes and /metrics shares one budget per account
(EVIDENCE_RATE_LIMIT); the unauthenticated sign-in endpoints also have a stricter budget per
address (EVIDENCE_AUTH_RATE_LIMIT). Over a limit the answer is 429 in the one error shape with
`Retry-After`. If Redis cannot be reached the limiter lets requests through (it fails open and
logs) rather than taking the API down with it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter, RequestLimit

from api.auth import principal, settings
from api.errors import error_body
from engine.apikeys import KEY_PREFIX, authenticate_key
from engine.auditor_tokens import verify_auditor_token
from engine.db import session_factory, unit_of_work
from engine.errors import EngineError
from engine.settings import Settings
from engine.tokens import verify
from engine.waits import WaitSlots, wait_slots

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SIGN_IN_ENDPOINTS = ("auditor.accept_invitation", "auditor_portal.accept",
                     "oauth_callback.oauth_callback", "console.sign_in_with_link",
                     "console.sign_in_with_idp", "console.oidc_callback")
IDENTITY_TTL_SECONDS = 60.0
"""How long a token's account is remembered for keying its limits (not for authenticating:
every request is still authenticated in full, so a revoked key is refused at once)."""
IDENTITY_CACHE_SIZE = 10_000


class _Identities:
    """Token digest → rate-limit key, for a minute: an API key or an auditor token costs a
    database read to resolve, which the limiter should not add to every request."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> str | None:
        with self._lock:
            hit = self._known.get(digest)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def put(self, digest: str, identity: str) -> None:
        with self._lock:
            if len(self._known) >= IDENTITY_CACHE_SIZE:
                self._known.clear()
            self._known[digest] = (time.monotonic() + IDENTITY_TTL_SECONDS, identity)


_identities = _Identities()


def client_address() -> str:
    return f"addr:{request.remote_addr or 'unknown'}"


def _account_of(token: str, config: Settings) -> str:
    """The account `token` speaks for; an EngineError (401) when it speaks for none."""
    if token.startswith(KEY_PREFIX):
        with unit_of_work(config) as session:
            return authenticate_key(session, token, datetime.now(UTC)).account_id
    try:
        return verify(config, token).account_id
    except EngineError:
        with session_factory(config)() as session:
            return verify_auditor_token(config, session, token).account_id


def rate_limit_key() -> str:
    """`account:<id>` for a request whose bearer token verifies, else `addr:<address>`."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return client_address()
    digest = hashlib.sha256(token.encode()).hexdigest()
    identity = _identities.get(digest)
    if identity is None:
        try:
            identity = f"account:{_account_of(token, settings())}"
        except EngineError:
            return client_address()  # the view answers 401; its caller is counted by address
        _identities.put(digest, identity)
    return identity


def is_unlimited() -> bool:
    return request.path in UNLIMITED_PATHS


def too_many_requests(limit: RequestLimit) -> Response:
    retry = max(1, math.ceil(limit.window.reset_time - time.time()))
    response = jsonify(error_body(
        "rate_limited", f"too many requests (at most {limit.limit}); retry in {retry} s",
        retryAfter=retry))
    response.status_code = 429
    response.headers["Retry-After"] = str(retry)
    return response


def storage_uri(redis_url: str) -> str:
    """REDIS_URL as the `limits` package names it (the embedded Redis is a unix socket)."""
    for scheme in ("redis+socket://", "unix://"):
        if redis_url.startswith(scheme):
            return "redis+unix://" + redis_url[len(scheme):]
    return redis_url


def register_limits(app: Flask, config: Settings) -> Limiter:
    """Rate-limit every request of `app` and ration its waits (call after the blueprints)."""
    if not config.redis_url:
        raise RuntimeError("REDIS_URL is not set and no embedded Redis was started")
    limiter = Limiter(
        rate_limit_key, application_limits=[config.rate_limit], strategy="fixed-window",
        storage_uri=storage_uri(config.redis_url),
        storage_options={"key_prefix": f"{config.redis_key_prefix}limits",
                         "socket_timeout": 1, "socket_connect_timeout": 1},
        swallow_errors=True, headers_enabled=False, on_breach=too_many_requests)
    limiter.request_filter(is_unlimited)
    limiter.init_app(app)
    for endpoint in SIGN_IN_ENDPOINTS:
        if endpoint in app.view_functions:
            view = app.view_functions[endpoint]
            app.view_functions[endpoint] = limiter.limit(  # type: ignore[assignment]
                config.auth_rate_limit, key_func=client_address)(view)
    app.extensions["wait_slots"] = wait_slots(config)
    return limiter


@contextmanager
def wait_slot(seconds: float, account_id: str | None = None) -> Iterator[float]:
    """The seconds the caller's (or `account_id`'s) request may wait for a run or a connection
    (0.0: answer at once), held until the block ends; see engine.waits."""
    slots: WaitSlots = current_app.extensions["wait_slots"]
    with slots.hold(account_id or principal().account_id, seconds) as granted:
        yield granted
