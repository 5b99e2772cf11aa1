"""kill -9 of the workers running parts of a fanned-out sync: the reaper gives the parts back,
the run closes once, and the evidence is exact with no duplicate rows or versions."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from engine.models import RunStatus, SyncPart, SyncRun
from tests.faults import slow
from tests.faults.stack import (
    Stack,
    add_connection,
    count_evidence,
    finished,
    get_run,
    request_run,
)

FANNED = {"EVIDENCE_SYNC_PARTS": str(slow.CHECKS)}


def parts_of(live: Stack, run_id: str) -> list[SyncPart]:
    with live.factory() as s:
        return list(s.scalars(select(SyncPart).where(SyncPart.run_id == run_id)
                              .order_by(SyncPart.part_no)))


def test_killed_part_workers_are_replaced_and_the_run_closes_with_exact_evidence(
        live: Stack, tmp_path: Path):
    control = tmp_path / "ctl"
    resources = 4
    conn = add_connection(live, control, integration="slowsplit")
    live.stop("worker-sync")  # only workers that fan out take these runs
    names = ["worker-fan-1", "worker-fan-2"]
    for name in names:
        live.worker(name, "sync", concurrency=2, wait=False, **FANNED)
    live.ready(*names)
    print()
    try:
        for round_no in range(2):
            # checks 2 and 3 wait at the gate: their parts are running when the kill comes
            slow.control(control, resources=resources, gate=f"fan{round_no}", gate_before=2,
                         salt=f"round-{round_no}")
            run_id = request_run(live, conn)
            live.wait_for(lambda: [p.status for p in parts_of(live, run_id)]  # noqa: B023
                          == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED,
                              RunStatus.RUNNING, RunStatus.RUNNING],
                          60, "two parts done and two waiting at the gate")
            owners = {live.name_of_pid(int((p.worker or "").split(":")[1]))
                      for p in parts_of(live, run_id) if p.status == RunStatus.RUNNING}
            for owner in owners:
                live.kill(owner)  # SIGKILL with a part in hand
            killed_at = time.monotonic()
            (control / f"open-fan{round_no}").touch()
            for owner in owners:
                live.worker(owner, "sync", wait=False)  # its supervisor restarts it
            run = live.wait_for(lambda: finished(live, run_id), 120,  # noqa: B023
                                "the killed parts to be taken up again and the run to close")
            assert run is not None
            parts = parts_of(live, run_id)
            seen = count_evidence(live, conn)
            print(f"fan-out kill -9 round {round_no}: killed {sorted(owners)}; "
                  f"run={run.status} parts={[(p.status.value, p.attempts) for p in parts]} "
                  f"recovered in {time.monotonic() - killed_at:.1f}s; rows={seen.rows} "
                  f"versions={seen.versions} duplicates={seen.duplicates}")
            assert run.status == RunStatus.SUCCEEDED and run.parts == slow.CHECKS
            assert [p.attempts for p in parts][2:] == [2, 2]  # the killed ones ran again
            assert run.evidence_count == resources * slow.CHECKS
            assert seen.rows == seen.distinct_resources == resources * slow.CHECKS
            assert seen.versions == seen.distinct_versions == (
                resources * slow.CHECKS * (round_no + 1))
    finally:
        live.stop(*names)
    with live.factory() as s:
        assert s.scalars(select(SyncRun.status)).all() == [RunStatus.SUCCEEDED] * 2
        assert get_run(live, run_id).finished_at is not None
