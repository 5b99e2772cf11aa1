"""The one settings object; nothing else in the engine reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    storage_endpoint_url: str | None = Field(None, validation_alias="EVIDENCE_STORAGE_ENDPOINT_URL")
    storage_bucket: str | None = Field(None, validation_alias="EVIDENCE_STORAGE_BUCKET")
    storage_access_key_id: str | None = Field(
        None, validation_alias="EVIDENCE_STORAGE_ACCESS_KEY_ID")
    storage_secret_access_key: SecretStr | None = Field(
        None, validation_alias="EVIDENCE_STORAGE_SECRET_ACCESS_KEY"
    )
    storage_region: str = Field("us-east-1", validation_alias="EVIDENCE_STORAGE_REGION")

    allow_custom_endpoints: bool = Field(
        False, validation_alias="EVIDENCE_ALLOW_CUSTOM_ENDPOINTS",
        description="Let connection credentials point a provider SDK at another endpoint "
        "(emulators, S3-compatible stores). Off in production.",
    )
    api_host: str = Field("127.0.0.1", validation_alias="EVIDENCE_API_HOST")
    api_port: int = Field(8000, validation_alias="EVIDENCE_API_PORT")
    worker_concurrency: int = Field(8, validation_alias="EVIDENCE_WORKER_CONCURRENCY")
    visibility_timeout: int = Field(3600, validation_alias="EVIDENCE_VISIBILITY_TIMEOUT")
    heartbeat_seconds: float = Field(15.0, validation_alias="EVIDENCE_HEARTBEAT_SECONDS")
    lease_stale_seconds: float = Field(120.0, validation_alias="EVIDENCE_LEASE_STALE_SECONDS")
    redis_key_prefix: str = Field("", validation_alias="EVIDENCE_REDIS_KEY_PREFIX")
    log_level: str = Field("INFO", validation_alias="EVIDENCE_LOG_LEVEL")

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
