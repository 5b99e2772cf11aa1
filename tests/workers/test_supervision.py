"""`evidence up` keeps its workers and beat running: one killed by hand is started again; its
children die with it, and a stop kills what SIGTERM does not end within the bound."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from cli.main import Children
from tests.faults.stack import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_worker_killed_by_hand_is_restarted_and_the_stack_keeps_running():
    """Supervised from this (main) thread, as `evidence up` does: a child dies with the thread
    that started it, so the killing is done from another."""
    children = Children()
    children.start("api", SLEEPER, {}, quiet=True)
    worker = children.start("worker-sync", SLEEPER, {}, quiet=True, restart=True)
    seen: dict[str, subprocess.Popen[bytes]] = {}

    def operator() -> None:
        worker.send_signal(signal.SIGKILL)
        seen["restarted"] = wait_for(lambda: restarted_worker(children, worker.pid), 30,
                                     "the worker to restart")
        api = next(p for n, p in children.procs if n == "api")
        api.send_signal(signal.SIGTERM)  # a child that is not restartable ends `up`

    hand = threading.Thread(target=operator, daemon=True)
    hand.start()
    try:
        assert children.wait_any() == -signal.SIGTERM
        hand.join(timeout=30)
        assert seen["restarted"].poll() is None
    finally:
        children.stop()


def restarted_worker(children: Children, old_pid: int):
    return next((p for n, p in children.procs
                 if n == "worker-sync" and p.pid != old_pid and p.poll() is None), None)


# A child that ignores SIGTERM and starts a grandchild in its own process group.
STUBBORN = [sys.executable, "-c",
            "import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "grandchild = subprocess.Popen([sys.executable, '-c',\n"
            "                               'import time; time.sleep(120)'])\n"
            "print(grandchild.pid, flush=True)\n"
            "time.sleep(120)\n"]


def test_stop_kills_a_child_that_ignores_sigterm_after_the_bound_and_its_grandchild(
        tmp_path: Path):
    children = Children(shutdown_seconds=1)
    out = tmp_path / "out"
    with out.open("wb") as sink:
        child = subprocess.Popen(STUBBORN, stdout=sink, process_group=0)
    children.procs.append(("stubborn", child))
    try:
        grandchild = int(wait_for(lambda: out.read_text().strip(), 60, "the grandchild's pid"))
        children.stop()
        assert child.returncode == -signal.SIGKILL
        wait_for(lambda: not alive(grandchild), 30, "the grandchild to die with the group")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def test_a_child_dies_with_the_thread_that_started_it(tmp_path: Path):
    """PR_SET_PDEATHSIG: the child gets SIGKILL when its parent (thread) is gone."""
    children = Children()
    started: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(
        target=lambda: started.append(children.start("sleeper", SLEEPER, {}, quiet=True)))
    thread.start()
    thread.join()
    child = started[0]
    try:
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        children.stop()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False
