"""Connecting AWS through the API and a real Celery worker: what a failed verification says
(the estate end to end: tests/connectors/test_end_to_end.py)."""

from __future__ import annotations


def test_wrong_credentials_fail_verification_with_a_clear_error(client, auth, worker,
                                                                 aws_endpoint):
    resp = client.post("/api/v1/integrations/aws/connect?wait=30", headers=auth, json={
        "credentials": {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
                        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                        "regions": ["us-east-1"], "endpoint_url": "http://127.0.0.1:9"}})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "verification_failed"
