"""GET /metrics: the system's state for Prometheus, read from Redis and Postgres when scraped.

Not a JSON API route, so it stays out of the OpenAPI document. Run counters and histograms are
exported by each worker on its own port (workers/metrics.py); any API process answers the
same figures here because they are read, not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from engine.db import session_factory
from engine.metrics import due_not_dispatched, open_runs
from engine.period_alerts import period_controls_uncovered, stale_connections
from engine.settings import Settings

QueueDepth = Callable[[], Mapping[str, int]]
"""Messages waiting in each queue, read from the broker when scraped (the wiring gives it)."""


class SystemState(Collector):
    """Queue depth per queue, due-but-not-dispatched connections, open runs by status, and the
    coverage alerts: connections and audit-period controls without a fresh result.

    The alerts' labels are bounded by the catalog, never by accounts: (provider, cause) and
    (framework, cause), a few dozen series however many tenants there are."""

    def __init__(self, settings: Settings, queue_depth: QueueDepth | None) -> None:
        self.settings = settings
        self.queue_depth = queue_depth

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("evidence_queue_depth", "Messages waiting in a Celery queue.",
                                  labels=["queue"])
        for queue, count in (self.queue_depth() if self.queue_depth else {}).items():
            depth.add_metric([queue], count)
        yield depth
        now = datetime.now(UTC)
        grace = timedelta(seconds=self.settings.freshness_grace_seconds)
        with session_factory(self.settings)() as session:
            due = due_not_dispatched(session, now)
            runs = open_runs(session)
            stale = stale_connections(session, now, grace)
            uncovered = period_controls_uncovered(session, now, grace)
        yield GaugeMetricFamily("evidence_connections_due_not_dispatched",
                                "Active connections whose slot has come but that no dispatch "
                                "tick has claimed yet.", value=due)
        open_family = GaugeMetricFamily("evidence_sync_runs_open", "Runs queued or running.",
                                        labels=["status"])
        for status, count in runs.items():
            open_family.add_metric([status.value], count)
        yield open_family
        stale_family = GaugeMetricFamily(
            "evidence_connections_without_fresh_result",
            "Live connections with no successful sync for longer than their sync period plus "
            "EVIDENCE_FRESHNESS_GRACE_SECONDS, by provider and cause.",
            labels=["provider", "cause"])
        for (provider, cause), count in sorted(stale.items()):
            stale_family.add_metric([provider, cause.value], count)
        yield stale_family
        period_family = GaugeMetricFamily(
            "evidence_period_controls_uncovered",
            "Controls of type_ii audits inside their period that have no fresh test result "
            "now (a coverage gap opening), by framework and cause.",
            labels=["framework", "cause"])
        for (framework, cause), count in sorted(uncovered.items()):
            period_family.add_metric([framework, cause.value], count)
        yield period_family


def register_metrics(app: Flask, settings: Settings,
                     queue_depth: QueueDepth | None = None) -> None:
    """GET /metrics; without a `queue_depth` reader the queue depth family has no samples."""
    registry = CollectorRegistry()
    registry.register(SystemState(settings, queue_depth))
    ProcessCollector(registry=registry)

    def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics)
