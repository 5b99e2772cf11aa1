"""WSGI entry point for gunicorn: `gunicorn cli.wsgi:app`."""

from __future__ import annotations

from cli.wiring import api_app
from engine.settings import get_settings

app = api_app(get_settings())
