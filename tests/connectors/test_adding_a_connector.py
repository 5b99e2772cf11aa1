"""docs/DEVELOPING.md's "Adding a connector" checklist, proven on a connector package that lives
outside the source tree (tests/fixtures/acme_connector: its own package, mappings.yaml, kit and
a dist-info carrying the entry point). Installed for one test at a time, it passes the contract
test and syncs end to end through a real worker; no other test sees it."""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from connectors.base import ENTRY_POINT_GROUP, Connector
from connectors.testkit import kit_for
from engine import registry
from engine.db import _sender, set_job_sender
from engine.frameworks import catalog
from tests.conftest import running_worker, settings_env
from tests.connectors import test_contract
from tests.connectors.end_to_end import connect_sync_and_read_back
from workers.celery_app import make_celery

DISTRIBUTION = Path(__file__).resolve().parents[1] / "fixtures" / "acme_connector"


def _forget_acme() -> None:
    for name in [m for m in sys.modules if m.partition(".")[0] == "acme_connector"]:
        del sys.modules[name]
    importlib.invalidate_caches()
    registry.connectors.cache_clear()


@pytest.fixture
def acme() -> Iterator[type[Connector]]:
    """The distribution installed (on sys.path, found by importlib.metadata) for one test."""
    sys.path.insert(0, str(DISTRIBUTION))
    _forget_acme()
    try:
        yield registry.connectors()["acme"]
    finally:
        sys.path.remove(str(DISTRIBUTION))
        _forget_acme()


def test_the_fixture_connector_is_installed_for_no_other_test():
    assert "acme" not in {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "acme" not in registry.connectors()
    assert not any(check_id.startswith("acme.") for check_id in catalog().check_controls)


def test_an_installed_connector_package_passes_the_contract(acme: type[Connector]):
    assert acme.__module__ == "acme_connector"
    assert Path(sys.modules["acme_connector"].__file__ or "").is_relative_to(DISTRIBUTION)
    test_contract.test_the_registry_holds_the_builtin_connectors()
    test_contract.test_connector_metadata_is_complete("acme", acme)
    test_contract.test_every_check_is_documented_and_mapped_to_both_frameworks("acme", acme)
    test_contract.test_every_mapping_names_a_registered_check()
    assert acme.control_mappings is not None
    assert acme.control_mappings.is_relative_to(DISTRIBUTION)  # shipped in its own package


def test_an_installed_connector_package_syncs_end_to_end_through_a_worker(
        acme: type[Connector], client, auth, settings, tmp_path):
    # A worker of its own, with the distribution on its PYTHONPATH and a broker key space of
    # its own, so the suite's shared worker never takes a job for a connector it cannot load.
    own = settings.model_copy(update={"redis_key_prefix": f"acme-{uuid.uuid4().hex[:8]}:"})
    path = os.pathsep.join(filter(None, [str(DISTRIBUTION), os.environ.get("PYTHONPATH")]))
    celery = make_celery(own)
    saved = list(_sender)
    set_job_sender(lambda job: celery.send_task(job.name, args=list(job.args), queue=job.queue))
    try:
        with running_worker({**settings_env(own), "PYTHONPATH": path}, tmp_path / "worker.log",
                            concurrency=2), kit_for(acme).start() as kit:
            connect_sync_and_read_back(client, auth, settings, acme, kit.seed())
    finally:
        _sender[:] = saved
