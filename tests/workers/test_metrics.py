"""GET /metrics on the API: the system's state read from Redis and Postgres when scraped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from cli.wiring import api_app
from engine.db import session_factory, unit_of_work
from engine.models import Account, Connection, ConnectionStatus, Trigger
from engine.settings import Settings
from engine.sync import request_sync


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True))
            for s in family.samples}


def test_metrics_show_queue_depth_due_connections_and_open_runs(settings: Settings, db: None):
    # A key space of its own: no worker of the suite consumes it, so messages stay queued.
    private = settings.model_copy(update={
        "redis_key_prefix": f"{settings.redis_key_prefix}metrics-{uuid.uuid4().hex[:6]}:"})
    client = api_app(private).test_client()
    before = scrape(client)
    assert before[("evidence_queue_depth", (("queue", "sync"),))] == 0
    assert before[("evidence_connections_due_not_dispatched", ())] == 0
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        s.add(Account(id="acme"))
        s.flush()
        s.add_all(Connection(account_id="acme", integration_id=f"p{i}",
                             status=ConnectionStatus.ACTIVE,
                             next_sync_at=now + timedelta(minutes=-5 if i < 3 else 5))
                  for i in range(5))
    with unit_of_work(private) as s:  # two manual requests, sent to the private broker
        for conn in s.query(Connection).order_by(Connection.integration_id).limit(2):
            request_sync(s, conn, Trigger.MANUAL)
    after = scrape(client)
    shown = {f"{name}{dict(labels) or ''}": value for (name, labels), value in after.items()
             if name.startswith("evidence_")}
    print(f"\napi metrics: {shown}")
    assert after[("evidence_queue_depth", (("queue", "sync"),))] == 2
    assert after[("evidence_queue_depth", (("queue", "default"),))] == 0
    assert after[("evidence_connections_due_not_dispatched", ())] == 3
    assert after[("evidence_sync_runs_open", (("status", "queued"),))] == 2
    assert after[("evidence_sync_runs_open", (("status", "running"),))] == 0


def test_metrics_stay_out_of_the_openapi_document(client):
    assert "/metrics" not in client.get("/openapi.json").get_json()["paths"]
