"""The connector SDK: declare a provider, collect its resources once, judge them with pure checks.

A connector is one class with metadata, a credentials model and a tuple of checks. Collectors are
the only code that does I/O; checks are pure functions over the collectors' snapshots. The SDK runs
every collector a sync needs once (in parallel, bounded per connector), feeds each check the
snapshots it declared, and turns a raising collector or check into `error` results and run errors
without stopping the others.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from connectors.endpoints import LOCKED, Endpoint, EndpointPolicy, EndpointRefused, HttpUrl
from engine.errors import (
    AuthFailed,
    ConnectorError,
    InvalidInput,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
)

__all__ = [
    "WHOLE",
    "AuthFailed",
    "AuthType",
    "Category",
    "Check",
    "CheckOutcome",
    "Collector",
    "ConfigParam",
    "Connector",
    "Endpoint",
    "EndpointPolicy",
    "EndpointRefused",
    "HttpUrl",
    "OAuthClientCredentials",
    "OAuthSpec",
    "OAuthToken",
    "ConnectorError",
    "PermissionMissing",
    "ProviderUnavailable",
    "RateLimited",
    "Result",
    "RevokeGrant",
    "Severity",
    "Shard",
    "Status",
    "check",
    "collector",
    "load_connectors",
]

ENTRY_POINT_GROUP = "evidence_engine.connectors"
_CONNECTOR_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_CHECK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){2,}$")


class Status(StrEnum):
    PASSING = "passing"
    FAILING = "failing"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


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
class Result:
    """One check's verdict on one resource, with the configuration it judged (the evidence)."""

    resource_id: str
    status: Status
    title: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, resource_id: str, *, passing: bool, title: str,
           data: Mapping[str, Any] | None = None) -> Result:
        status = Status.PASSING if passing else Status.FAILING
        return cls(resource_id, status, title, dict(data or {}))

    @classmethod
    def not_applicable(cls, resource_id: str, title: str,
                       data: Mapping[str, Any] | None = None) -> Result:
        return cls(resource_id, Status.NOT_APPLICABLE, title, dict(data or {}))

    @classmethod
    def error(cls, resource_id: str, title: str,
              data: Mapping[str, Any] | None = None) -> Result:
        return cls(resource_id, Status.ERROR, title, dict(data or {}))


Session = Any
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """One of `count` disjoint slices of a provider's resources: a part of a run fanned out
    over the worker pool reads only the resources its shard owns."""

    index: int = 0
    count: int = 1

    def owns(self, key: str) -> bool:
        """Whether this shard reads the resource named `key` (a stable hash, so every part
        agrees and each resource lands in exactly one shard)."""
        if self.count <= 1:
            return True
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


WHOLE = Shard()


@dataclass(frozen=True)
class Collector:
    """Reads one provider service. A scoped collector runs once per scope (region, project);
    a shardable one reads only the resources its `shard` owns."""

    fn: Callable[..., Any]
    scoped: bool = False
    shardable: bool = False

    @property
    def name(self) -> str:
        return f"{self.fn.__module__.rsplit('.', 1)[-1]}.{self.fn.__name__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def collector(*, scoped: bool = False,
              shardable: bool = False) -> Callable[[Callable[..., Any]], Collector]:
    """Mark a function as a collector: `fn(session)` or, when scoped, `fn(session, scope)`.

    A scoped collector must return a list; the SDK concatenates the lists of every scope.
    A shardable collector also takes `shard` (keyword) and returns only the resources
    `shard.owns(name)`, so a large sync can split its reads over the worker pool. Mark one
    shardable only when every check that reads it judges each resource on its own.
    """

    def wrap(fn: Callable[..., Any]) -> Collector:
        return Collector(fn=fn, scoped=scoped, shardable=shardable)

    return wrap


@dataclass(frozen=True)
class Check:
    """One control test: metadata beside a pure function over collector snapshots."""

    id: str
    title: str
    severity: Severity
    resource_type: str
    remediation: str
    needs: tuple[Collector, ...]
    fn: Callable[..., Iterable[Result]]
    benchmarks: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False,
                                                      compare=False)
    """Benchmark recommendations the check tests, by framework id: {"cis_aws": ("1.4",)}."""

    def judge(self, *snapshots: Any) -> list[Result]:
        """Run the check on snapshots; a resource judged twice is a bug in the check."""
        results = list(self.fn(*snapshots))
        seen: set[str] = set()
        for result in results:
            if result.resource_id in seen:
                raise ValueError(f"check {self.id} judged resource {result.resource_id} twice")
            seen.add(result.resource_id)
        return results


def check(*, id: str, severity: Severity, resource_type: str, remediation: str,
          needs: Collector | Sequence[Collector], title: str | None = None,
          benchmarks: Mapping[str, Sequence[str]] | None = None,
          ) -> Callable[[Callable[..., Iterable[Result]]], Check]:
    """Declare a check; its title defaults to the first line of the function's docstring."""

    def wrap(fn: Callable[..., Iterable[Result]]) -> Check:
        doc_title = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        declared = title or doc_title
        if not declared:
            raise TypeError(f"check {id} needs a title or a docstring")
        if not _CHECK_ID.match(id):
            raise TypeError(f"check id {id!r} must look like provider.service.name")
        collectors = (needs,) if isinstance(needs, Collector) else tuple(needs)
        refs = {str(fw): tuple(str(r) for r in ids) for fw, ids in (benchmarks or {}).items()}
        if any(not ids or isinstance(ids, str) for ids in (benchmarks or {}).values()):
            raise TypeError(f"check {id}: each benchmark needs a list of recommendation ids")
        return Check(id=id, title=declared, severity=severity, resource_type=resource_type,
                     remediation=remediation, needs=collectors, fn=fn, benchmarks=refs)

    return wrap


@dataclass(frozen=True)
class ConfigParam:
    """A documented per-connection configuration parameter."""

    name: str
    description: str
    default: Any = None
    secret: bool = False


@dataclass(frozen=True)
class OAuthClientCredentials:
    """This deployment's OAuth client at a provider (EVIDENCE_OAUTH_CLIENTS), as a connector's
    `OAuthSpec.revoke` hook receives it."""

    client_id: str
    client_secret: SecretStr
    endpoints: EndpointPolicy = LOCKED
    """Where the hook may connect (the deployment's EVIDENCE_ALLOW_CUSTOM_ENDPOINTS): open its
    HTTP client through connectors.egress with it."""


RevokeGrant = Callable[[OAuthClientCredentials, BaseModel], bool]
"""Revoke a connection's grant at the provider: True when the provider confirmed it, False
when there is nothing of ours to revoke (a token the account made itself). A failure raises a
ConnectorError whose message names no secret; the engine logs it and still disconnects."""


@dataclass(frozen=True)
class OAuthSpec:
    """How a provider grants access by OAuth 2.0 (authorization code, PKCE S256 by default).

    The callback stores the provider's token answer as the connection's credentials, so a
    connector with an OAuthSpec uses `OAuthToken` (or a model accepting its fields) as its
    credentials_model. The client id and secret are deployment settings
    (EVIDENCE_OAUTH_CLIENTS), which may also override these URLs (an Okta org, GitHub
    Enterprise).
    """

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    revoke_url: str | None = None
    """An RFC 7009 revocation endpoint, used on disconnect when there is no `revoke` hook."""
    params: tuple[str, ...] = ()
    """Credentials fields the account gives with GET .../oauth-url (query parameters, e.g.
    GitHub's `organization`): validated there, kept sealed with the state, stored with the
    tokens."""
    revoke: RevokeGrant | None = None
    """How a provider without RFC 7009 revokes a grant on disconnect (GitHub's DELETE
    /applications/{client_id}/grant), given the client and the parsed credentials."""


class OAuthToken(BaseModel):
    """Credentials obtained through OAuth: what the token endpoint answered."""

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    token_type: str = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_at: int | None = None
    scope: str | None = None


@dataclass
class CheckOutcome:
    """What one check produced in a sync: its results, or the error that stopped it."""

    check: Check
    results: list[Result]
    errors: list[str]
    crashed: bool = False


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
    parameter is saved and at connect, so a bad value is a 422, not a failed run. None: any
    declared parameter is accepted as is."""
    oauth: ClassVar[OAuthSpec | None] = None
    """Set when the provider connects through OAuth (GET .../oauth-url, then the callback)."""
    checks: ClassVar[tuple[Check, ...]] = ()
    max_parallel: ClassVar[int] = 4
    control_mappings: ClassVar[Path | None] = None
    """The connector's check-to-control mapping file, shipped in its own package (by convention
    `mappings.yaml` beside its `__init__.py`); the engine reads mappings only through this."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _validate_metadata(cls)

    def __init__(self, credentials: BaseModel, config: Mapping[str, Any] | None = None, *,
                 endpoints: EndpointPolicy = LOCKED) -> None:
        self.credentials = credentials
        self.config = dict(config or {})
        self.endpoints = endpoints
        """Where the session may connect (EVIDENCE_ALLOW_CUSTOM_ENDPOINTS): a session opens
        its HTTP clients through connectors.egress with it. Public hosts only by default."""

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
        raise InvalidInput(
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
            raise InvalidInput(
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

    def run_checks(self, checks: Sequence[Check] | None = None,
                   shard: Shard = WHOLE) -> Iterator[CheckOutcome]:
        """Collect what the checks need (each collector once, in parallel) and judge them;
        shardable collectors read only the resources `shard` owns."""
        selected = list(checks if checks is not None else self.checks)
        session = self.session()
        snapshots = self._collect(session, selected, shard)
        for chk in selected:
            yield self._judge(chk, snapshots)

    def _collect(self, session: Session, checks: Sequence[Check],
                 shard: Shard = WHOLE) -> dict[Collector, _Snapshot]:
        needed: dict[Collector, None] = {}
        for chk in checks:
            for coll in chk.needs:
                needed.setdefault(coll)
        scopes = self.scopes(session) if any(c.scoped for c in needed) else ["global"]
        jobs: list[tuple[Collector, str | None]] = []
        for coll in needed:
            jobs.extend((coll, scope) for scope in scopes) if coll.scoped else jobs.append(
                (coll, None))
        snapshots = {coll: _Snapshot(scoped=coll.scoped) for coll in needed}
        lock = threading.Lock()

        def run(job: tuple[Collector, str | None]) -> None:
            coll, scope = job
            args = (session, scope) if scope is not None else (session,)
            try:
                value = coll(*args, shard=shard) if coll.shardable else coll(*args)
                error = None
            except AuthFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - any collector failure is recorded, not fatal
                value, error = None, _describe(exc)
            with lock:
                snapshots[coll].add(scope, value, error)

        with ThreadPoolExecutor(max_workers=max(1, self.max_parallel)) as pool:
            for future in [pool.submit(run, job) for job in jobs]:
                future.result()
        return snapshots

    def _judge(self, chk: Check, snapshots: Mapping[Collector, _Snapshot]) -> CheckOutcome:
        inputs = [snapshots[c] for c in chk.needs]
        errors = [f"{c.name}[{scope}]: {msg}" if scope else f"{c.name}: {msg}"
                  for c, snap in zip(chk.needs, inputs, strict=True)
                  for scope, msg in snap.errors]
        scope_results = [
            Result.error(f"scope:{scope or 'global'}", f"Could not read {c.name}: {msg}",
                         {"collector": c.name, "scope": scope, "error": msg})
            for c, snap in zip(chk.needs, inputs, strict=True) for scope, msg in snap.errors
        ]
        if any(not snap.usable for snap in inputs):
            return CheckOutcome(chk, _unique(scope_results), errors)
        try:
            results = chk.judge(*(snap.value for snap in inputs))
        except Exception as exc:  # noqa: BLE001 - a raising check must not stop the others
            return CheckOutcome(chk, [], [*errors, _describe(exc)], crashed=True)
        return CheckOutcome(chk, results + _unique(scope_results), errors)


@dataclass
class _Snapshot:
    """What one collector read: a value (lists concatenated across scopes) and scope errors."""

    scoped: bool
    value: Any = None
    errors: list[tuple[str | None, str]] = field(default_factory=list)
    succeeded: int = 0

    def add(self, scope: str | None, value: Any, error: str | None) -> None:
        if error is not None:
            self.errors.append((scope, error))
            return
        self.succeeded += 1
        if self.scoped:
            self.value = (self.value or []) + list(value)
        else:
            self.value = value

    @property
    def usable(self) -> bool:
        return self.succeeded > 0


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


def _unique(results: list[Result]) -> list[Result]:
    seen: dict[str, Result] = {}
    for r in results:
        seen.setdefault(r.resource_id, r)
    return list(seen.values())


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not isinstance(exc, ConnectorError) else text


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
