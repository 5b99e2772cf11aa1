"""Faults survived by real worker and beat processes on the real Redis and Postgres.

Each test prints what it saw (`pytest -s` shows it): runs, attempts, rows, duplicates.
Timings are seconds (tests/faults/stack.py FAST): heartbeat 0.5 s, lease stale after 8 s,
reaper every second; the visibility timeout is an hour, as in production, except in the test of
the visibility-timeout trap, whose worker has 4 s.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from engine.models import Connection, ConnectionStatus, Frequency, RunStatus, SyncRun, Trigger
from engine.schedule import next_due
from tests.faults import slow
from tests.faults.stack import (
    Stack,
    add_connection,
    checks_verified_by,
    count_evidence,
    finished,
    get_run,
    log_count,
    make_due,
    request_run,
)

TRAP_SECONDS = 4


def test_a_sync_longer_than_the_visibility_timeout_is_executed_once(live: Stack, tmp_path: Path):
    control = tmp_path / "ctl"
    slow.control(control, resources=3, gate="trap", gate_before=0)
    conn = add_connection(live, control)
    # The trap itself: a sync worker whose broker hands an unacknowledged message out again
    # after 4 s (the stack's other workers keep the realistic hour).
    live.stop("worker-sync")
    worker = live.worker("worker-trap", "sync", EVIDENCE_VISIBILITY_TIMEOUT=str(TRAP_SECONDS))
    try:
        run_id = request_run(live, conn)
        [task] = live.task_ids[run_id]
        live.wait_for(lambda: slow.collections(control) == 1, 60, "the sync to start")
        # That copy must find the lease fresh and leave (its task returns None).
        live.wait_for(lambda: log_count(worker, f"sync.run[{task}] succeeded") >= 1, 90,
                      "the broker to redeliver the task and the copy to leave")
        (control / "open-trap").touch()
        run = live.wait_for(lambda: finished(live, run_id), 60, "the run to finish")
        received = log_count(worker, f"sync.run[{task}] received")
        left = log_count(worker, f"sync.run[{task}] succeeded") - 1
    finally:
        live.stop("worker-trap")
    print(f"\nvisibility trap: deliveries of the task={received}, copies that left at once="
          f"{left}, provider reads={slow.collections(control)}, run={run.status} "
          f"attempts={run.attempts}")
    assert received >= 2 and left >= 1
    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1)
    assert slow.collections(control) == 1  # the provider was read once
    assert count_evidence(live, conn).rows == 3 * slow.CHECKS


def test_a_worker_killed_mid_sync_is_recovered_and_the_evidence_stays_exact(live: Stack,
                                                                          tmp_path: Path):
    control, resources, rounds = tmp_path / "ctl", 20, 3
    conn = add_connection(live, control)
    live.worker("worker-sync-2", "sync", wait=False)  # a second sync worker carries on
    print()
    try:
        for round_no in range(rounds):
            slow.control(control, resources=resources, gate=f"kill{round_no}", gate_before=2,
                         salt=f"round-{round_no}")
            run_id = request_run(live, conn)
            live.wait_for(lambda: checks_verified_by(live, run_id) == 2, 60,  # noqa: B023
                          "two checks stored while the third waits at its gate")
            owner = live.name_of_pid(int(get_run(live, run_id).worker.split(":")[1]))
            live.kill(owner)  # SIGKILL in the middle of the sync
            killed_at = time.monotonic()
            (control / f"open-kill{round_no}").touch()
            live.worker(owner, "sync", wait=False)  # what `evidence up` or compose does
            run = live.wait_for(lambda: finished(live, run_id), 120,  # noqa: B023
                                "the killed run to be taken up again and finish")
            seen = count_evidence(live, conn)
            print(f"kill -9 round {round_no}: killed {owner}; run={run.status} "
                  f"attempts={run.attempts} recovered in {time.monotonic() - killed_at:.1f}s; "
                  f"evidence rows={seen.rows} versions={seen.versions} "
                  f"duplicates={seen.duplicates}")
            assert run.status == RunStatus.SUCCEEDED and run.attempts >= 2
            assert run.evidence_count == resources * slow.CHECKS
            assert seen.rows == seen.distinct_resources == resources * slow.CHECKS
            # every round changed every row once: one version each, none doubled by a replay
            assert seen.versions == seen.distinct_versions == (
                resources * slow.CHECKS * (round_no + 1))
    finally:
        live.stop("worker-sync-2")
    with live.factory() as s:
        assert s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))) == 0


def test_two_beats_never_sync_a_connection_twice_for_one_due_time(live: Stack, tmp_path: Path):
    control = tmp_path / "ctl"
    slow.control(control, resources=2)
    # Weekly, so a connection's own next slot rarely falls inside the test; when it does, that
    # is a fourth due time and is counted as one (below), not taken for a double dispatch.
    conns = [add_connection(live, control, account=f"acct-{i:02d}", frequency=Frequency.WEEKLY)
             for i in range(24)]
    started = db_now(live)
    # A second beat refuses to start while the first holds the beat lock; with the lock off it
    # runs, and dispatch's own claim must still keep every due time to one run.
    second = live.beat("beat-2", EVIDENCE_BEAT_LOCK="false")
    first = live.procs["beat"]
    default = live.procs["worker-default"]
    try:
        for due_time in range(1, 4):
            make_due(live, conns)
            live.wait_for(lambda: finished_scheduled(live) == len(conns) * due_time,  # noqa: B023
                          120, f"every connection synced for due time {due_time}")
        # a few more ticks of both beats, with nothing due
        ticks = (log_count(first, "Sending due task dispatch"),
                 log_count(second, "Sending due task dispatch"))
        live.wait_for(lambda: log_count(first, "Sending due task dispatch") >= ticks[0] + 3
                      and log_count(second, "Sending due task dispatch") >= ticks[1] + 3,
                      60, "three more ticks of each beat")
        done = log_count(default, "schedule.dispatch_due[")
        live.wait_for(lambda: log_count(default, "schedule.dispatch_due[") >= done + 6, 60,
                      "the default worker to run those ticks")
    finally:
        live.stop("beat-2")
    with live.factory() as s:
        per_connection = Counter(s.scalars(select(SyncRun.connection_id).where(
            SyncRun.trigger == Trigger.SCHEDULED)))
    ended = db_now(live)
    # three forced due times, plus the connection's own slot if it came round meanwhile
    expected = {c: 3 + (next_due(c, Frequency.WEEKLY, started) <= ended) for c in conns}
    histogram = Counter(per_connection.values())
    print(f"\ntwo beats: {log_count(first, 'Sending due task dispatch')} + "
          f"{log_count(second, 'Sending due task dispatch')} dispatch ticks, runs per "
          f"connection {dict(histogram)} over 3 due times, "
          f"duplicates={sum(max(0, n - expected[c]) for c, n in per_connection.items())}")
    assert per_connection == expected


def db_now(stack: Stack) -> datetime:
    with stack.factory() as s:
        return s.scalar(select(func.now()))


def finished_scheduled(stack: Stack) -> int:
    with stack.factory() as s:
        return s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.trigger == Trigger.SCHEDULED,
            SyncRun.status == RunStatus.SUCCEEDED)) or 0


def test_a_provider_that_keeps_failing_is_backed_off_not_hammered(live: Stack, tmp_path: Path):
    control = tmp_path / "ctl"
    slow.control(control, fail=True)
    conn_id = add_connection(live, control)
    delays = []
    for failures in (1, 2, 3):
        make_due(live, [conn_id])
        conn = live.wait_for(lambda: failed_times(live, conn_id, failures), 60,  # noqa: B023
                             f"failure {failures} to be recorded")
        delays.append(conn.next_sync_at - conn_last_finished(live, conn_id))
    calls = slow.collections(control)
    default = live.procs["worker-default"]
    done = log_count(default, "schedule.dispatch_due[")
    live.wait_for(lambda: log_count(default, "schedule.dispatch_due[") >= done + 3, 60,
                  "three more dispatch ticks")
    hours = [round(d / timedelta(hours=1), 2) for d in delays]
    print(f"\nbackoff: provider calls={slow.collections(control)} for 3 due times; next sync "
          f"pushed out by {hours} hours")
    assert slow.collections(control) == calls == 3  # once per due time, not per tick
    assert [int(d // timedelta(hours=1)) for d in delays] == [1, 3, 7]
    slow.control(control, fail=False)
    make_due(live, [conn_id])
    conn = live.wait_for(lambda: failed_times(live, conn_id, 0), 60, "the provider to recover")
    assert conn.next_sync_at - conn_last_finished(live, conn_id) <= timedelta(hours=1)


def failed_times(stack: Stack, conn_id: str, failures: int) -> Connection | None:
    with stack.factory() as s:
        conn = s.get_one(Connection, conn_id)
        open_runs = s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.connection_id == conn_id,
            SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING))))
        ran = s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.connection_id == conn_id))
    return conn if conn.consecutive_failures == failures and not open_runs and ran else None


def conn_last_finished(stack: Stack, conn_id: str):
    with stack.factory() as s:
        return s.scalar(select(func.max(SyncRun.finished_at)).where(
            SyncRun.connection_id == conn_id))


def test_a_second_sync_of_one_provider_for_an_account_waits_for_the_slot(live: Stack,
                                                                         tmp_path: Path):
    first_control, second_control = tmp_path / "a", tmp_path / "b"
    slow.control(first_control, resources=2, gate="slot", gate_before=0)
    slow.control(second_control, resources=2)
    first = add_connection(live, first_control)
    first_run = request_run(live, first)
    live.wait_for(lambda: slow.collections(first_control) == 1, 60, "the first sync to start")
    with live.factory() as s, s.begin():  # reconnected while the old sync still runs
        s.execute(update(Connection).where(Connection.id == first)
                  .values(status=ConnectionStatus.DISCONNECTED))
    second = add_connection(live, second_control)
    worker = live.procs["worker-sync"]
    second_run = request_run(live, second)
    task = live.task_ids[second_run][0]
    live.wait_for(lambda: log_count(worker, f"sync.run[{task}] retry: Retry in") >= 2, 60,
                  "the second run to be put back twice")
    waiting = get_run(live, second_run)
    assert (waiting.status, slow.collections(second_control)) == (RunStatus.QUEUED, 0)
    (first_control / "open-slot").touch()
    done = live.wait_for(lambda: finished(live, second_run), 60, "the second run to finish")
    retries = log_count(worker, f"sync.run[{task}] retry: Retry in")
    print(f"\nprovider slot: second run put back {retries} times while the first ran; "
          f"then {done.status}")
    assert done.status == RunStatus.SUCCEEDED
    assert get_run(live, first_run).status == RunStatus.SUCCEEDED
