"""The push flow over real HTTP: presigned PUT to moto's S3, verify, link, list, download."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from engine.controls import count_controls
from engine.db import session_factory
from engine.frameworks import catalog
from engine.models.push import EvidenceLineage, EvidenceObject
from engine.pushed import pushed_for_control
from tests.emulators import free_port
from tests.push.conftest import BUCKET, MAX_SIZE, ORG, serve
from tests.push.flow import bearer, evidence_url, link, sha256, upload, verify

DATA = b"user,mfa\nalice,true\nbob,true\n" * 50


@pytest.fixture
def key(make_key) -> str:
    return make_key("write:evidence", "read:evidence")


def stored_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_upload_verify_link_and_download_through_real_http(base, key, s3):
    up = upload(base, key, DATA, filename="mfa report.csv", control_id="CC6.1")
    assert up["object_key"].startswith(f"{ORG}/uploads/")
    assert up["object_key"].endswith("/mfa-report.csv")
    assert (up["expires_in"], up["max_size"]) == (300, MAX_SIZE)

    verified = verify(base, key, up["object_key"], sha256(DATA))
    assert verified.status_code == 200, verified.text
    assert verified.json() | {"verified_at": None} == {
        "success": True, "verified": True, "evidence_id": up["evidence_id"],
        "object_key": up["object_key"], "sha256": sha256(DATA), "size": len(DATA),
        "status": "verified", "verified_at": None}
    assert stored_keys(s3) == [f"{ORG}/evidence/sha256/{sha256(DATA)}"]

    first = link(base, key, sha256(DATA), control_id="CC6.1", framework_id="SOC2",
                 object_key=up["object_key"])
    again = link(base, key, up["evidence_id"], control_id="soc2-cc6.1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["created"] is True and again.json()["created"] is False
    assert again.json()["lineage_id"] == first.json()["lineage_id"]
    assert {k: first.json()[k] for k in ("evidence_id", "control_id", "framework_id",
                                         "assessment_id")} == {
        "evidence_id": up["evidence_id"], "control_id": "CC6.1", "framework_id": "soc2",
        "assessment_id": None}

    listed = requests.get(evidence_url(base), headers=bearer(key), timeout=10).json()
    assert listed["total"] == 1
    item = listed["evidence"][0]
    assert (item["id"], item["source"], item["filename"], item["sha256"]) == (
        up["evidence_id"], "pushed", "mfa report.csv", sha256(DATA))
    assert [c["lineage_id"] for c in item["controls"]] == [first.json()["lineage_id"]]

    dl = requests.get(f"{evidence_url(base)}/{sha256(DATA)}/download-url", headers=bearer(key),
                      timeout=10)
    assert dl.status_code == 200, dl.text
    got = requests.get(dl.json()["download_url"], timeout=10)
    assert got.content == DATA
    assert "mfa-report.csv" in got.headers["Content-Disposition"]


@pytest.mark.parametrize("stored", [DATA[:-7], DATA[:10] + b"X" + DATA[11:]],
                         ids=["truncated", "altered"])
def test_verify_catches_a_truncated_or_altered_upload(base, key, s3, stored):
    up = upload(base, key, stored)

    resp = verify(base, key, up["object_key"], sha256(DATA))

    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "hash_mismatch"
    assert (error["expected_hash"], error["actual_hash"]) == (sha256(DATA), sha256(stored))
    assert error["size"] == len(stored)
    assert sha256(DATA) in error["message"] and sha256(stored) in error["message"]
    assert stored_keys(s3) == []
    unlinked = link(base, key, sha256(DATA), control_id="CC6.1")
    assert unlinked.status_code == 404
    requests.put(up["upload_url"], data=DATA, headers={"Content-Type": "text/csv"},
                 timeout=10).raise_for_status()
    assert verify(base, key, up["object_key"], sha256(DATA)).status_code == 200


def test_an_object_over_max_size_is_reported_and_deleted(base, key, s3, settings):
    big = b"x" * (MAX_SIZE + 1)
    up = upload(base, key, big)

    resp = verify(base, key, up["object_key"], sha256(big))

    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "object_too_large"
    assert resp.json()["error"]["max_size"] == MAX_SIZE
    assert stored_keys(s3) == []
    rejected = requests.get(evidence_url(base), params={"status": "rejected"},
                            headers=bearer(key), timeout=10).json()["evidence"]
    assert [(e["id"], e["size"]) for e in rejected] == [(up["evidence_id"], MAX_SIZE + 1)]


def test_a_declared_size_over_max_is_refused_before_any_upload(base, key):
    resp = requests.post(f"{evidence_url(base)}/upload-url", headers=bearer(key), timeout=10,
                         json={"filename": "a.csv", "size": MAX_SIZE + 1})

    assert resp.status_code == 422 and resp.json()["error"]["code"] == "object_too_large"


def test_verify_before_the_put_is_409_not_uploaded(base, key):
    resp = requests.post(f"{evidence_url(base)}/upload-url", headers=bearer(key), timeout=10,
                         json={"filename": "a.csv"})

    verified = verify(base, key, resp.json()["object_key"], sha256(DATA))

    assert verified.status_code == 409
    assert verified.json()["error"]["code"] == "not_uploaded"


@pytest.mark.parametrize("params, field", [
    ({"expected_hash": "0" * 64}, "object_key"),
    ({"object_key": "acme/uploads/x/a.csv"}, "expected_hash"),
    ({"object_key": "acme/uploads/x/a.csv", "expected_hash": "abc"}, "expected_hash"),
])
def test_verify_needs_an_object_key_and_a_sha256(base, key, params, field):
    resp = requests.post(f"{evidence_url(base)}/verify", headers=bearer(key), params=params,
                         timeout=10)

    assert resp.status_code == 422
    assert field in [f["field"] for f in resp.json()["error"]["fields"]]


def test_verify_takes_its_fields_as_json_too(base, key):
    up = upload(base, key, DATA)

    resp = requests.post(f"{evidence_url(base)}/verify", headers=bearer(key), timeout=10,
                         json={"object_key": up["object_key"],
                               "expected_hash": sha256(DATA).upper()})

    assert resp.status_code == 200 and resp.json()["sha256"] == sha256(DATA)


def test_a_verified_object_cannot_be_replaced_through_its_upload_url(base, key):
    up = upload(base, key, DATA)
    assert verify(base, key, up["object_key"], sha256(DATA)).status_code == 200

    requests.put(up["upload_url"], data=b"forged", headers={"Content-Type": "text/csv"},
                 timeout=10).raise_for_status()

    again = verify(base, key, up["object_key"], sha256(DATA))
    assert again.status_code == 200
    dl = requests.get(f"{evidence_url(base)}/{up['evidence_id']}/download-url",
                      headers=bearer(key), timeout=10).json()
    assert requests.get(dl["download_url"], timeout=10).content == DATA


def test_the_same_bytes_pushed_twice_are_stored_once_and_link_to_the_first(base, key, s3,
                                                                            settings):
    first, second = upload(base, key, DATA), upload(base, key, DATA, filename="copy.csv")
    assert verify(base, key, first["object_key"], sha256(DATA)).status_code == 200

    dup = verify(base, key, second["object_key"], sha256(DATA))

    assert dup.status_code == 200
    assert (dup.json()["status"], dup.json()["evidence_id"]) == ("duplicate", first["evidence_id"])
    assert stored_keys(s3) == [f"{ORG}/evidence/sha256/{sha256(DATA)}"]
    a = link(base, key, sha256(DATA), control_id="CC6.1", object_key=first["object_key"])
    b = link(base, key, second["evidence_id"], control_id="CC6.1")
    assert (a.json()["created"], b.json()["created"]) == (True, False)
    assert b.json()["evidence_id"] == first["evidence_id"]


def test_link_without_verify_checks_the_hash_named_in_the_path(base, key):
    good, bad = upload(base, key, DATA), upload(base, key, DATA[:-1])

    linked = link(base, key, sha256(DATA), control_id="CC6.1", object_key=good["object_key"])
    refused = link(base, key, sha256(DATA), control_id="CC6.1", object_key=bad["object_key"])

    assert linked.status_code == 201 and linked.json()["created"] is True
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "hash_mismatch"
    assert refused.json()["error"]["actual_hash"] == sha256(DATA[:-1])


@pytest.mark.parametrize("body, code", [
    ({"control_id": "CC99.9", "framework_id": "SOC2"}, "unknown_control"),
    ({"control_id": "CC6.1", "framework_id": "PCI-DSS"}, "unknown_framework"),
    ({"control_id": "A.5.15", "framework_id": "SOC2"}, "unknown_control"),
    ({"control_id": "nope"}, "unknown_control"),
])
def test_an_unknown_control_or_framework_is_422_and_links_nothing(base, key, settings, body,
                                                                  code):
    up = upload(base, key, DATA)

    resp = link(base, key, sha256(DATA), object_key=up["object_key"], **body)

    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == code
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(EvidenceLineage)) == 0


def test_an_unknown_control_is_refused_when_asking_for_an_upload_url(base, key):
    resp = requests.post(f"{evidence_url(base)}/upload-url", headers=bearer(key), timeout=10,
                         json={"filename": "a.csv", "control_id": "CC99.9"})

    assert resp.status_code == 422 and resp.json()["error"]["code"] == "unknown_control"


def test_links_are_idempotent_per_assessment(base, key):
    up = upload(base, key, DATA)
    plain = link(base, key, sha256(DATA), control_id="CC6.1", object_key=up["object_key"])
    audit = [link(base, key, sha256(DATA), control_id="CC6.1", assessment_id="audit-2024")
             for _ in range(2)]

    assert plain.json()["created"] is True
    assert [r.json()["created"] for r in audit] == [True, False]
    assert audit[0].json()["assessment_id"] == "audit-2024"
    assert len({plain.json()["lineage_id"], audit[0].json()["lineage_id"],
                audit[1].json()["lineage_id"]}) == 2


def test_another_organizations_object_is_not_found(base, key, make_key):
    up = upload(base, key, DATA)
    other = make_key("write:evidence", "read:evidence", org="globex")

    verified = verify(base, other, up["object_key"], sha256(DATA), org="globex")
    linked = link(base, other, up["evidence_id"], org="globex", control_id="CC6.1")

    assert verified.status_code == 404 and verified.json()["error"]["code"] == "unknown_object"
    assert linked.status_code == 404 and linked.json()["error"]["code"] == "unknown_evidence"


def test_upload_keys_are_namespaced_by_account_and_unguessable(base, key):
    keys = [requests.post(f"{evidence_url(base)}/upload-url", headers=bearer(key), timeout=10,
                          json={"filename": "../../etc/passwd"}).json()["object_key"]
            for _ in range(2)]

    assert keys[0] != keys[1]
    for k in keys:
        account, uploads, secret, name = k.split("/")
        assert (account, uploads, name) == (ORG, "uploads", "passwd")
        assert len(secret) >= 32


def test_pushed_evidence_is_counted_in_the_control_views(base, key, jwt_for, settings):
    up = upload(base, key, DATA)
    link(base, key, sha256(DATA), control_id="CC6.1", framework_id="SOC2",
         object_key=up["object_key"]).raise_for_status()

    view = requests.get(f"{base}/api/v1/integrations/aws/controls", headers=jwt_for(ORG),
                        timeout=10)

    assert view.status_code == 200, view.text
    results = {r["controlId"]: r for r in view.json()["controlResults"]}
    assert results["soc2-cc6.1"]["pushed"] == 1
    assert results["soc2-cc6.1"]["total"] == 0
    assert all(r["pushed"] == 0 for k, r in results.items() if k != "soc2-cc6.1")
    with session_factory(settings)() as s:
        counts = {c.control.key: c.pushed for c in count_controls(s, ORG)}
    assert counts["soc2-cc6.1"] == 1


def test_audits_can_list_the_pushed_evidence_of_a_control(base, key, settings):
    up = upload(base, key, DATA)
    link(base, key, sha256(DATA), control_id="CC6.1", object_key=up["object_key"],
         assessment_id="audit-1").raise_for_status()

    with session_factory(settings)() as s:
        for_audit = pushed_for_control(s, ORG, "soc2", "CC6.1", assessment_id="audit-1")
        other_audit = pushed_for_control(s, ORG, "soc2", "CC6.1", assessment_id="audit-2")
        other_control = pushed_for_control(s, ORG, "soc2", "CC6.2")
        assert [p.evidence.id for p in for_audit] == [up["evidence_id"]]
        assert other_audit == [] and other_control == []
        assert s.get(EvidenceObject, up["evidence_id"]).sha256 == sha256(DATA)
    assert catalog().resolve("CC6.1", "soc2").title


def test_storage_not_configured_answers_503_saying_what_to_set(store_settings, db, jwt_for):
    from cli.wiring import api_app

    with serve(api_app(store_settings.model_copy(update={"storage_bucket": None}))) as url:
        headers = jwt_for(ORG)
        answers = [
            requests.post(f"{evidence_url(url)}/upload-url", headers=headers, timeout=10,
                          json={"filename": "a.csv"}),
            requests.post(f"{evidence_url(url)}/verify", headers=headers, timeout=10,
                          params={"object_key": f"{ORG}/uploads/x/a.csv",
                                  "expected_hash": "0" * 64}),
            requests.post(f"{evidence_url(url)}/{'0' * 64}/link-to-control", headers=headers,
                          json={"control_id": "CC6.1"}, timeout=10),
            requests.get(f"{evidence_url(url)}/evo-x/download-url", headers=headers, timeout=10),
        ]
        listed = requests.get(evidence_url(url), headers=headers, timeout=10)

    for resp in answers:
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "storage_unavailable"
        assert "EVIDENCE_STORAGE_BUCKET" in resp.json()["error"]["message"]
    assert listed.status_code == 200


def test_unreachable_storage_answers_503(base, key, store_settings):
    from cli.wiring import api_app

    up = upload(base, key, DATA)
    down = store_settings.model_copy(
        update={"storage_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    with serve(api_app(down)) as url:
        answers = [
            requests.post(f"{evidence_url(url)}/upload-url", headers=bearer(key), timeout=30,
                          json={"filename": "a.csv"}),
            verify(url, key, up["object_key"], sha256(DATA)),
        ]

    for resp in answers:
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "storage_unavailable"
        assert "could not reach the evidence store" in resp.json()["error"]["message"]
    assert verify(base, key, up["object_key"], sha256(DATA)).status_code == 200


def test_a_missing_bucket_answers_503_naming_it(base, key, store_settings):
    from cli.wiring import api_app

    with serve(api_app(store_settings.model_copy(update={"storage_bucket": "no-such"}))) as url:
        resp = requests.post(f"{evidence_url(url)}/upload-url", headers=bearer(key), timeout=30,
                             json={"filename": "a.csv"})

    assert resp.status_code == 503
    assert "'no-such' does not exist" in resp.json()["error"]["message"]
