"""Redis and Postgres restarted in the middle of runs: every run still ends succeeded.

These tests restart servers, so they start their OWN redis-server and PostgreSQL on free
loopback ports (never the machine's shared ones), with a worker stack pointed at them.
Each prints what it saw (`pytest -s`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.migrate import upgrade
from engine.models import RunStatus, SyncRun
from engine.settings import Settings
from tests.faults import slow
from tests.faults.stack import (
    OwnPostgres,
    OwnRedis,
    Stack,
    add_connection,
    checks_verified_by,
    count_evidence,
    finished,
    log_count,
    request_run,
)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path_factory.mktemp("own-redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path_factory.mktemp("own-postgres"))
    server.start()
    yield server
    server.stop("immediate")


@pytest.fixture(scope="module")
def stack(settings: Settings, own_redis: OwnRedis, own_postgres: OwnPostgres,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(settings, tmp_path_factory.mktemp("restart-stack"),
                  DATABASE_URL=own_postgres.url, REDIS_URL=own_redis.url)
    upgrade(stack.settings)
    try:
        stack.worker("worker-default", "default", concurrency=2, wait=False)
        stack.worker("worker-sync", "sync", concurrency=2, wait=False)
        stack.beat(wait=False)
        stack.ready("worker-default", "worker-sync", "beat")
        yield stack
    finally:
        stack.stop_all()


def open_runs(stack: Stack) -> int:
    with stack.factory() as s:
        return s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))) or 0


def all_finished(stack: Stack, run_ids: list[str]) -> list[SyncRun] | None:
    runs = [finished(stack, run_id) for run_id in run_ids]
    return [r for r in runs if r is not None] if all(runs) else None


def test_redis_restarted_mid_run_loses_no_run(stack: Stack, own_redis: OwnRedis,
                                              tmp_path: Path):
    controls = [tmp_path / name for name in ("a", "b", "c")]
    for control in controls[:2]:
        slow.control(control, resources=4, gate="redis", gate_before=1)
    slow.control(controls[2], resources=4)
    conns = [add_connection(stack, control, account=f"acct-{i}")
             for i, control in enumerate(controls)]
    running = [request_run(stack, conn) for conn in conns[:2]]
    stack.wait_for(lambda: all(slow.collections(c) == 1 for c in controls[:2]), 60,
                   "two syncs running, both threads of the sync worker busy")
    waiting = request_run(stack, conns[2])  # its message waits in Redis for a free thread
    own_redis.kill()  # no persistence: every queued and unacknowledged message is gone
    own_redis.start()
    for control in controls[:2]:
        (control / "open-redis").touch()
    runs = stack.wait_for(lambda: all_finished(stack, [*running, waiting]), 120,
                          "every run to finish after the restart (the lost one is resent)")
    print(f"\nredis restart: runs={[(r.status.value, r.attempts) for r in runs]}, "
          f"open runs left={open_runs(stack)}, evidence rows="
          f"{[count_evidence(stack, c).rows for c in conns]}")
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 3
    assert open_runs(stack) == 0
    assert all(count_evidence(stack, c).rows == 4 * slow.CHECKS for c in conns)


def test_postgres_restarted_mid_run_every_run_is_retried_to_success(
        stack: Stack, own_postgres: OwnPostgres, tmp_path: Path):
    controls = [tmp_path / name for name in ("a", "b")]
    for control in controls:
        slow.control(control, resources=6, gate="pg", gate_before=2)
    conns = [add_connection(stack, control, account=f"pg-{i}")
             for i, control in enumerate(controls)]
    worker = stack.procs["worker-sync"]
    mark = len(worker.text())
    run_ids = [request_run(stack, conn) for conn in conns]
    stack.wait_for(lambda: all(checks_verified_by(stack, r) == 2 for r in run_ids), 60,
                   "two checks of each run stored, the third at its gate")
    own_postgres.stop("immediate")  # a crash, mid-run
    for control in controls:
        (control / "open-pg").touch()  # the next write of each run now fails
    stack.wait_for(lambda: log_count(worker, "raised unexpected", mark) >= 2, 60,
                   "both runs to hit the dead database")
    own_postgres.start()
    runs = stack.wait_for(lambda: all_finished(stack, run_ids), 120,
                          "both runs to be reaped and retried to success")
    seen = [count_evidence(stack, c) for c in conns]
    print(f"\npostgres restart: runs={[(r.status.value, r.attempts) for r in runs]}, "
          f"open runs left={open_runs(stack)}, evidence rows={[e.rows for e in seen]}, "
          f"duplicates={sum(e.duplicates for e in seen)}")
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 2
    assert all(r.attempts >= 2 for r in runs)
    assert open_runs(stack) == 0
    assert all(e.rows == e.distinct_resources == 6 * slow.CHECKS and e.duplicates == 0
               for e in seen)
