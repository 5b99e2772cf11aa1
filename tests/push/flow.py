"""Steps of the push flow as a client takes them, over real HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from tests.push.conftest import ORG


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_url(base: str, org: str = ORG) -> str:
    return f"{base}/api/v1/orgs/{org}/evidence"


def upload(base: str, key: str, data: bytes, *, filename: str = "report.csv",
           content_type: str = "text/csv", org: str = ORG, **extra: Any) -> dict[str, Any]:
    """Steps 1 and 2: an upload URL, then the bytes PUT straight to storage."""
    resp = requests.post(f"{evidence_url(base, org)}/upload-url", headers=bearer(key), timeout=10,
                         json={"filename": filename, "content_type": content_type, **extra})
    assert resp.status_code == 201, resp.text
    up: dict[str, Any] = resp.json()
    put = requests.put(up["upload_url"], data=data, headers={"Content-Type": content_type},
                       timeout=10)
    assert put.status_code in (200, 204), put.text
    return up


def verify(base: str, key: str, object_key: str, expected: str,
           org: str = ORG) -> requests.Response:
    return requests.post(f"{evidence_url(base, org)}/verify", headers=bearer(key), timeout=30,
                         params={"object_key": object_key, "expected_hash": expected})


def link(base: str, key: str, evidence_id: str, org: str = ORG,
         **body: Any) -> requests.Response:
    return requests.post(f"{evidence_url(base, org)}/{evidence_id}/link-to-control",
                         headers=bearer(key), json=body, timeout=30)
