"""Bearer tokens: HS256 by default, RS256 against a local JWKS server by configuration; every
malformed, misaddressed or ill-timed token is a 401 and the account always comes from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from werkzeug.serving import make_server

from engine.settings import Settings
from tests.emulators import free_port

LIST = "/api/v1/integrations"


def hs256(settings: Settings, **changes: Any) -> str:
    now = int(time.time())
    claims = {"sub": "u", "account": "acme", "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "iat": now, "nbf": now, "exp": now + 600}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


@pytest.mark.parametrize("changes, code", [
    ({"exp": int(time.time()) - 60}, "token_expired"),
    ({"nbf": int(time.time()) + 600}, "token_not_yet_valid"),
    ({"iat": int(time.time()) + 600}, "token_not_yet_valid"),
    ({"iss": "someone-else"}, "invalid_token"),
    ({"aud": "another-api"}, "invalid_token"),
    ({"exp": None}, "invalid_token"),
    ({"sub": None}, "invalid_token"),
    ({"account": "../etc"}, "invalid_token"),
])
def test_ill_timed_or_misaddressed_hs256_tokens_are_401(client, settings, changes, code):
    resp = client.get(LIST, headers={"Authorization": f"Bearer {hs256(settings, **changes)}"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == code


def test_the_account_comes_from_the_token(client, settings, jobs):
    resp = client.post("/api/v1/custom-integrations", json={
        "name": "N", "shortName": "n", "integrationType": "API", "accountId": "globex"},
        headers={"Authorization": f"Bearer {hs256(settings, account='acme')}"})
    assert resp.status_code == 422  # no field may name an account
    made = client.post("/api/v1/custom-integrations", json={
        "name": "N", "shortName": "n", "integrationType": "API"},
        headers={"Authorization": f"Bearer {hs256(settings, account='acme')}"})
    assert made.status_code == 201
    other = client.get("/api/v1/custom-integrations",
                       headers={"Authorization": f"Bearer {hs256(settings, account='globex')}"})
    assert other.get_json()["integrations"] == []


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[Any, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, other


@pytest.fixture(scope="module")
def jwks_url(rsa_keys: tuple[Any, Any]) -> Iterator[str]:
    """An identity provider's JWKS endpoint on loopback."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_keys[0].public_key(), as_dict=True)
    app = Flask("jwks")
    app.add_url_rule("/.well-known/jwks.json", "jwks",
                     lambda: jsonify({"keys": [{**jwk, "kid": "k1", "use": "sig",
                                                "alg": "RS256"}]}))
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/.well-known/jwks.json"
    server.shutdown()


def rs256(settings: Settings, key: Any, kid: str = "k1", **changes: Any) -> str:
    now = int(time.time())
    claims = {"sub": "idp-user", "account": "acme", "iss": "https://idp.example.com/",
              "aud": "evidence-api", "iat": now, "nbf": now, "exp": now + 600, **changes}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def rs_client(app_client, jwks_url):
    return app_client(jwt_algorithm="RS256", jwt_jwks_url=jwks_url,
                      jwt_issuer="https://idp.example.com/", jwt_audience="evidence-api")


def test_rs256_tokens_verify_against_the_jwks(rs_client, settings, rsa_keys):
    resp = rs_client.get(LIST, headers={"Authorization": f"Bearer {rs256(settings, rsa_keys[0])}"})
    assert resp.status_code == 200, resp.get_json()


def test_rs256_mode_refuses_everything_else(rs_client, settings, rsa_keys):
    key, other = rsa_keys
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"sub": "x", "account": "acme", "iss": "https://idp.example.com/",
              "aud": "evidence-api", "iat": now, "exp": now + 600}
    confused_token = _hmac_with_public_key(claims, public_pem)  # PyJWT won't sign this
    bad = {
        "other_key": rs256(settings, other),
        "unknown_kid": rs256(settings, key, kid="k9"),
        "expired": rs256(settings, key, exp=now - 60),
        "not_yet_valid": rs256(settings, key, nbf=now + 600),
        "wrong_issuer": rs256(settings, key, iss="https://evil.example.com/"),
        "wrong_audience": rs256(settings, key, aud="another-api"),
        "alg_none": jwt.encode(claims, None, algorithm="none"),
        "hs256_with_public_key": confused_token,
        "hs256_server_secret": hs256(settings),
    }
    for name, token in bad.items():
        resp = rs_client.get(LIST, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, name
        assert resp.get_json()["error"]["code"] in (
            "invalid_token", "token_expired", "token_not_yet_valid"), name


def _hmac_with_public_key(claims: dict[str, Any], public_pem: bytes) -> str:
    """The algorithm-confusion attack: an HS256 token keyed with the server's public key."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
                     + "." + b64(json.dumps(claims).encode()))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def test_an_unreachable_jwks_is_a_503_not_a_401(app_client, settings, rsa_keys):
    client = app_client(jwt_algorithm="RS256",
                        jwt_jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
                        jwt_issuer="https://idp.example.com/", jwt_audience="evidence-api")
    resp = client.get(LIST, headers={"Authorization": f"Bearer {rs256(settings, rsa_keys[0])}"})
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "auth_unavailable"
