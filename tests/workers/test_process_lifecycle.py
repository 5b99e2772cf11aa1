"""`evidence up`, `api` and `beat` run like a service: children die with the supervisor, SIGTERM
drains within EVIDENCE_SHUTDOWN_SECONDS, one beat per database, "ready" only once /readyz
answers, and a sync cut short by a shutdown finishes exactly once afterwards.

Real processes throughout; every test stops everything it started (the supervisor's whole
process tree, looked up while it runs, is killed in teardown whatever happened).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from engine.models import RunStatus
from engine.settings import Settings
from tests.conftest import ROOT, TEST_ONLY_ENV, settings_env
from tests.emulators import free_port
from tests.faults import slow
from tests.faults.stack import (
    OwnRedis,
    Stack,
    add_connection,
    checks_verified_by,
    count_evidence,
    finished,
    get_run,
    request_run,
    wait_for,
)

EVIDENCE = [sys.executable, "-m", "cli.main"]
START = 180  # seconds a stack may take to come up on a loaded 2-core machine


class Supervised:
    """An `evidence` command started as a user starts it, with its log and process tree."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen([*EVIDENCE, *args], cwd=ROOT, env=env, stdout=out,
                                          stderr=out, start_new_session=True)
        self.seen: set[psutil.Process] = set()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tree(self) -> set[psutil.Process]:
        """Every descendant now (children and grandchildren), remembered for teardown."""
        try:
            found = set(psutil.Process(self.popen.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            found = set()
        self.seen |= found
        return found

    def wait_for(self, condition, timeout: float, what: str):  # noqa: ANN001, ANN201
        return wait_for(condition, timeout, what, lambda: self.text()[-6000:], interval=0.3)

    def wait_ready(self) -> None:
        self.wait_for(lambda: "ready: API on" in self.text() or self.popen.poll() is not None,
                      START, "`evidence up` to say ready")
        assert self.popen.poll() is None, self.text()

    def kill_everything(self) -> None:
        self.tree()
        for proc in [*self.seen, psutil.Process(self.popen.pid)] if self.popen.poll() is None \
                else self.seen:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)


def gone(procs: set[psutil.Process]) -> bool:
    """Every one has exited (a zombie waiting for a parent that never reaps counts as exited)."""
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def alive(procs: set[psutil.Process]) -> list[str]:
    return [f"{p.pid} {' '.join(p.cmdline()[:6])}" for p in procs
            if not gone({p}) and _exists(p)]


def _exists(proc: psutil.Process) -> bool:
    try:
        proc.cmdline()
        return True
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Supervised]]:
    """Commands a test starts; their whole process trees are killed afterwards."""
    commands: list[Supervised] = []
    yield commands
    for command in commands:
        command.kill_everything()


def stack_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The suite's services, a key prefix, a port and a data folder of the stack's own."""
    base = {**os.environ, **settings_env(settings), **TEST_ONLY_ENV,
            "EVIDENCE_REDIS_KEY_PREFIX": f"life-{os.urandom(4).hex()}:"}
    return own_stack(base, tmp_path, **extra)


def own_stack(base: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**base, "COLUMNS": "200", "EVIDENCE_API_PORT": str(free_port()),
            "EVIDENCE_DATA_DIR": str(tmp_path / "data"), "EVIDENCE_WORKER_CONCURRENCY": "2",
            **extra}


def up(started: list[Supervised], env: dict[str, str], log: Path) -> Supervised:
    command = Supervised(["up"], env, log)
    started.append(command)
    return command


def test_kill_9_of_up_takes_every_child_and_grandchild_with_it(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    stack = up(started, stack_env(settings, tmp_path), tmp_path / "up.log")
    stack.wait_ready()
    children = set(psutil.Process(stack.popen.pid).children())
    tree = stack.tree()
    names = " ".join(" ".join(p.cmdline()) for p in children)
    assert len(children) == 4 and "gunicorn" in names and "beat" in names, names
    assert tree - children, "gunicorn's workers are grandchildren of `evidence up`"

    stack.popen.send_signal(signal.SIGKILL)
    stack.popen.wait(timeout=30)
    stack.wait_for(lambda: gone(tree), 60, "every child and grandchild to die with `up`")
    print(f"\nkill -9 of up: {len(children)} children and {len(tree - children)} "
          "grandchildren gone")


def test_sigterm_to_up_drains_every_process_and_exits_0(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    stack = up(started, stack_env(settings, tmp_path, EVIDENCE_SHUTDOWN_SECONDS="60"),
               tmp_path / "up.log")
    stack.wait_ready()
    tree = stack.tree()

    stack.popen.send_signal(signal.SIGTERM)
    assert stack.popen.wait(timeout=120) == 0, stack.text()
    assert gone(tree), alive(tree)
    assert "did not stop within" not in stack.text()  # idle: each drained on SIGTERM alone
    assert not (tmp_path / "data" / "postgres").exists()  # the suite's database, not embedded


def test_sigterm_to_evidence_api_stops_gunicorn_and_its_workers(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    env = stack_env(settings, tmp_path)
    api = Supervised(["api"], env, tmp_path / "api.log")
    started.append(api)
    url = f"http://127.0.0.1:{env['EVIDENCE_API_PORT']}"
    api.wait_for(lambda: answers(f"{url}/healthz") or api.popen.poll() is not None, START,
                 "the API to answer")
    tree = api.tree()
    assert len(tree) >= 3, "gunicorn's master and two workers"
    control = Path(env["EVIDENCE_DATA_DIR"]) / f"gunicorn-{env['EVIDENCE_API_PORT']}.ctl"
    assert control.is_socket(), "gunicorn's control socket is under the data folder"

    api.popen.send_signal(signal.SIGTERM)
    assert api.popen.wait(timeout=120) == 0, api.text()
    assert gone(tree), alive(tree)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_a_second_beat_refuses_to_start_while_the_first_holds_the_lock(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    # One data folder: the second must not touch the first's schedule file. A beat is running
    # once it sends its first task (dispatch every second here).
    env = stack_env(settings, tmp_path, EVIDENCE_DISPATCH_SECONDS="1")
    first = Supervised(["beat"], env, tmp_path / "beat-1.log")
    started.append(first)
    first.wait_for(lambda: "Sending due task" in first.text() or first.popen.poll() is not None,
                   START, "the first beat to start")
    assert first.popen.poll() is None, first.text()

    second = Supervised(["beat"], env, tmp_path / "beat-2.log")
    started.append(second)
    assert second.popen.wait(timeout=START) == 3, second.text()
    assert "holds the beat lock of this database" in second.text()
    assert "Sending due task" not in second.text()
    assert first.popen.poll() is None

    first.popen.send_signal(signal.SIGTERM)
    assert first.popen.wait(timeout=120) == 0, first.text()
    third = Supervised(["beat"], env, tmp_path / "beat-3.log")
    started.append(third)
    third.wait_for(lambda: "Sending due task" in third.text() or third.popen.poll() is not None,
                   START, "a beat to start once the first is gone")
    assert third.popen.poll() is None, third.text()
    third.popen.send_signal(signal.SIGTERM)
    assert third.popen.wait(timeout=120) == 0, third.text()


def test_a_second_up_on_the_same_database_stops_instead_of_adding_a_beat(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    env = stack_env(settings, tmp_path / "one")
    first = up(started, env, tmp_path / "up-1.log")
    first.wait_ready()
    second = up(started, own_stack(env, tmp_path / "two"), tmp_path / "up-2.log")
    assert second.popen.wait(timeout=START) == 3, second.text()
    assert "holds the beat lock of this database" in second.text()
    assert first.popen.poll() is None and "beat exited" not in first.text()
    first.popen.send_signal(signal.SIGTERM)
    assert first.popen.wait(timeout=120) == 0, first.text()


def test_up_says_ready_only_once_readyz_answers(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    broker = OwnRedis(tmp_path / "redis")  # not started yet: the broker is unreachable
    env = stack_env(settings, tmp_path, REDIS_URL=broker.url)
    url = f"http://127.0.0.1:{env['EVIDENCE_API_PORT']}"
    stack = up(started, env, tmp_path / "up.log")
    try:
        stack.wait_for(lambda: answers(f"{url}/healthz"), START, "the API to be live")
        probe = requests.get(f"{url}/readyz", timeout=10)
        assert probe.status_code == 503
        assert probe.json()["checks"] == {"database": "ok", "broker": "unreachable",
                                          "migrations": "ok"}
        assert "ready: API on" not in stack.text()

        broker.start()
        stack.wait_ready()
        assert requests.get(f"{url}/readyz", timeout=10).json()["status"] == "ready"
    finally:
        stack.kill_everything()
        broker.kill()


def test_a_sync_cut_short_by_sigterm_of_up_finishes_exactly_once_after(
        settings: Settings, db: None, tmp_path: Path, started: list[Supervised]):
    """The worker drains past EVIDENCE_SHUTDOWN_SECONDS and is killed mid-run; `up` releases
    the run's lease, and the next `up` (its reaper) runs it again at once: every result once,
    no version twice."""
    plan = Stack(settings, tmp_path / "stack")  # its settings (FAST) and helpers; no processes
    try:
        cut_short_and_resumed(plan, tmp_path, started)
    finally:
        plan.stop_all()  # this process's jobs go to the default broker again


def cut_short_and_resumed(plan: Stack, tmp_path: Path, started: list[Supervised]) -> None:
    control = tmp_path / "ctl"
    slow.control(control, resources=3, gate="hold", gate_before=2)
    conn = add_connection(plan, control)
    env = own_stack(plan.env, tmp_path, EVIDENCE_SHUTDOWN_SECONDS="3")
    first = up(started, env, tmp_path / "up-1.log")
    first.wait_ready()
    run_id = request_run(plan, conn)
    first.wait_for(lambda: checks_verified_by(plan, run_id) == 2, 120,
                   "two checks stored while the third waits at its gate")

    first.popen.send_signal(signal.SIGTERM)
    assert first.popen.wait(timeout=120) == 0, first.text()
    assert "worker-sync did not stop within 3s; killing it" in first.text()
    assert "released 1 leases held by stopped workers" in first.text()
    cut = get_run(plan, run_id)
    assert cut.status == RunStatus.RUNNING and cut.heartbeat_at is None  # released, not done

    (control / "open-hold").touch()
    second = up(started, env, tmp_path / "up-2.log")
    second.wait_ready()
    run = second.wait_for(lambda: finished(plan, run_id), 180, "the run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert run.attempts == 2
    seen = count_evidence(plan, conn)
    assert seen.rows == seen.distinct_resources == 3 * slow.CHECKS
    assert seen.versions == seen.distinct_versions == 3 * slow.CHECKS
    second.popen.send_signal(signal.SIGTERM)
    assert second.popen.wait(timeout=120) == 0, second.text()
    print(f"\nsync cut short by SIGTERM: finished on attempt {run.attempts} with {seen.rows} "
          f"evidence rows, {seen.duplicates} duplicates")


def test_up_on_embedded_services_leaves_nothing_running_after_sigterm(
        tmp_path: Path, started: list[Supervised]):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("EVIDENCE_")}
    env = own_stack(env, tmp_path)
    stack = up(started, env, tmp_path / "up.log")
    try:
        stack.wait_ready()
        tree = stack.tree()
        assert servers_on(tmp_path / "data"), "embedded PostgreSQL and Redis run for `up`"
        stack.popen.send_signal(signal.SIGTERM)
        assert stack.popen.wait(timeout=180) == 0, stack.text()
        assert gone(tree), alive(tree)
        stack.wait_for(lambda: not servers_on(tmp_path / "data"), 60,
                       "the embedded servers to stop")
    finally:
        for proc in servers_on(tmp_path / "data"):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def servers_on(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names the data folder (the embedded servers)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(data_dir) in arg for arg in proc.info["cmdline"] or []) and not gone({proc}):
            found.append(proc)
    return found
