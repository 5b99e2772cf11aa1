"""kill -9 in the middle of a real AWS sync: the real connector (boto3) against moto's server
with the emulated acme estate, one of its S3 calls held at a proxy so the kill lands while the
sync is in flight, never after a sleep.

- The sync worker killed: a restarted worker and the reaper finish the run.
- The supervisor (`evidence up`) killed: every child dies with it, and a new `evidence up`
  finishes the run.

The broker's visibility timeout is an hour, as in production: what brings the run back is its
lease going stale (EVIDENCE_LEASE_STALE_SECONDS, seconds here: tests/faults/stack.py FAST) and
the reaper queueing it again, never a redelivery of the killed worker's message. Either way the
stored evidence is exactly the estate's expected verdicts, each row once with the one version a
clean sync writes. Each test prints what it saw (`pytest -s`).
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from connectors.aws.kit import Estate, seed_estate
from engine.models import (
    Account,
    Connection,
    ConnectionStatus,
    Evidence,
    EvidenceVersion,
    Frequency,
    RunStatus,
    SyncRun,
)
from engine.registry import get_connector
from engine.settings import Settings
from engine.vault import vault
from tests.emulators import reset_moto
from tests.faults.held import HeldProxy
from tests.faults.stack import (
    Stack,
    checks_verified_by,
    count_evidence,
    finished,
    get_run,
    log_count,
    request_run,
)
from tests.workers.test_process_lifecycle import Supervised, alive, gone, own_stack, up

REALISTIC_VISIBILITY = 3600
RECOVERY = 240  # seconds a killed sync may take to finish again on a loaded 2-core machine


@pytest.fixture(scope="module")
def held_aws(moto_endpoint: str) -> Iterator[HeldProxy]:
    """moto's server behind a proxy whose gate the test closes on one S3 call."""
    with HeldProxy(moto_endpoint) as proxy:
        yield proxy


@pytest.fixture
def estate(held_aws: HeldProxy) -> Iterator[Estate]:
    """The emulated acme estate, freshly seeded (straight into moto, not through the gate)."""
    reset_moto(held_aws.upstream)
    held_aws.gate.open()
    held_aws.gate.reset()
    try:
        yield seed_estate(held_aws.upstream)
    finally:
        held_aws.gate.open()


@pytest.fixture
def supervisors() -> Iterator[list[Supervised]]:
    """`evidence up` commands a test starts; their whole process trees are killed afterwards."""
    commands: list[Supervised] = []
    yield commands
    for command in commands:
        command.kill_everything()


@pytest.fixture
def beat_free(stack: Stack, db: None) -> Iterator[Stack]:
    """The package's stack without its beat: `evidence up` brings a beat of its own and one
    beat per database may run (the stack's reaper stops with it, so only `up` recovers)."""
    stack.stop("beat")
    try:
        yield stack
    finally:
        stack.beat()


def add_aws_connection(stack: Stack, estate: Estate, endpoint_url: str) -> str:
    """An active AWS connection of `acme` to the estate, reached at `endpoint_url` (the held
    proxy), with no scheduled sync (next_sync_at unset): only the test's request runs it."""
    aws = get_connector("aws")
    credentials = aws.parse_credentials({**estate.credentials(), "endpoint_url": endpoint_url})
    with stack.factory() as s, s.begin():
        s.execute(insert(Account).values(id="acme").on_conflict_do_nothing())
        conn = Connection(account_id="acme", integration_id="aws",
                          status=ConnectionStatus.ACTIVE, sync_frequency=Frequency.DAILY,
                          config={}, credentials_encrypted=vault(stack.settings).seal(
                              aws.dump_credentials(credentials)))
        s.add(conn)
        s.flush()
        return conn.id


def held_call(estate: Estate) -> str:
    """The one call the gate holds: GetBucketVersioning of the estate's first bucket (its
    collector waits on it while the other collectors read on)."""
    first = sorted(estate.expected["aws.s3.bucket_versioning"])[0]
    return f"GET /{first.rsplit(':', 1)[-1]}?versioning "


def running_pid(stack: Stack, run_id: str) -> int | None:
    """The pid of the worker process holding the run's lease, once one does."""
    run = get_run(stack, run_id)
    if run.status != RunStatus.RUNNING or run.worker is None:
        return None
    return int(run.worker.split(":")[1])


def stored_verdicts(stack: Stack, conn_id: str) -> dict[str, dict[str, str]]:
    """check id → resource → status of the connection's current evidence."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    with stack.factory() as s:
        for check_id, resource_id, status in s.execute(
                select(Evidence.check_id, Evidence.resource_id, Evidence.status)
                .where(Evidence.connection_id == conn_id, Evidence.closed_at.is_(None))):
            found[check_id][resource_id] = status.value
    return dict(found)


def versions_written(stack: Stack, conn_id: str) -> Counter[tuple[str | None, str]]:
    """(run, change) → how many evidence versions of the connection it wrote."""
    with stack.factory() as s:
        return Counter((run_id, change.value) for run_id, change in s.execute(
            select(EvidenceVersion.run_id, EvidenceVersion.change)
            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
            .where(Evidence.connection_id == conn_id)))


def versions_unlike_their_row(stack: Stack, conn_id: str) -> int:
    """Versions whose content is not the current row's (a clean sync has none)."""
    with stack.factory() as s:
        return s.scalar(
            select(func.count()).select_from(EvidenceVersion)
            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
            .where(Evidence.connection_id == conn_id,
                   EvidenceVersion.content_hash != Evidence.content_hash)) or 0


def runs_of(stack: Stack, conn_id: str) -> int:
    with stack.factory() as s:
        return s.scalar(select(func.count()).select_from(SyncRun)
                        .where(SyncRun.connection_id == conn_id)) or 0


def assert_exactly_one_clean_sync(stack: Stack, estate: Estate, conn_id: str,
                                  run: SyncRun) -> int:
    """The run finished on its second claim with the estate's verdicts, each row once and
    each with the single `created` version one clean sync writes; returns the row count."""
    total = sum(len(verdicts) for verdicts in estate.expected.values())
    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert run.attempts == 2  # the killed claim and the one that finished
    assert (run.evidence_count, run.errors) == (total, [])
    assert stored_verdicts(stack, conn_id) == estate.expected
    seen = count_evidence(stack, conn_id)
    assert seen.rows == seen.distinct_resources == total
    assert versions_written(stack, conn_id) == Counter({(run.id, "created"): total})
    assert versions_unlike_their_row(stack, conn_id) == 0
    assert runs_of(stack, conn_id) == 1
    return total


def test_a_sync_worker_killed_mid_aws_sync_is_replaced_and_the_evidence_is_exact(
        live: Stack, estate: Estate, held_aws: HeldProxy):
    assert live.settings.visibility_timeout == REALISTIC_VISIBILITY
    conn_id = add_aws_connection(live, estate, held_aws.url)
    held = held_call(estate)
    held_aws.gate.close(matching=held)
    run_id = request_run(live, conn_id)
    [first_task] = live.task_ids[run_id]
    live.wait_for(lambda: held_aws.gate.held, 120, f"the sync's call {held.strip()} to be held")
    pid = live.wait_for(lambda: running_pid(live, run_id), 30, "the run's lease to be held")
    assert pid is not None
    owner = live.name_of_pid(pid)
    calls_before = held_aws.gate.passed
    live.kill(owner)  # SIGKILL with the S3 call in flight
    killed_at = time.monotonic()
    cut = get_run(live, run_id)
    stored_at_kill = checks_verified_by(live, run_id)
    live.worker(owner, "sync", wait=False)  # what `evidence up` or compose does
    held_aws.gate.open()
    run = live.wait_for(lambda: finished(live, run_id), RECOVERY,
                        "the reaper to queue the killed run again and a worker to finish it")
    assert run is not None
    recovered = time.monotonic() - killed_at
    deliveries = log_count(live.procs[owner], f"sync.run[{first_task}] received")
    all_deliveries = sync_receipts(live.procs[owner].text())
    seen = count_evidence(live, conn_id)
    print(f"\nAWS sync kill -9: killed {owner} (pid {pid}) holding {held.strip()} after "
          f"{calls_before} AWS calls went through, {stored_at_kill} checks stored, run "
          f"{cut.status.value} attempt {cut.attempts}; run {run.status.value} on attempt "
          f"{run.attempts} {recovered:.1f}s after the kill (lease stale after "
          f"{live.settings.lease_stale_seconds:.0f}s, visibility timeout "
          f"{live.settings.visibility_timeout}s); the killed worker's message delivered "
          f"{deliveries} time(s), sync.run messages received by {owner} {all_deliveries}; "
          f"evidence rows={seen.rows} versions={seen.versions} duplicates={seen.duplicates}")
    assert (cut.status, cut.attempts) == (RunStatus.RUNNING, 1)
    assert deliveries == 1  # the broker never handed the killed worker's message out again
    total = assert_exactly_one_clean_sync(live, estate, conn_id, run)

    # What a clean sync of the same estate stores is what is there already: nothing changes.
    again_id = request_run(live, conn_id)
    again = live.wait_for(lambda: finished(live, again_id), RECOVERY, "a second sync to finish")
    assert again is not None
    print(f"a clean sync after it: {again.status.value}, {again.evidence_count} rows seen, "
          f"{again.changed_count} changed")
    assert (again.status, again.attempts, again.evidence_count) == (
        RunStatus.SUCCEEDED, 1, total)
    assert again.changed_count == 0
    assert versions_written(live, conn_id) == Counter({(run_id, "created"): total})


def test_kill_9_of_up_mid_aws_sync_takes_every_child_and_the_next_up_finishes_the_run(
        beat_free: Stack, settings: Settings, estate: Estate, held_aws: HeldProxy,
        supervisors: list[Supervised], tmp_path: Path):
    plan = Stack(settings, tmp_path / "plan")  # FAST timings, its own key prefix; no processes
    try:
        killed_up_mid_sync(plan, estate, held_aws, supervisors, tmp_path)
    finally:
        plan.stop_all()
        beat_free.use_as_job_sender()


def killed_up_mid_sync(plan: Stack, estate: Estate, held_aws: HeldProxy,
                       supervisors: list[Supervised], tmp_path: Path) -> None:
    assert plan.settings.visibility_timeout == REALISTIC_VISIBILITY
    conn_id = add_aws_connection(plan, estate, held_aws.url)
    env = own_stack(plan.env, tmp_path)
    first = up(supervisors, env, tmp_path / "up-1.log")
    first.wait_ready()
    held = held_call(estate)
    held_aws.gate.close(matching=held)
    run_id = request_run(plan, conn_id)
    first.wait_for(lambda: held_aws.gate.held, 120, f"the sync's call {held.strip()} to be held")
    pid = first.wait_for(lambda: running_pid(plan, run_id), 30, "the run's lease to be held")
    children = set(psutil.Process(first.popen.pid).children())
    tree = first.tree()
    owner = psutil.Process(pid)
    assert owner in children, f"the run is held by pid {pid}, not a worker of this `up`"
    owner_name = hostname_of(owner)

    first.popen.send_signal(signal.SIGKILL)  # the supervisor, with the S3 call in flight
    first.popen.wait(timeout=30)
    killed_at = time.monotonic()
    first.wait_for(lambda: gone(tree), 120, "every child and grandchild to die with `up`")
    orphans_gone = time.monotonic() - killed_at
    assert not alive(tree)
    cut = get_run(plan, run_id)
    # Nobody released the run: the new `up`'s reaper takes it once its heartbeat is stale.
    assert (cut.status, cut.attempts, running_pid(plan, run_id)) == (RunStatus.RUNNING, 1, pid)

    held_aws.gate.open()
    second = up(supervisors, env, tmp_path / "up-2.log")
    second.wait_ready()
    ready_after = time.monotonic() - killed_at
    run = second.wait_for(lambda: finished(plan, run_id), RECOVERY,
                          "the new `up` to take the run over and finish it")
    assert run is not None
    recovered = time.monotonic() - killed_at
    seen = count_evidence(plan, conn_id)
    received = sync_receipts(second.text())
    print(f"\nkill -9 of up mid AWS sync: the run's worker ({owner_name}, pid {pid}) held "
          f"{held.strip()}; {len(children)} children and {len(tree - children)} grandchildren "
          f"gone {orphans_gone:.1f}s after the kill; the new up ready after "
          f"{ready_after:.1f}s; run {run.status.value} on attempt {run.attempts} "
          f"{recovered:.1f}s after the kill; sync.run messages received by the new up's "
          f"workers {received}; evidence rows={seen.rows} versions={seen.versions} "
          f"duplicates={seen.duplicates}")
    assert_exactly_one_clean_sync(plan, estate, conn_id, run)
    second.popen.send_signal(signal.SIGTERM)
    assert second.popen.wait(timeout=120) == 0, second.text()[-6000:]


def sync_receipts(log: str) -> int:
    """How many sync.run messages a worker's log says were received."""
    return len(re.findall(r"Task sync\.run\[[0-9a-f-]+\] received", log))


def hostname_of(worker: psutil.Process) -> str:
    """The Celery hostname a worker process was started with (`sync@%h`, …)."""
    argv = worker.cmdline()
    return argv[argv.index("--hostname") + 1] if "--hostname" in argv else " ".join(argv[-3:])

