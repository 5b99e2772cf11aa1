"""Presigned URLs are signed for the address clients reach the store at."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from engine.errors import StorageUnavailable
from engine.storage import open_store


def test_presigned_urls_use_the_public_endpoint_when_one_is_set(store_settings):
    store = open_store(store_settings.model_copy(update={
        "storage_public_endpoint_url": "https://files.example.com"}))

    put = urlsplit(store.presign_put("acme/uploads/x/a.csv", "text/csv", 60))
    get = urlsplit(store.presign_get("acme/evidence/sha256/ab", filename="a.csv",
                                     content_type="text/csv", expires=60))

    assert (put.scheme, put.netloc, put.path) == ("https", "files.example.com",
                                                  "/evidence-push-tests/acme/uploads/x/a.csv")
    assert parse_qs(put.query)["X-Amz-SignedHeaders"] == ["content-type;host"]
    assert parse_qs(put.query)["X-Amz-Expires"] == ["60"]
    assert get.netloc == "files.example.com"
    assert parse_qs(get.query)["response-content-disposition"] == [
        'attachment; filename="a.csv"']
    assert "testing-secret" not in put.query + get.query


def test_no_bucket_means_storage_is_not_configured(settings):
    with pytest.raises(StorageUnavailable, match="EVIDENCE_STORAGE_BUCKET"):
        open_store(settings.model_copy(update={"storage_bucket": None}))
