"""The HTTP API: a thin Flask app that parses requests and calls the engine."""

from __future__ import annotations

from flask import Flask

from api.errors import register_error_handlers
from api.integrations import bp as integrations_bp
from engine.db import set_job_sender
from engine.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for `settings` (default: the environment); jobs go to its Celery broker."""
    from workers.celery_app import make_celery

    settings = settings or get_settings()
    app = Flask("evidence_engine")
    app.config["SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    celery = make_celery(settings)
    set_job_sender(lambda job: celery.send_task(job.name, args=list(job.args), queue=job.queue))
    register_error_handlers(app)
    app.register_blueprint(integrations_bp)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
