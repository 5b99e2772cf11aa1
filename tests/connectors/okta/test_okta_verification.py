"""Connecting Okta through the API and a real Celery worker: what a failed verification says
(the org end to end: tests/connectors/test_end_to_end.py)."""

from __future__ import annotations

from connectors.okta.kit import OktaServer


def test_a_revoked_token_fails_verification_with_what_to_fix(client, auth, worker,
                                                            okta: OktaServer):
    raw = {**okta.estate.credentials(), "api_token": "00" + "r" * 40}
    resp = client.post("/api/v1/integrations/okta/connect?wait=30", headers=auth,
                       json={"credentials": raw})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "verification_failed"
    assert "create a new token" in error["message"] and raw["api_token"] not in str(error)
