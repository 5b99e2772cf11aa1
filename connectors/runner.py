"""The collect/judge runner: every collector the checks need runs once (in parallel, bounded per
connector), each check judges the snapshots it declared, and a raising collector or check turns
into `error` results and run errors without stopping the others. `Connector.run_checks` drives it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from connectors.checks import WHOLE, Check, Collector, Result, Shard
from connectors.errors import AuthFailed, ConnectorError

__all__ = ["CheckOutcome", "Collected", "judge_stored", "run_checks"]


@dataclass
class CheckOutcome:
    """What one check produced in a sync: its results, or the error that stopped it."""

    check: Check
    results: list[Result]
    errors: list[str]
    crashed: bool = False


@dataclass(frozen=True)
class Collected:
    """What one collector read in a sync, handed to the engine to keep: each scope's snapshot
    (scope None when unscoped), and whether every scope was read."""

    pieces: tuple[tuple[str | None, Any], ...]
    complete: bool


def run_checks(session: Any, checks: Sequence[Check], *, scopes: Callable[[], list[str]],
               config: Callable[[], BaseModel | None], max_parallel: int,
               shard: Shard = WHOLE,
               collected: Callable[[Mapping[Collector[Any], Collected]], None] | None = None,
               ) -> Iterator[CheckOutcome]:
    """Collect what `checks` need from `session`, then judge each check in order.

    `scopes` lists the scopes of scoped collectors, `config` gives the validated configuration
    to collectors that declare it; shardable collectors read only what `shard` owns. AuthFailed
    stops the run: nothing else can be read with refused credentials. `collected`, when given,
    receives every collector's snapshots once all are read, before any check judges them.
    """
    snapshots = _collect(session, checks, scopes, config, max_parallel, shard)
    if collected is not None:
        collected({coll: Collected(tuple(snap.pieces), not snap.errors)
                   for coll, snap in snapshots.items() if snap.usable})
    for chk in checks:
        yield _judge(chk, snapshots)


def judge_stored(chk: Check, stored: Mapping[Collector[Any], Sequence[tuple[str | None, Any]]],
                 ) -> CheckOutcome:
    """Judge a check on snapshots read before (each of its collectors' pieces, by scope), as a
    sync would have judged them: no collector runs, nothing is read from the provider."""
    snapshots = {coll: _Snapshot(scoped=coll.scoped) for coll in chk.needs}
    for coll, pieces in stored.items():
        if coll in snapshots:
            for scope, value in pieces:
                snapshots[coll].add(scope, value, None)
    return _judge(chk, snapshots)


@dataclass
class _Snapshot:
    """What one collector read: a value (lists concatenated across scopes) and scope errors."""

    scoped: bool
    value: Any = None
    errors: list[tuple[str | None, str]] = field(default_factory=list)
    succeeded: int = 0
    pieces: list[tuple[str | None, Any]] = field(default_factory=list)
    """Each scope's value as read (what the engine stores)."""

    def add(self, scope: str | None, value: Any, error: str | None) -> None:
        if error is not None:
            self.errors.append((scope, error))
            return
        self.succeeded += 1
        self.pieces.append((scope, value))
        if self.scoped:
            self.value = (self.value or []) + list(value)
        else:
            self.value = value

    @property
    def usable(self) -> bool:
        return self.succeeded > 0


def _collect(session: Any, checks: Sequence[Check], scopes: Callable[[], list[str]],
             config: Callable[[], BaseModel | None], max_parallel: int,
             shard: Shard) -> dict[Collector[Any], _Snapshot]:
    needed: dict[Collector[Any], None] = {}
    for chk in checks:
        for coll in chk.needs:
            needed.setdefault(coll)
    listed = scopes() if any(c.scoped for c in needed) else ["global"]
    jobs: list[tuple[Collector[Any], str | None]] = []
    for coll in needed:
        jobs.extend((coll, scope) for scope in listed) if coll.scoped else jobs.append(
            (coll, None))
    snapshots = {coll: _Snapshot(scoped=coll.scoped) for coll in needed}
    lock = threading.Lock()

    def run(job: tuple[Collector[Any], str | None]) -> None:
        coll, scope = job
        args = (session, scope) if scope is not None else (session,)
        try:
            kwargs: dict[str, Any] = {"shard": shard} if coll.shardable else {}
            if coll.takes_config:
                kwargs["config"] = config()
            value, error = coll(*args, **kwargs), None
        except AuthFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any collector failure is recorded, not fatal
            value, error = None, _describe(exc)
        with lock:
            snapshots[coll].add(scope, value, error)

    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()
    return snapshots


def _judge(chk: Check, snapshots: Mapping[Collector[Any], _Snapshot]) -> CheckOutcome:
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


def _unique(results: list[Result]) -> list[Result]:
    seen: dict[str, Result] = {}
    for r in results:
        seen.setdefault(r.resource_id, r)
    return list(seen.values())


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not isinstance(exc, ConnectorError) else text
