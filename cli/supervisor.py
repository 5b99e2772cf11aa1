"""Child processes supervised the way systemd or Kubernetes would run a service.

Each child runs in a process group of its own (so stopping it stops its children too) and dies
with the supervisor: PR_SET_PDEATHSIG kills it when the supervisor's thread that started it is
gone, even after `kill -9`. Its own children end in turn (gunicorn workers leave when their
master is gone, billiard pool processes carry the same signal). SIGTERM or SIGINT to the
supervisor drains: SIGTERM to every child group, up to `shutdown_seconds` for them to exit,
then SIGKILL to whatever is left. `on_exit` hears of every child gone (`evidence up` releases
the leases its workers held, so the work they were killed in is taken over at once).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from rich.console import Console

from engine.beat_lock import BEAT_LOCKED_EXIT

console = Console(stderr=True)

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: SIGKILL this child when its parent dies (Linux), and never outlive a
    parent that died before the signal was set."""
    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    return preexec


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's process group (the child and everything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class Children:
    """Child processes started together and stopped together.

    A child started with `restart=True` (workers, beat) is started again when it dies, say
    killed by hand, unless it keeps dying (5 times in a minute) or is a beat that found another
    beat holding the lock. `stopping` is set by SIGTERM/SIGINT (see `stop_on_signals`).
    """

    def __init__(self, shutdown_seconds: float = 30.0,
                 on_exit: Callable[[list[int]], None] | None = None) -> None:
        self.shutdown_seconds = shutdown_seconds
        self.on_exit = on_exit  # told the pids of children that have exited (say, to release)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()
        self._restartable: dict[str, tuple[list[str], dict[str, str], bool]] = {}
        self._restarts: dict[str, list[float]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], quiet: bool = False,
              restart: bool = False) -> subprocess.Popen[bytes]:
        proc = self._spawn(argv, env, quiet)
        self.procs.append((name, proc))
        if restart:
            self._restartable[name] = (argv, env, quiet)
        return proc

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str], quiet: bool) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if quiet else None
        return subprocess.Popen(argv, env=env, stdout=out, stderr=out, process_group=0,
                                preexec_fn=_die_with_parent(os.getpid()))  # noqa: PLW1509

    def check(self) -> int | None:
        """One pass: restart the restartable children that died; the exit code of one that
        ends the group (not restartable, or dying too often), else None."""
        for index, (name, proc) in enumerate(self.procs):
            code = proc.poll()
            if code is None:
                continue
            console.log(f"{name} exited with {code}")
            self._exited([proc.pid])
            if code == BEAT_LOCKED_EXIT and name == "beat":
                console.log("another beat holds this database's beat lock (is another "
                            "`evidence up` or `evidence beat` running?); stopping")
                return code
            if not self._may_restart(name):
                return code
            argv, env, quiet = self._restartable[name]
            self.procs[index] = (name, self._spawn(argv, env, quiet))
            console.log(f"{name} restarted")
        return None

    def wait_any(self) -> int:
        """Supervise until a child ends the group (its exit code) or a stop is asked (0)."""
        while not self.stopping.is_set():
            code = self.check()
            if code is not None:
                return code
            self.stopping.wait(0.5)
        return 0

    def _may_restart(self, name: str) -> bool:
        if name not in self._restartable or self.stopping.is_set():
            return False
        recent = [t for t in self._restarts.get(name, []) if t > time.monotonic() - 60]
        self._restarts[name] = [*recent, time.monotonic()]
        return len(recent) < 5

    def stop(self) -> None:
        """SIGTERM to every child's group, up to `shutdown_seconds` to drain, then SIGKILL."""
        self.stopping.set()
        for _, proc in self.procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_seconds
        for name, proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                console.log(f"{name} did not stop within {self.shutdown_seconds:g}s; killing it")
        for _, proc in self.procs:
            _signal_group(proc, signal.SIGKILL)  # the child, if still there, and any leftover
            proc.wait()
        self._exited([proc.pid for _, proc in self.procs])

    def _exited(self, pids: list[int]) -> None:
        if self.on_exit is None or not pids:
            return
        try:
            self.on_exit(pids)
        except Exception as exc:  # noqa: BLE001 - best effort: staleness releases them anyway
            console.log(f"could not release what exited processes held: {exc}")


@contextlib.contextmanager
def stop_on_signals(children: Children) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT ask `children` to stop (the caller then drains)."""
    def ask_stop(signum: int, _frame: FrameType | None) -> None:
        if not children.stopping.is_set():
            console.log(f"{signal.Signals(signum).name} received; stopping")
        children.stopping.set()

    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def supervise(children: Children, start: Callable[[], None],
              on_tick: Callable[[], None] = lambda: None) -> int:
    """Start the children under signal handling, supervise them until one ends the group or a
    signal asks a stop, then drain them. Returns the deciding child's exit code, or 0 when the
    stop was asked for."""
    with stop_on_signals(children):
        try:
            if not children.stopping.is_set():
                start()
            while not children.stopping.is_set():
                code = children.check()
                if code is not None:
                    return code
                on_tick()
                children.stopping.wait(0.5)
            return 0
        finally:
            children.stop()
