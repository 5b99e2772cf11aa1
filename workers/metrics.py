"""Worker metrics: one Prometheus HTTP endpoint per worker process.

A worker exports the counters and histograms of the runs it executed (engine/metrics.py) on
EVIDENCE_WORKER_METRICS_PORT. Tasks must run in that process, so use the `threads` pool (as
both pools of `evidence up` and docker-compose do); a prefork pool's children are not exported.
The system-wide gauges (queue depth, due connections) are served by the API's /metrics.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from engine.settings import Settings

log = logging.getLogger(__name__)


def serve_worker_metrics(settings: Settings) -> None:
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        log.info("worker metrics on http://%s:%d/metrics", settings.worker_metrics_host,
                 settings.worker_metrics_port)
