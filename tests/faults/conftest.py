"""Tests that start real processes. One stack for the package: a `sync` worker (metrics on a
port), a `default` worker and a beat; a module that restarts servers brings its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.settings import Settings
from tests.emulators import free_port
from tests.faults.stack import Stack, empty_database


@pytest.fixture(scope="package")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(settings, tmp_path_factory.mktemp("stack"))
    empty_database(stack.settings)
    try:
        stack.worker("worker-default", "default", concurrency=4, wait=False)
        stack.worker("worker-sync", "sync", concurrency=2, wait=False,
                     EVIDENCE_WORKER_METRICS_PORT=str(free_port()))
        stack.beat(wait=False)
        stack.ready("worker-default", "worker-sync", "beat")
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def live(stack: Stack, db: None) -> Stack:
    """The package's stack, on an empty database, with a sync worker running."""
    if "worker-sync" not in stack.procs or not stack.procs["worker-sync"].alive:
        stack.worker("worker-sync", "sync", concurrency=2)
    stack.ready("worker-sync")
    stack.use_as_job_sender()
    return stack
