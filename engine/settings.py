"""The one settings object; nothing else in the engine reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class OAuthClient(BaseModel):
    """This deployment's OAuth app at one provider (EVIDENCE_OAUTH_CLIENTS)."""

    client_id: str
    client_secret: SecretStr
    authorize_url: str | None = Field(
        None, description="Override the connector's URL (an Okta org, GitHub Enterprise)")
    token_url: str | None = None
    revoke_url: str | None = None


class Settings(BaseSettings):
    """Configuration read from the environment (see the README's configuration table)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    data_dir: Path = Field(
        default_factory=lambda: Path.home() / ".evidence-engine",
        validation_alias="EVIDENCE_DATA_DIR",
    )
    encryption_keys: SecretStr | None = Field(None, validation_alias="EVIDENCE_ENCRYPTION_KEYS")
    jwt_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("EVIDENCE_JWT_SECRET", "JWT_SECRET")
    )
    jwt_issuer: str = Field("evidence-engine", validation_alias="EVIDENCE_JWT_ISSUER")
    jwt_audience: str = Field("evidence-engine", validation_alias="EVIDENCE_JWT_AUDIENCE")
    jwt_ttl_seconds: int = Field(12 * 3600, validation_alias="EVIDENCE_JWT_TTL_SECONDS")
    jwt_algorithm: Literal["HS256", "RS256"] = Field(
        "HS256", validation_alias="EVIDENCE_JWT_ALGORITHM",
        description="HS256 with EVIDENCE_JWT_SECRET, or RS256 with keys from EVIDENCE_JWT_JWKS_URL")
    jwt_jwks_url: str | None = Field(None, validation_alias="EVIDENCE_JWT_JWKS_URL")
    jwt_account_claim: str = Field("account", validation_alias="EVIDENCE_JWT_ACCOUNT_CLAIM",
                                   description="The token claim that names the caller's account")
    oauth_clients: dict[str, OAuthClient] = Field(
        default_factory=dict, validation_alias="EVIDENCE_OAUTH_CLIENTS",
        description='JSON: {"github": {"client_id": "...", "client_secret": "..."}}')
    oauth_redirect_url: str | None = Field(
        None, validation_alias="EVIDENCE_OAUTH_REDIRECT_URL",
        description="The callback URL registered with providers (default: "
        "EVIDENCE_PUBLIC_BASE_URL + /api/v1/integrations/callback)")
    oauth_state_secret: SecretStr | None = Field(
        None, validation_alias="EVIDENCE_OAUTH_STATE_SECRET",
        description="Signs OAuth state (default: derived from the JWT secret)")
    oauth_state_ttl_seconds: int = Field(600, ge=30, le=3600,
                                         validation_alias="EVIDENCE_OAUTH_STATE_TTL_SECONDS")
    oauth_refresh_leeway_seconds: int = Field(
        300, ge=0, validation_alias="EVIDENCE_OAUTH_REFRESH_LEEWAY_SECONDS",
        description="Refresh an OAuth access token this long before it expires")
    dashboard_url: str | None = Field(
        None, validation_alias="EVIDENCE_DASHBOARD_URL",
        description="Where the OAuth callback sends the browser after connecting; unset: the "
        "console's integrations page for a browser (Accept: text/html), JSON for other callers")

    storage_endpoint_url: str | None = Field(None, validation_alias="EVIDENCE_STORAGE_ENDPOINT_URL")
    storage_bucket: str | None = Field(None, validation_alias="EVIDENCE_STORAGE_BUCKET")
    storage_access_key_id: str | None = Field(
        None, validation_alias="EVIDENCE_STORAGE_ACCESS_KEY_ID")
    storage_secret_access_key: SecretStr | None = Field(
        None, validation_alias="EVIDENCE_STORAGE_SECRET_ACCESS_KEY"
    )
    storage_region: str = Field("us-east-1", validation_alias="EVIDENCE_STORAGE_REGION")
    storage_public_endpoint_url: str | None = Field(
        None, validation_alias="EVIDENCE_STORAGE_PUBLIC_ENDPOINT_URL",
        description="The store's address as clients reach it, for presigned URLs "
        "(default: EVIDENCE_STORAGE_ENDPOINT_URL).")
    storage_max_object_bytes: int = Field(
        100 * 1024 * 1024, gt=0, validation_alias="EVIDENCE_STORAGE_MAX_OBJECT_BYTES")
    storage_presign_seconds: int = Field(
        900, ge=1, le=7 * 24 * 3600, validation_alias="EVIDENCE_STORAGE_PRESIGN_SECONDS")
    upload_verify_window_seconds: int = Field(
        24 * 3600, ge=60, validation_alias="EVIDENCE_UPLOAD_VERIFY_WINDOW_SECONDS",
        description="An upload not verified this long after its URL was issued (and once the "
        "URL has expired) is deleted from storage and answers 410 upload_expired")

    allow_custom_endpoints: bool = Field(
        False, validation_alias="EVIDENCE_ALLOW_CUSTOM_ENDPOINTS",
        description="Let connection credentials point a provider SDK at another endpoint "
        "(emulators, S3-compatible stores). Off in production.",
    )
    api_host: str = Field("127.0.0.1", validation_alias="EVIDENCE_API_HOST")
    api_port: int = Field(8000, validation_alias="EVIDENCE_API_PORT")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, validation_alias="EVIDENCE_MAX_BODY_BYTES",
        description="The largest request body the API reads (413 body_too_large beyond it)")
    worker_concurrency: int = Field(8, validation_alias="EVIDENCE_WORKER_CONCURRENCY")
    shutdown_seconds: float = Field(
        30.0, ge=0, validation_alias="EVIDENCE_SHUTDOWN_SECONDS",
        description="On SIGTERM or SIGINT, how long `evidence up` (and api, worker, beat) waits "
        "for its processes to drain before killing them")
    beat_lock: bool = Field(
        True, validation_alias="EVIDENCE_BEAT_LOCK",
        description="Beat holds a Postgres advisory lock for its life, so a second beat on the "
        "same database refuses to start (false only to test the dispatch's own guarantee)")
    visibility_timeout: int = Field(3600, validation_alias="EVIDENCE_VISIBILITY_TIMEOUT")
    heartbeat_seconds: float = Field(15.0, validation_alias="EVIDENCE_HEARTBEAT_SECONDS")
    lease_stale_seconds: float = Field(120.0, validation_alias="EVIDENCE_LEASE_STALE_SECONDS")
    # Scheduling, reaping and worker pools (issue 5).
    dispatch_seconds: float = Field(60.0, validation_alias="EVIDENCE_DISPATCH_SECONDS")
    dispatch_batch: int = Field(1000, validation_alias="EVIDENCE_DISPATCH_BATCH")
    reap_seconds: float = Field(60.0, validation_alias="EVIDENCE_REAP_SECONDS")
    queued_stale_seconds: float = Field(900.0, validation_alias="EVIDENCE_QUEUED_STALE_SECONDS")
    max_run_attempts: int = Field(3, validation_alias="EVIDENCE_MAX_RUN_ATTEMPTS")
    history_retention_days: int = Field(400, validation_alias="EVIDENCE_HISTORY_RETENTION_DAYS")
    freshness_grace_seconds: int = Field(
        3600, ge=0, le=7 * 86400, validation_alias="EVIDENCE_FRESHNESS_GRACE_SECONDS",
        description="A verified result stays fresh for its connection's sync period plus this "
        "grace (an audit period's coverage and gaps, the coverage alerts)")
    provider_concurrency: int = Field(1, validation_alias="EVIDENCE_PROVIDER_CONCURRENCY")
    sync_parts: int = Field(
        1, ge=1, le=64, validation_alias="EVIDENCE_SYNC_PARTS",
        description="Split one run's checks into up to this many parts, each a task of its own "
        "on the sync queue, so one large sync spreads over the worker pool (1: one worker runs "
        "the whole sync, its collectors in threads).")
    slot_retry_seconds: float = Field(30.0, validation_alias="EVIDENCE_SLOT_RETRY_SECONDS")
    backoff_max_seconds: float = Field(7 * 86400.0,
                                       validation_alias="EVIDENCE_BACKOFF_MAX_SECONDS")
    worker_events: bool = Field(False, validation_alias="EVIDENCE_WORKER_EVENTS")
    worker_metrics_port: int = Field(0, validation_alias="EVIDENCE_WORKER_METRICS_PORT")
    worker_metrics_host: str = Field("127.0.0.1", validation_alias="EVIDENCE_WORKER_METRICS_HOST")
    extra_connectors: str = Field("", validation_alias="EVIDENCE_EXTRA_CONNECTORS")
    redis_key_prefix: str = Field("", validation_alias="EVIDENCE_REDIS_KEY_PREFIX")
    log_level: str = Field("INFO", validation_alias="EVIDENCE_LOG_LEVEL")

    # Audits: mail for auditor invitations, magic links and auditor sessions.
    smtp_host: str | None = Field(None, validation_alias="EVIDENCE_SMTP_HOST",
                                  description="SMTP server for outgoing mail; unset: no mail")
    smtp_port: int = Field(25, ge=1, le=65535, validation_alias="EVIDENCE_SMTP_PORT")
    smtp_user: str | None = Field(None, validation_alias="EVIDENCE_SMTP_USER")
    smtp_password: SecretStr | None = Field(None, validation_alias="EVIDENCE_SMTP_PASSWORD")
    smtp_starttls: bool = Field(False, validation_alias="EVIDENCE_SMTP_STARTTLS")
    smtp_from: str = Field("evidence-engine <no-reply@localhost>",
                           validation_alias="EVIDENCE_SMTP_FROM")
    magic_link_ttl_seconds: int = Field(7 * 24 * 3600, gt=0,
                                        validation_alias="EVIDENCE_MAGIC_LINK_TTL_SECONDS")
    auditor_session_ttl_seconds: int = Field(
        12 * 3600, gt=0, validation_alias="EVIDENCE_AUDITOR_SESSION_TTL_SECONDS")
    public_base_url: str = Field("http://127.0.0.1:8000",
                                 validation_alias="EVIDENCE_PUBLIC_BASE_URL",
                                 description="Where people reach this server (links in mail)")

    # The web console (issue 11): sign-in links and sessions.
    console_link_seconds: int = Field(
        900, ge=30, le=86400, validation_alias="EVIDENCE_CONSOLE_LINK_SECONDS",
        description="How long a console sign-in link from `evidence login-link` works (once)")
    console_idle_seconds: int = Field(
        1800, ge=60, validation_alias="EVIDENCE_CONSOLE_IDLE_SECONDS",
        description="A console session unused this long ends")
    console_session_seconds: int = Field(
        43200, ge=60, validation_alias="EVIDENCE_CONSOLE_SESSION_SECONDS",
        description="A console session ends this long after sign-in, however active")
    oidc_issuer: str | None = Field(
        None, validation_alias="EVIDENCE_OIDC_ISSUER",
        description="The console signs people in through this OpenID Connect provider (its "
        "issuer URL, discovery at <issuer>/.well-known/openid-configuration); https unless "
        "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS is on")
    oidc_client_id: str | None = Field(None, validation_alias="EVIDENCE_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(
        None, validation_alias="EVIDENCE_OIDC_CLIENT_SECRET")
    oidc_scopes: str = Field(
        "openid email profile", validation_alias="EVIDENCE_OIDC_SCOPES",
        description="Scopes the console asks for; the ID token must carry the account claim "
        "(EVIDENCE_JWT_ACCOUNT_CLAIM), so add the scope your provider releases it under")

    # The tamper-evident ledger (issue 12): the key that signs its checkpoints.
    ledger_signing_key: SecretStr | None = Field(
        None, validation_alias="EVIDENCE_LEDGER_SIGNING_KEY",
        description="The Ed25519 private key that signs ledger checkpoints: PEM (PKCS#8) or "
        "the 32-byte raw key in base64; unset: one is generated once and stored sealed with "
        "the encryption keys in the database")

    # Fair use of the API (issue 15): request rate limits and bounded waits.
    rate_limit: str = Field(
        "600/minute", validation_alias="EVIDENCE_RATE_LIMIT",
        description="Requests per account (JWT, API key or auditor token; unauthenticated "
        "callers per address) over all endpoints but /healthz, /readyz and /metrics, counted in "
        "Redis; more than one as `100/second;600/minute`")
    auth_rate_limit: str = Field(
        "20/minute", validation_alias="EVIDENCE_AUTH_RATE_LIMIT",
        description="Requests per client address to the unauthenticated sign-in endpoints "
        "(auditor accept-invitation, the OAuth callback)")
    api_threads: int = Field(8, ge=1, le=256, validation_alias="EVIDENCE_API_THREADS",
                             description="gunicorn threads per API worker process")
    sync_wait_per_account: int = Field(
        2, ge=0, validation_alias="EVIDENCE_SYNC_WAIT_PER_ACCOUNT",
        description="Requests of one account that may wait at once (`?wait=` on sync and "
        "connect), over all API processes; more answer 202 at once with the run to poll")
    sync_wait_per_process: int | None = Field(
        None, ge=0, validation_alias="EVIDENCE_SYNC_WAIT_PER_PROCESS",
        description="Waiting requests per API process (default: half of EVIDENCE_API_THREADS), "
        "so the other threads always serve")
    sync_wait_max_seconds: float = Field(
        120.0, ge=0, le=120, validation_alias="EVIDENCE_SYNC_WAIT_MAX_SECONDS",
        description="The longest `?wait=` honoured; a longer one waits this long")

    @field_validator("rate_limit", "auth_rate_limit")
    @classmethod
    def _parse_limit(cls, value: str) -> str:
        parse_many(value)  # a ValueError names the bad limit at start-up, not on a request
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        given = [self.oidc_issuer, self.oidc_client_id, self.oidc_client_secret]
        if any(v is not None for v in given) and not all(v is not None for v in given):
            raise ValueError("console sign-in by OIDC needs EVIDENCE_OIDC_ISSUER, "
                             "EVIDENCE_OIDC_CLIENT_ID and EVIDENCE_OIDC_CLIENT_SECRET together")
        return self

    @property
    def oidc_enabled(self) -> bool:
        """Whether the console offers sign-in through an identity provider."""
        return self.oidc_issuer is not None

    @property
    def waiters_per_process(self) -> int:
        if self.sync_wait_per_process is not None:
            return self.sync_wait_per_process
        return max(1, self.api_threads // 2)

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        url = self.database_url
        if url is None:
            raise RuntimeError("DATABASE_URL is not set and no embedded Postgres was started")
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
