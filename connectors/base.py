"""The connector SDK: declare a provider, collect its resources once, judge them with pure checks.

A connector is one class with metadata, a credentials model and a tuple of checks. Collectors are
the only code that does I/O; checks are pure functions over the collectors' snapshots. The SDK runs
every collector a sync needs once (in parallel, bounded per connector), feeds each check the
snapshots it declared, and turns a raising collector or check into `error` results and run errors
without stopping the others.

This module is the SDK's public surface: everything a connector imports comes from here. It
re-exports the pieces that live beside it: results, collectors and checks (connectors.checks),
errors (connectors.errors), OAuth (connectors.oauth), the retry policy (connectors.retry) and the
collect/judge runner (connectors.runner). It imports nothing from engine/.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from connectors.checks import (
    WHOLE,
    Check,
    Collector,
    Result,
    Severity,
    Shard,
    Status,
    check,
    collector,
)
from connectors.conditional import ConditionalCache, StoredAnswer
from connectors.endpoints import LOCKED, Endpoint, EndpointPolicy, EndpointRefused, HttpUrl
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidFields,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
)
from connectors.metadata import CheckMetadata, Remediation, load_check_metadata
from connectors.oauth import OAuthClientCredentials, OAuthSpec, OAuthToken, RevokeGrant
from connectors.retry import RetryPolicy
from connectors.runner import CheckOutcome, run_checks

__all__ = [
    "WHOLE",
    "AuthFailed",
    "AuthType",
    "Category",
    "Check",
    "CheckMetadata",
    "CheckOutcome",
    "Collector",
    "ConditionalCache",
    "ConfigParam",
    "Connector",
    "Endpoint",
    "EndpointPolicy",
    "EndpointRefused",
    "HttpUrl",
    "InvalidFields",
    "OAuthClientCredentials",
    "OAuthSpec",
    "OAuthToken",
    "ConnectorError",
    "PermissionMissing",
    "ProviderUnavailable",
    "RateLimited",
    "Remediation",
    "Result",
    "RetryPolicy",
    "RevokeGrant",
    "Severity",
    "Shard",
    "Status",
    "StoredAnswer",
    "check",
    "collector",
    "load_connectors",
]

ENTRY_POINT_GROUP = "evidence_engine.connectors"
_CONNECTOR_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")

Session = Any


class Category(StrEnum):
    CLOUD = "cloud"
    IDENTITY = "identity"
    DEVOPS = "devops"
    HR = "hr"
    COMMUNICATION = "communication"
    MONITORING = "monitoring"


class AuthType(StrEnum):
    API_KEY = "api_key"
    OAUTH2 = "oauth2"
    SERVICE_ACCOUNT = "service_account"


@dataclass(frozen=True)
class ConfigParam:
    """A documented per-connection configuration parameter."""

    name: str
    description: str
    default: Any = None
    secret: bool = False


class Connector:
    """Base class of every provider connector. Subclasses declare metadata as class attributes."""

    id: ClassVar[str]
    name: ClassVar[str]
    category: ClassVar[Category]
    auth_type: ClassVar[AuthType]
    icon: ClassVar[str]
    description: ClassVar[str] = ""
    credentials_model: ClassVar[type[BaseModel]]
    config_params: ClassVar[tuple[ConfigParam, ...]] = ()
    config_model: ClassVar[type[BaseModel] | None] = None
    """A pydantic model of the whole configuration (one field per ConfigParam): validated when a
    parameter is saved and at connect, so a bad value is a 422, not a failed run; at run time
    the SDK hands its instance to every collector that declares a `config` parameter (the one
    way configuration reaches a check: through a snapshot). None: any declared parameter is
    accepted as is."""
    oauth: ClassVar[OAuthSpec | None] = None
    """Set when the provider connects through OAuth (GET .../oauth-url, then the callback)."""
    checks: ClassVar[tuple[Check, ...]] = ()
    max_parallel: ClassVar[int] = 4
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy()
    """How the provider session retries a throttled or failing call (connectors.retry)."""
    control_mappings: ClassVar[Path | None] = None
    """The connector's check-to-control mapping file, shipped in its own package (by convention
    `mappings.yaml` beside its `__init__.py`); the engine reads mappings only through this."""
    check_metadata_file: ClassVar[Path | None] = None
    """Each check's risk, remediation (console, CLI, Terraform), reference URL and benchmark ids
    (connectors.metadata); by default `metadata.yaml` beside the module declaring the class.
    Read and validated when the class is created."""
    _check_metadata: ClassVar[Mapping[str, CheckMetadata]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _validate_metadata(cls)
        cls._check_metadata = _read_check_metadata(cls)

    @classmethod
    def check_metadata(cls) -> Mapping[str, CheckMetadata]:
        """Metadata by check id, as validated at import (a check may lack an entry)."""
        return cls._check_metadata

    def __init__(self, credentials: BaseModel, config: Mapping[str, Any] | None = None, *,
                 endpoints: EndpointPolicy = LOCKED,
                 conditional_cache: ConditionalCache | None = None) -> None:
        self.credentials = credentials
        self.config = dict(config or {})
        self.endpoints = endpoints
        """Where the session may connect (EVIDENCE_ALLOW_CUSTOM_ENDPOINTS): a session opens
        its HTTP clients through connectors.egress with it. Public hosts only by default."""
        self.conditional_cache = conditional_cache
        """This connection's stored answers to conditional requests (connectors.conditional),
        for a provider that sends If-None-Match; None: kept in the worker's memory only."""

    # --- what a provider implements -------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        """Prove the credentials with one cheap call; return connection metadata or raise."""
        raise NotImplementedError

    def session(self) -> Session:
        """The object every collector receives (an authenticated client factory)."""
        raise NotImplementedError

    def scopes(self, session: Session) -> list[str]:
        """The scopes scoped collectors run over (regions, projects). One by default."""
        return ["global"]

    def finish_run(self, session: Session) -> None:
        """Called once a run's checks were all judged (e.g. to store what the session learnt,
        such as ETags, in `conditional_cache`). Nothing by default."""

    # --- what the SDK does ----------------------------------------------------------------

    @classmethod
    def parse_credentials(cls, raw: Mapping[str, Any]) -> BaseModel:
        """Validate raw credentials; the error lists failing fields, never their values."""
        fields = unstorable_text(raw)
        if not fields:
            try:
                return cls.credentials_model.model_validate(raw)
            except ValidationError as exc:
                fields = _field_errors(exc)
        raise InvalidFields(
            f"credentials for {cls.id} are invalid: " + ", ".join(f["field"] for f in fields),
            code="invalid_credentials", fields=fields)

    @classmethod
    def parse_config(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a whole configuration against `config_model`; the error lists failing and
        unknown fields, never their values. Returns the given values, validated, as plain JSON
        (secrets revealed: only for storage the vault or the connector reads). Without a model,
        the configuration is taken as given, if Postgres can store its text."""
        model = cls.config_model
        known = {k: v for k, v in raw.items() if model is None or k in model.model_fields}
        fields = [{"field": str(name)[:100], "message": f"not a configuration parameter of "
                   f"{cls.id}"} for name in raw if name not in known]
        unstorable = unstorable_text(known)
        fields += unstorable
        parsed = None
        if model is not None and not unstorable:
            try:
                parsed = model.model_validate(known)
            except ValidationError as exc:
                fields += _field_errors(exc)
        if fields:
            raise InvalidFields(
                f"configuration for {cls.id} is invalid: "
                + ", ".join(f"{f['field']} ({f['message']})" for f in fields),
                code="invalid_config", fields=fields,
            ) from None
        if parsed is None:
            return known
        return {key: value.get_secret_value() if isinstance(value, SecretStr)
                else to_jsonable_python(value)
                for key, value in parsed.model_dump(exclude_unset=True).items()}

    @classmethod
    def dump_credentials(cls, credentials: BaseModel) -> dict[str, Any]:
        """Credentials as plain JSON with secrets revealed: only for the vault to encrypt."""
        return {key: value.get_secret_value() if isinstance(value, SecretStr) else value
                for key, value in credentials}

    def validated_config(self) -> BaseModel | None:
        """The configuration as an instance of `config_model` (None without one): what a
        collector declaring a `config` parameter receives. A stored configuration that no
        longer validates is an InvalidFields (code invalid_config) for those collectors."""
        model = self.config_model
        if model is None:
            return None
        try:
            return model.model_validate(self.config)
        except ValidationError as exc:
            fields = _field_errors(exc)
            raise InvalidFields(f"{self.id} connection config is invalid: "
                                + ", ".join(f["field"] for f in fields),
                                code="invalid_config", fields=fields) from None

    def run_checks(self, checks: Sequence[Check] | None = None,
                   shard: Shard = WHOLE) -> Iterator[CheckOutcome]:
        """Collect what the checks need (each collector once, in parallel) and judge them;
        shardable collectors read only the resources `shard` owns (connectors.runner)."""
        selected = list(checks if checks is not None else self.checks)
        session = self.session()
        yield from run_checks(session, selected, scopes=lambda: self.scopes(session),
                              config=self.validated_config, max_parallel=self.max_parallel,
                              shard=shard)
        self.finish_run(session)


MAX_TEXT = 65_536
"""The longest string a credentials or configuration value may hold (a PEM key is ~3 KB)."""


def unstorable_text(value: Any, max_text: int = MAX_TEXT) -> list[dict[str, str]]:
    """Each string (key or value, at any depth) that is not storable text: one holding NUL or
    a lone surrogate (Postgres and the vault's JSON refuse them), or longer than `max_text`.
    Iterative, so a deep document costs no stack; never names the value."""
    found: list[dict[str, str]] = []
    stack: list[tuple[str, Any]] = [("", value)]
    while stack and len(found) < 10:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                problem = _text_problem(str(key), 200)
                if problem:
                    found.append({"field": path or "body", "message": f"a key {problem}"})
                else:
                    stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), child)
                         for i, child in enumerate(item))
        elif isinstance(item, str) and _text_problem(item, max_text):
            found.append({"field": path or "body", "message": _text_problem(item, max_text)})
    return found


def _text_problem(text: str, max_length: int) -> str:
    """Why `text` is not storable, or "" when it is."""
    if len(text) > max_length:
        return f"is longer than {max_length} characters"
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return ""


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Each failing field and why, never the value it was given."""
    return [{"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_input=False, include_url=False)]


def _validate_metadata(cls: type[Connector]) -> None:
    """Fail loudly at import on malformed connector metadata."""
    for attr in ("id", "name", "category", "auth_type", "icon", "credentials_model"):
        if not hasattr(cls, attr):
            raise TypeError(f"connector {cls.__name__} must declare {attr}")
    if not _CONNECTOR_ID.match(cls.id):
        raise TypeError(f"connector id {cls.id!r} must match {_CONNECTOR_ID.pattern}")
    Category(cls.category)
    AuthType(cls.auth_type)
    if not (isinstance(cls.credentials_model, type)
            and issubclass(cls.credentials_model, BaseModel)):
        raise TypeError(f"connector {cls.id}: credentials_model must be a pydantic model")
    if cls.config_model is not None:
        if not (isinstance(cls.config_model, type) and issubclass(cls.config_model, BaseModel)):
            raise TypeError(f"connector {cls.id}: config_model must be a pydantic model")
        undeclared = [p.name for p in cls.config_params
                      if p.name not in cls.config_model.model_fields]
        if undeclared:
            raise TypeError(f"connector {cls.id}: config_model has no field for the config "
                            f"params {undeclared}")
    if cls.oauth is not None and cls.auth_type != AuthType.OAUTH2:
        raise TypeError(f"connector {cls.id} declares an OAuthSpec but auth_type {cls.auth_type}")
    ids = [c.id for c in cls.checks]
    if len(ids) != len(set(ids)):
        raise TypeError(f"connector {cls.id} declares a check twice")
    for chk in cls.checks:
        if not chk.id.startswith(cls.id + "."):
            raise TypeError(f"check {chk.id} must start with {cls.id}.")


def _read_check_metadata(cls: type[Connector]) -> Mapping[str, CheckMetadata]:
    """The class's metadata file (declared, or `metadata.yaml` beside its module) validated
    against its checks; an unknown check id or a malformed entry fails the import."""
    path = cls.check_metadata_file
    if path is None:
        module = sys.modules.get(cls.__module__)
        source = getattr(module, "__file__", None)
        if source is None:
            return {}
        path = Path(source).with_name("metadata.yaml")
    return load_check_metadata(path, {c.id for c in cls.checks}, cls.id)


def load_connectors() -> dict[str, type[Connector]]:
    """Every connector registered under the entry point group, by id; duplicates fail loudly."""
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"entry point {ep.name} is not a Connector subclass")
        if ep.name != cls.id:
            raise TypeError(f"entry point {ep.name} registers connector {cls.id}")
        if cls.id in found and found[cls.id] is not cls:
            raise TypeError(f"two connectors claim the id {cls.id}")
        found[cls.id] = cls
    return dict(sorted(found.items()))
