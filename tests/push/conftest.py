"""Evidence push fixtures: the engine served over real HTTP, its store on moto's S3 server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from pydantic import SecretStr

from engine.settings import Settings
from engine.tokens import mint
from tests.conftest import serve

BUCKET = "evidence-push-tests"
MAX_SIZE = 64 * 1024
ORG = "acme"


@pytest.fixture(scope="session")
def store_settings(settings: Settings, moto_endpoint: str) -> Settings:
    return settings.model_copy(update={
        "storage_endpoint_url": moto_endpoint, "storage_bucket": BUCKET,
        "storage_access_key_id": "testing",
        "storage_secret_access_key": SecretStr("testing-secret"),
        "storage_region": "us-east-1", "storage_max_object_bytes": MAX_SIZE,
        "storage_presign_seconds": 300})


@pytest.fixture(scope="session")
def push_server(store_settings: Settings) -> Iterator[str]:
    from cli.wiring import api_app

    with serve(api_app(store_settings)) as url:
        yield url


@pytest.fixture
def s3(store_settings: Settings) -> Any:
    """A plain boto3 client on the same store, and the evidence bucket there, empty."""
    client = boto3.client("s3", endpoint_url=store_settings.storage_endpoint_url,
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret")
    try:  # other tests may reset moto: make the bucket again
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    return client


@pytest.fixture
def base(push_server: str, db: None, s3: Any) -> str:
    """The engine's URL, with an empty database and the evidence bucket in place."""
    return push_server


@pytest.fixture
def jwt_for(settings: Settings) -> Callable[[str], dict[str, str]]:
    return lambda org: {"Authorization": f"Bearer {mint(settings, org)}"}


@pytest.fixture
def make_key(base: str, jwt_for: Callable[[str], dict[str, str]]) -> Callable[..., str]:
    """Create an API key through the API; returns the secret."""

    def make(*scopes: str, org: str = ORG) -> str:
        resp = requests.post(f"{base}/api/v1/orgs/{org}/api-keys", headers=jwt_for(org),
                             json={"name": "ci", "scopes": list(scopes)}, timeout=10)
        assert resp.status_code == 201, resp.text
        key: str = resp.json()["key"]
        return key

    return make
