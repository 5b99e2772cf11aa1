"""`evidence up` keeps its workers and beat running: one killed by hand is started again."""

from __future__ import annotations

import signal
import sys
import threading

from engine.cli import Children
from tests.faults.stack import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_worker_killed_by_hand_is_restarted_and_the_stack_keeps_running():
    children = Children()
    children.start("api", SLEEPER, {}, quiet=True)
    worker = children.start("worker-sync", SLEEPER, {}, quiet=True, restart=True)
    exit_code: list[int] = []
    waiter = threading.Thread(target=lambda: exit_code.append(children.wait_any()), daemon=True)
    waiter.start()
    try:
        worker.send_signal(signal.SIGKILL)
        restarted = wait_for(lambda: restarted_worker(children, worker.pid), 30,
                             "the worker to restart")
        assert waiter.is_alive() and not exit_code
        api = next(p for n, p in children.procs if n == "api")
        api.send_signal(signal.SIGTERM)  # a child that is not restartable ends `up`
        waiter.join(timeout=30)
        assert exit_code == [-signal.SIGTERM]
        assert restarted.poll() is None
    finally:
        children.stop()


def restarted_worker(children: Children, old_pid: int):
    return next((p for n, p in children.procs
                 if n == "worker-sync" and p.pid != old_pid and p.poll() is None), None)
