"""Uploads nobody verifies do not stay in storage: the hourly job deletes their objects from
moto's S3 and marks their rows expired; verified, linked and fresh uploads stay."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select, text

from beat_schedule import schedule
from engine.db import session_factory
from engine.errors import StorageUnavailable
from engine.maintenance import expire_unverified_uploads, prune_history
from engine.models.core import new_id
from engine.models.push import EvidenceLineage, EvidenceObject, ObjectStatus
from engine.settings import Settings
from engine.storage import open_store
from tests.push.conftest import BUCKET, ORG
from tests.push.flow import bearer, evidence_url, link, sha256, upload, verify

WINDOW = timedelta(hours=24)
KEPT = b"verified long ago\n"


@pytest.fixture
def key(make_key) -> str:
    return make_key("write:evidence", "read:evidence")


def stored_keys(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def age(settings: Settings, evidence_id: str, *, hours: float,
        url_expires_in_hours: float = -1) -> None:
    """Move an upload's request back in time (and its URL's expiry, relative to now)."""
    with session_factory(settings)() as s, s.begin():
        s.execute(text("UPDATE evidence_object SET created_at = now() - make_interval("
                       "secs => :age), upload_expires_at = now() + make_interval(secs => :url) "
                       "WHERE id = :id"),
                  {"age": hours * 3600, "url": url_expires_in_hours * 3600, "id": evidence_id})


def statuses(settings: Settings) -> dict[str, ObjectStatus]:
    with session_factory(settings)() as s:
        return dict(s.execute(select(EvidenceObject.id, EvidenceObject.status)).tuples().all())


def expire(settings: Settings, **kwargs: Any) -> int:
    return expire_unverified_uploads(session_factory(settings), open_store(settings),
                                     datetime.now(UTC), WINDOW, **kwargs).uploads


def test_old_unverified_uploads_are_deleted_and_the_rest_stays(base, key, s3, store_settings):
    old = upload(base, key, b"never verified\n")
    never_put = requests.post(f"{evidence_url(base)}/upload-url", headers=bearer(key),
                              json={"filename": "lost.csv"}, timeout=10).json()
    mismatched = upload(base, key, b"altered on the way\n")
    assert verify(base, key, mismatched["object_key"], sha256(b"other")).status_code == 409
    put_again = requests.put(mismatched["upload_url"], data=b"altered on the way\n", timeout=10,
                             headers={"Content-Type": "text/csv"})
    assert put_again.status_code == 200  # a failed verify waits for another PUT
    fresh = upload(base, key, b"uploaded a minute ago\n")
    url_still_valid = upload(base, key, b"slow client\n")
    verified = upload(base, key, KEPT)
    assert verify(base, key, verified["object_key"], sha256(KEPT)) \
        .status_code == 200
    duplicate = upload(base, key, KEPT)
    assert verify(base, key, duplicate["object_key"], sha256(KEPT)) \
        .json()["status"] == "duplicate"
    linked = upload(base, key, b"linked by hand\n")
    with session_factory(store_settings)() as s, s.begin():  # a link without a verify: never
        s.add(EvidenceLineage(id=new_id("lin"), account_id=ORG,  # made by the API, but kept
                              evidence_object_id=linked["evidence_id"], framework_id="soc2",
                              control_id="CC6.1", linked_by="test"))
    for up in (old, never_put, mismatched, verified, duplicate, linked):
        age(store_settings, up["evidence_id"], hours=25)
    age(store_settings, url_still_valid["evidence_id"], hours=25, url_expires_in_hours=1)
    before = stored_keys(s3)
    gone = {old["object_key"], mismatched["object_key"]}
    assert gone <= before and never_put["object_key"] not in before

    assert expire(store_settings, batch=2) == 3  # two batches: 2, then 1

    assert stored_keys(s3) == before - gone
    expired = {old["evidence_id"], never_put["evidence_id"], mismatched["evidence_id"]}
    got = statuses(store_settings)
    assert {i for i, status in got.items() if status == ObjectStatus.EXPIRED} == expired
    assert (got[fresh["evidence_id"]], got[url_still_valid["evidence_id"]],
            got[linked["evidence_id"]]) == (ObjectStatus.PENDING,) * 3
    assert (got[verified["evidence_id"]], got[duplicate["evidence_id"]]) == (
        ObjectStatus.VERIFIED, ObjectStatus.DUPLICATE)
    content = f"{ORG}/evidence/sha256/{sha256(KEPT)}"
    assert {content, fresh["object_key"], url_still_valid["object_key"],
            linked["object_key"]} <= stored_keys(s3)

    assert expire(store_settings) == 0  # a second run does nothing
    assert stored_keys(s3) == before - gone and statuses(store_settings) == got

    late = verify(base, key, old["object_key"], sha256(b"never verified\n"))
    assert late.status_code == 410, late.text
    error = late.json()["error"]
    assert error["code"] == "upload_expired" and "new upload URL" in error["message"]
    by_id = link(base, key, mismatched["evidence_id"], control_id="CC6.1", framework_id="SOC2")
    assert (by_id.status_code, by_id.json()["error"]["code"]) == (410, "upload_expired")
    assert verify(base, key, fresh["object_key"],
                  sha256(b"uploaded a minute ago\n")).status_code == 200


def test_a_store_that_fails_leaves_the_uploads_for_the_next_run(base, key, s3, store_settings):
    old = upload(base, key, b"never verified\n")
    age(store_settings, old["evidence_id"], hours=48)
    broken = replace(open_store(store_settings), bucket="no-such-evidence-bucket")
    with pytest.raises(StorageUnavailable):
        expire_unverified_uploads(session_factory(store_settings), broken, datetime.now(UTC),
                                  WINDOW)
    assert statuses(store_settings)[old["evidence_id"]] == ObjectStatus.PENDING
    assert old["object_key"] in stored_keys(s3)
    assert expire(store_settings) == 1
    assert old["object_key"] not in stored_keys(s3)


def test_expired_records_are_pruned_with_the_old_history(base, key, s3, store_settings):
    ancient, recent = (upload(base, key, data) for data in (b"ancient\n", b"recent\n"))
    age(store_settings, ancient["evidence_id"], hours=24 * 500)
    age(store_settings, recent["evidence_id"], hours=25)
    assert expire(store_settings) == 2
    pruned = prune_history(session_factory(store_settings), datetime.now(UTC),
                           timedelta(days=400))
    assert pruned.expired_uploads == 1
    assert statuses(store_settings) == {recent["evidence_id"]: ObjectStatus.EXPIRED}


def test_beat_runs_the_expiry_hourly_through_a_registered_task(settings):
    from workers.tasks import celery_app

    entry = schedule(settings)["expire-unverified-uploads"]
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"].minute == {41} and len(entry["schedule"].hour) == 24
