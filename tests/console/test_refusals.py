"""The console's refusals through the Flask client, across every route: no state-changing
request without its CSRF token, a session past its absolute expiry however active."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text, update

from engine.db import unit_of_work
from engine.models.console import ConsoleSession


def _rows(settings) -> dict[str, int]:
    """Rows of every table but the session's own bookkeeping."""
    with unit_of_work(settings) as session:
        tables = session.scalars(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('alembic_version', 'console_session')")).all()
        return {t: session.scalar(select(func.count()).select_from(text(t))) or 0
                for t in tables}


def test_every_console_post_without_its_csrf_token_is_refused_and_writes_nothing(
        sign_in, client, settings):
    sign_in("acme")
    posts = sorted({rule.rule for rule in client.application.url_map.iter_rules()
                    if rule.rule.startswith("/console") and "POST" in (rule.methods or ())})
    assert "/console/logout" in posts and len(posts) >= 5
    before = _rows(settings)
    for rule in posts:
        path = re.sub(r"<(?:\w+:)?(\w+)>",
                      lambda m: "aws" if m.group(1) == "integration_id" else "x1", rule)
        answer = client.post(path, data={"name": "ci", "status": "in_progress"})
        assert answer.status_code == 400, (rule, answer.status_code)
        assert "security token" in answer.get_data(as_text=True), rule
    assert _rows(settings) == before
    assert client.get("/console").status_code == 200  # the session is untouched


def test_a_session_past_its_absolute_expiry_is_refused_however_active(sign_in, client,
                                                                      settings):
    sign_in("acme")
    now = datetime.now(UTC)
    with unit_of_work(settings) as session:
        session.execute(update(ConsoleSession).values(
            last_seen_at=now, expires_at=now - timedelta(seconds=1)))
    answer = client.get("/console/controls")
    assert answer.status_code == 302 and "reason=session_expired" in answer.headers["Location"]
    assert client.get_cookie("evidence_console", path="/console") is None
