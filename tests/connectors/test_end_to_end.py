"""Every registered connector, end to end against its own test kit (`connectors/<id>/kit/`)."""

from __future__ import annotations

import pytest

from connectors.testkit import kit_for
from engine.registry import connectors
from tests.conftest import TEST_ONLY_ENV
from tests.connectors.end_to_end import connect_sync_and_read_back

REGISTERED = sorted(connectors())


@pytest.mark.parametrize("connector_id", REGISTERED)
def test_connect_sync_and_read_back_exactly_the_kits_estate(connector_id, client, auth,
                                                            worker, settings):
    cls = connectors()[connector_id]
    kit = kit_for(cls)
    assert kit.environment.items() <= TEST_ONLY_ENV.items(), \
        "the suite's worker runs connectors with TEST_ONLY_ENV: add the kit's environment there"
    with kit.start() as running:
        connect_sync_and_read_back(client, auth, settings, cls, running.seed())
