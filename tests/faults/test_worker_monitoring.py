"""Watching the workers: Flower's HTTP API and each worker's Prometheus metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from engine.models import RunStatus
from tests.emulators import free_port
from tests.faults import slow
from tests.faults.stack import Stack, add_connection, finished, request_run


def get_json(url: str) -> Any:
    try:
        resp = requests.get(url, timeout=10)
    except requests.RequestException:
        return None
    return resp.json() if resp.status_code == 200 else None


def test_flower_shows_the_workers_and_a_finished_sync(live: Stack, tmp_path: Path):
    base = f"http://127.0.0.1:{free_port()}"
    live.flower(int(base.rsplit(":", 1)[1]))
    try:
        live.wait_for(lambda: get_json(f"{base}/api/workers?refresh=1"), 90,
                      "`evidence flower` to answer with the workers")
        control = tmp_path / "ctl"
        slow.control(control, resources=2)
        run_id = request_run(live, add_connection(live, control))
        assert live.wait_for(lambda: finished(live, run_id), 60,
                             "the sync to finish").status == RunStatus.SUCCEEDED
        workers = live.wait_for(lambda: [name for name in get_json(
            f"{base}/api/workers?refresh=1") or {} if name.startswith("worker-")], 60,
            "Flower to list the stack's workers")
        tasks = live.wait_for(lambda: [t for t in (get_json(
            f"{base}/api/tasks?taskname=sync.run") or {}).values()
            if run_id in str(t.get("args")) and t.get("state") == "SUCCESS"], 60,
            "Flower to show the finished sync.run task")
    finally:
        live.stop("flower")
    print(f"\nflower: workers={sorted(workers)}; task {tasks[0]['uuid']} {tasks[0]['name']} "
          f"{tasks[0]['state']} result={tasks[0].get('result')}")
    assert any(name.startswith("worker-sync-") for name in workers)
    assert any(name.startswith("worker-default-") for name in workers)
    assert tasks[0]["worker"].startswith("worker-sync-")


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(url, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_workers_metrics_move_with_the_runs_it_executes(live: Stack, tmp_path: Path):
    url = live.metrics_url("worker-sync")
    before = live.wait_for(lambda: _try(samples, url), 30, "the worker's metrics endpoint")
    good, bad = tmp_path / "good", tmp_path / "bad"
    slow.control(good, resources=3)
    slow.control(bad, fail=True)
    runs = [request_run(live, add_connection(live, good, account="m-good")),
            request_run(live, add_connection(live, bad, account="m-bad"))]
    for run_id in runs:
        live.wait_for(lambda: finished(live, run_id), 60, "the runs to finish")  # noqa: B023
    after = samples(url)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"provider": "slow", **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    figures = {
        "started": moved("evidence_sync_runs_started_total"),
        "succeeded": moved("evidence_sync_runs_finished_total", status="succeeded"),
        "partial": moved("evidence_sync_runs_finished_total", status="partial"),
        "durations": moved("evidence_sync_run_duration_seconds_count"),
        "rows": moved("evidence_rows_written_total"),
        "errored": moved("evidence_checks_errored_total"),
    }
    print(f"\nworker metrics moved: {figures}")
    # rows: 3 resources per check, plus the failing run's one "could not read" row per check
    assert figures == {"started": 2, "succeeded": 1, "partial": 1, "durations": 2,
                       "rows": 3 * slow.CHECKS + slow.CHECKS, "errored": slow.CHECKS}


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except requests.RequestException:
        return None
