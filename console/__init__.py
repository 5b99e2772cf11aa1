"""The web console: server-rendered pages over the same engine calls as the JSON API.

`register_console(app, settings)` adds the `/console` pages to the Flask app. Sign-in is through
the deployment's OpenID Connect provider (console/oidc.py, when EVIDENCE_OIDC_* are set) or by a
single-use login link (`evidence login-link --account ID`); either way the session is a
server-side row named by an HttpOnly cookie, and every state-changing request carries a CSRF
token (Flask-WTF, checked on the console's routes only: the JSON API takes bearer tokens and no
cookie).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask

from console import apikeys as _apikeys  # noqa: F401  (its routes, and audits', join bp)
from console import integrations as _integrations  # noqa: F401  (its routes join bp)
from console import oidc as _oidc  # noqa: F401  (its routes join bp)
from console import period as _period  # noqa: F401  (its routes join bp and the portal's)
from console.auditor import register_auditor_portal
from console.views import bp, csrf
from console.words import register_filters
from engine.settings import Settings
from engine.tokens import jwt_secret


def register_console(app: Flask, settings: Settings) -> None:
    """Serve the console under /console on `app`."""
    secure = settings.public_base_url.lower().startswith("https://")
    if not app.secret_key:
        # Signs the CSRF cookie only; derived so the JWT secret itself never signs a cookie.
        app.secret_key = hmac.new(jwt_secret(settings).encode(), b"evidence-engine console",
                                  hashlib.sha256).hexdigest()
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the console blueprint, not on the API
        WTF_CSRF_TIME_LIMIT=settings.console_session_seconds,
        SESSION_COOKIE_NAME="evidence_console_csrf", SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure)
    csrf.init_app(app)
    register_filters(app)
    app.register_blueprint(bp)
    register_auditor_portal(app)  # /auditor: the invited auditor's pages

