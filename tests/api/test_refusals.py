"""Bad input gets a 4xx JSON error with a stable code and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from sqlalchemy import func, select

from engine.db import session_factory
from engine.models import Account, Connection, SyncRun
from engine.settings import Settings
from engine.tokens import mint

GOOD = {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def nothing_written(settings: Settings) -> bool:
    with session_factory(settings)() as s:
        return all(s.scalar(select(func.count()).select_from(m)) == 0
                   for m in (Account, Connection, SyncRun))


@pytest.mark.parametrize("path, body, status, code", [
    ("/api/v1/integrations/nope/connect", {"credentials": GOOD}, 404, "unknown_integration"),
    ("/api/v1/integrations/aws/connect", {}, 422, "invalid_request"),
    ("/api/v1/integrations/aws/connect", {"credentials": {}}, 422, "invalid_credentials"),
    ("/api/v1/integrations/aws/connect",
     {"credentials": {**GOOD, "access_key_id": "not-a-key"}}, 422, "invalid_credentials"),
    ("/api/v1/integrations/aws/connect", {"credentials": GOOD, "sync_frequency": "monthly"},
     422, "invalid_request"),
    ("/api/v1/integrations/aws/connect", None, 422, "invalid_request"),
    ("/api/v1/integrations/aws/sync", None, 404, "not_connected"),
    ("/api/v1/integrations/nope/sync", None, 404, "unknown_integration"),
])
def test_bad_input_is_a_4xx_json_error_and_writes_nothing(client, auth, settings, path, body,
                                                          status, code):
    resp = client.post(path, json=body, headers=auth) if body is not None else client.post(
        path, headers=auth, data="not json")
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["success"] is False
    assert resp.get_json()["error"]["code"] == code
    assert resp.get_json()["error"]["message"]
    assert nothing_written(settings)


def test_a_refused_secret_is_never_echoed(client, auth):
    secret = "s3cr3t-value-that-must-not-leak"
    resp = client.post("/api/v1/integrations/aws/connect", headers=auth, json={
        "credentials": {"access_key_id": "bad", "secret_access_key": secret}})
    assert resp.status_code == 422
    assert secret not in resp.get_data(as_text=True)
    fields = {f["field"] for f in resp.get_json()["error"]["fields"]}
    assert "access_key_id" in fields


def test_custom_endpoints_are_refused_unless_enabled(client, auth, settings):
    from cli.wiring import api_app

    locked = api_app(settings.model_copy(update={"allow_custom_endpoints": False}))
    resp = locked.test_client().post("/api/v1/integrations/aws/connect", headers=auth, json={
        "credentials": {**GOOD, "endpoint_url": "http://169.254.169.254"}})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "invalid_credentials"
    assert nothing_written(settings)


def bad_tokens(settings: Settings) -> dict[str, str]:
    secret = settings.jwt_secret.get_secret_value()
    claims = {"sub": "u", "account": "acme", "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience}
    return {
        "garbage": "not-a-jwt",
        "alg_none": jwt.encode({**claims, "exp": 9_999_999_999, "iat": 0}, None,
                               algorithm="none"),
        "wrong_secret": jwt.encode({**claims, "exp": 9_999_999_999, "iat": 0}, "x" * 40,
                                   algorithm="HS256"),
        "expired": mint(settings, "acme", ttl=timedelta(seconds=-10)),
        "wrong_audience": jwt.encode({**claims, "aud": "other", "exp": 9_999_999_999,
                                      "iat": 0}, secret, algorithm="HS256"),
        "no_account": jwt.encode({k: v for k, v in claims.items() if k != "account"}
                                 | {"exp": 9_999_999_999, "iat": 0}, secret,
                                 algorithm="HS256"),
    }


@pytest.mark.parametrize("kind", ["missing", "garbage", "alg_none", "wrong_secret", "expired",
                                  "wrong_audience", "no_account"])
def test_bad_tokens_are_refused_with_401(client, settings, kind):
    headers = {} if kind == "missing" else {
        "Authorization": f"Bearer {bad_tokens(settings)[kind]}"}
    resp = client.post("/api/v1/integrations/aws/connect", headers=headers,
                       json={"credentials": GOOD})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] in ("missing_token", "invalid_token",
                                                "token_expired")
    assert nothing_written(settings)


def test_unknown_routes_answer_json_404(client, auth):
    resp = client.get("/api/v1/nothing-here", headers=auth)
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_evidence_limit_above_200_is_refused(client, auth):
    resp = client.get("/api/v1/integrations/aws/evidence?limit=500", headers=auth)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["fields"][0]["field"] == "limit"
