"""Collect, then judge: results, collectors and checks, typed so a check takes what it needs.

`@collector` makes a `Collector[T]` of a function returning T (its snapshot); `@check(needs=...)`
ties the check function's parameters to its collectors' snapshot types, so a check that expects
a snapshot of another type is a mypy error, not a run-time surprise.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar, overload

__all__ = [
    "WHOLE",
    "Check",
    "Collector",
    "Result",
    "Severity",
    "Shard",
    "Status",
    "check",
    "collector",
]

CHECK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){2,}$")

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")


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
class Collector(Generic[T]):
    """Reads one provider service into a snapshot of type T. A scoped collector runs once per
    scope (region, project); a shardable one reads only the resources its `shard` owns; one that
    declares a `config` parameter receives the connection's validated configuration."""

    fn: Callable[..., T]
    scoped: bool = False
    shardable: bool = False

    @property
    def name(self) -> str:
        return f"{self.fn.__module__.rsplit('.', 1)[-1]}.{self.fn.__name__}"

    @property
    def takes_config(self) -> bool:
        """Whether the function declares `config` (the connector's config_model instance)."""
        return "config" in inspect.signature(self.fn).parameters

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        return self.fn(*args, **kwargs)


def collector(*, scoped: bool = False,
              shardable: bool = False) -> Callable[[Callable[..., T]], Collector[T]]:
    """Mark a function as a collector: `fn(session)` or, when scoped, `fn(session, scope)`.

    A scoped collector must return a list; the SDK concatenates the lists of every scope.
    A shardable collector also takes `shard` (keyword) and returns only the resources
    `shard.owns(name)`, so a large sync can split its reads over the worker pool. Mark one
    shardable only when every check that reads it judges each resource on its own. A collector
    that declares a `config` parameter (keyword) gets the connection's configuration, validated
    by the connector's `config_model`: the one way configuration reaches a snapshot.
    """

    def wrap(fn: Callable[..., T]) -> Collector[T]:
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
    needs: tuple[Collector[Any], ...]
    fn: Callable[..., Iterable[Result]]
    benchmarks: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False,
                                                      compare=False)
    """Benchmark recommendations the check tests, by framework id: {"cis_aws": ("1.4",)}."""
    replaces: tuple[str, ...] = field(default=(), hash=False, compare=False)
    """Check ids this one supersedes (a split or a rename). The old id stays declared for one
    release as a deprecated alias, so stored history and mappings that name it stay readable."""
    version: int = field(default=1, hash=False, compare=False)
    """The version of the check's rule: raise it when a change to the code may change a
    verdict on the same snapshot. Evidence records it; `evidence rejudge` compares against it."""

    def judge(self, *snapshots: Any) -> list[Result]:
        """Run the check on snapshots; a resource judged twice is a bug in the check."""
        results = list(self.fn(*snapshots))
        seen: set[str] = set()
        for result in results:
            if result.resource_id in seen:
                raise ValueError(f"check {self.id} judged resource {result.resource_id} twice")
            seen.add(result.resource_id)
        return results


Judge1 = Callable[[A], Iterable[Result]]
Judge2 = Callable[[A, B], Iterable[Result]]
Judge3 = Callable[[A, B, C], Iterable[Result]]


@overload
def check(*, id: str, severity: Severity, resource_type: str, remediation: str,
          needs: Collector[A], title: str | None = None,
          benchmarks: Mapping[str, Sequence[str]] | None = None,
          replaces: Sequence[str] = (), version: int = 1,
          ) -> Callable[[Judge1[A]], Check]: ...


@overload
def check(*, id: str, severity: Severity, resource_type: str, remediation: str,
          needs: tuple[Collector[A], Collector[B]], title: str | None = None,
          benchmarks: Mapping[str, Sequence[str]] | None = None,
          replaces: Sequence[str] = (), version: int = 1,
          ) -> Callable[[Judge2[A, B]], Check]: ...


@overload
def check(*, id: str, severity: Severity, resource_type: str, remediation: str,
          needs: tuple[Collector[A], Collector[B], Collector[C]], title: str | None = None,
          benchmarks: Mapping[str, Sequence[str]] | None = None,
          replaces: Sequence[str] = (), version: int = 1,
          ) -> Callable[[Judge3[A, B, C]], Check]: ...


@overload
def check(*, id: str, severity: Severity, resource_type: str, remediation: str,
          needs: Sequence[Collector[Any]], title: str | None = None,
          benchmarks: Mapping[str, Sequence[str]] | None = None,
          replaces: Sequence[str] = (), version: int = 1,
          ) -> Callable[[Callable[..., Iterable[Result]]], Check]: ...


def check(*, id: str, severity: Severity, resource_type: str, remediation: str,
          needs: Collector[Any] | Sequence[Collector[Any]], title: str | None = None,
          benchmarks: Mapping[str, Sequence[str]] | None = None,
          replaces: Sequence[str] = (), version: int = 1,
          ) -> Callable[[Callable[..., Iterable[Result]]], Check]:
    """Declare a check over the snapshots of `needs` (one collector or a tuple of them), in that
    order; its title defaults to the first line of the function's docstring. mypy ties the
    function's parameters to the snapshot types of one collector or a tuple of up to three;
    longer lists are checked at run time only. `version` (a positive integer, 1 by default) is
    raised whenever the rule changes, so stored evidence says which rule judged it."""

    def wrap(fn: Callable[..., Iterable[Result]]) -> Check:
        doc_title = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        declared = title or doc_title
        if not declared:
            raise TypeError(f"check {id} needs a title or a docstring")
        if not CHECK_ID.match(id):
            raise TypeError(f"check id {id!r} must look like provider.service.name")
        collectors = (needs,) if isinstance(needs, Collector) else tuple(needs)
        refs = {str(fw): tuple(str(r) for r in ids) for fw, ids in (benchmarks or {}).items()}
        if any(not ids or isinstance(ids, str) for ids in (benchmarks or {}).values()):
            raise TypeError(f"check {id}: each benchmark needs a list of recommendation ids")
        old = tuple(str(r) for r in ([replaces] if isinstance(replaces, str) else replaces))
        if any(not CHECK_ID.match(r) or r == id for r in old):
            raise TypeError(f"check {id}: replaces names other checks' ids")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**15:
            raise TypeError(f"check {id}: version must be a positive integer")
        return Check(id=id, title=declared, severity=severity, resource_type=resource_type,
                     remediation=remediation, needs=collectors, fn=fn, benchmarks=refs,
                     replaces=old, version=version)

    return wrap
