"""The API wired to the task queue: its jobs go to Celery, /metrics reads Celery's queues.

api/ knows no task queue and workers/ serve no HTTP; this is where the two meet (gunicorn's
`cli.wsgi:app`, and the tests' apps).
"""

from __future__ import annotations

from functools import partial

from flask_openapi3 import OpenAPI

from api import create_app
from engine.settings import Settings
from workers.celery_app import job_sender, make_celery, queue_depths


def api_app(settings: Settings) -> OpenAPI:
    """The API for `settings`, sending its jobs to (and reading queue depth from) the broker
    of `settings`."""
    celery = make_celery(settings)
    return create_app(settings, send_job=job_sender(celery),
                      queue_depth=partial(queue_depths, celery))
