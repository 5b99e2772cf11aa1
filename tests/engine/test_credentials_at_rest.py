"""Credentials sent to connect are stored encrypted: no column holds the secret in clear."""

from __future__ import annotations

from sqlalchemy import text

from engine.db import session_factory
from engine.vault import vault

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_connect_stores_credentials_only_encrypted(client, auth, settings, caplog):
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", headers=auth, json={
        "credentials": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET}})
    assert resp.status_code == 202
    assert SECRET not in resp.get_data(as_text=True)
    with session_factory(settings)() as s:
        dump = s.execute(text("SELECT row_to_json(c)::text FROM connection c")).scalar_one()
        sealed = s.execute(text("SELECT credentials_encrypted FROM connection")).scalar_one()
    assert SECRET not in dump and SECRET.encode() not in bytes(sealed)
    assert vault(settings).open(bytes(sealed))["secret_access_key"] == SECRET
    assert SECRET not in caplog.text
