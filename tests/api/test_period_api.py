"""The period of a Type II audit through the API: customer and auditor answer the 180-day
scenario exactly (tests/engine/test_period_scenario.py), another account's audit is a 404,
samples are reproducible from their seed and logged, `?as_of=` answers the past and refuses the
future, and a hole in coverage shows on the status endpoint and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.connections import ensure_account
from engine.db import session_factory
from engine.evidence import Item, store_check_results
from engine.models import Connection, ConnectionStatus, Frequency, RunStatus, SyncRun, Trigger
from engine.models.audit import Audit, AuditActivity, AuditType
from tests.audits.conftest import accepted_auditor
from tests.engine.test_period_scenario import (
    ARCHIVE_FROM,
    COVERED,
    DISCONNECT,
    OPERATING,
    OUTAGE_ERROR,
    RECONNECT_DAY,
    at,
    bucket,
    build,
)

PERIOD = {"period_start": "2026-01-01", "period_end": "2026-06-30"}


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    return resp.get_json()["data"]


def refused(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.get_json())
    assert resp.get_json()["error"]["code"] == code, resp.get_json()


def create_audit(client, auth, **fields: Any) -> dict[str, Any]:
    body = {"framework_id": "soc2", "type": "type_ii", "title": "SOC 2 Type II 2026 H1",
            **fields}
    return ok(client.post("/api/v1/audits", json=body, headers=auth), 201)


def legacy_audit(settings) -> str:
    """A type_ii audit without a period, as audits created before periods were required are."""
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        ensure_account(s, "acme")
        audit = Audit(account_id="acme", framework_id="soc2", type=AuditType.TYPE_II,
                      title="Drafted in 2025", created_by="acme", created_at=now, updated_at=now)
        s.add(audit)
        s.flush()
        return audit.id


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def activity(settings, kind: str) -> list[AuditActivity]:
    with session_factory(settings)() as s:
        return list(s.scalars(select(AuditActivity).where(AuditActivity.type == kind)
                              .order_by(AuditActivity.id)))


def test_both_sides_answer_the_scenarios_period_and_other_accounts_get_404(
        client, auth, second_auth, settings):
    scenario = build(settings)
    audit = create_audit(client, auth, **PERIOD)
    assert (audit["period_start"], audit["period_end"]) == ("2026-01-01", "2026-06-30")

    period = ok(client.get(f"/api/v1/audits/{audit['id']}/period?control_id=CC6.1",
                           headers=auth))
    assert (period["starts_at"], period["ends_at"]) == ("2026-01-01T00:00:00Z",
                                                        "2026-06-30T00:00:00Z")
    assert period["complete"] is True
    [cc61] = period["controls"]
    assert cc61["control_id"] == "CC6.1" and cc61["automated"] and cc61["integrations"] == [
        "aws"]
    assert cc61["period_seconds"] == 180 * 86400
    assert cc61["coverage_seconds"] == COVERED.total_seconds()
    assert cc61["operating_seconds"] == OPERATING.total_seconds()
    assert cc61["coverage"] == pytest.approx(COVERED / timedelta(days=180))
    assert [(when(g["start"]), when(g["end"]), [c["kind"] for c in g["causes"]])
            for g in cc61["gaps"]] == [
        (at(0, 0), at(0), ["not_connected"]),
        (at(60, 3), at(67), ["sync_failed"]),
        (DISCONNECT, at(RECONNECT_DAY), ["disconnected"])]
    failed = cc61["gaps"][1]["causes"][0]
    assert [r["id"] for r in failed["runs"]] == scenario.failed_runs
    assert {r["error"] for r in failed["runs"]} == {OUTAGE_ERROR}
    [exception] = cc61["exceptions"]
    assert [(r["resource_id"], when(r["failed_at"]), when(r["fixed_at"]), r["outcome"])
            for r in exception["resources"]] == [(bucket("exports"), at(20), at(30), "fixed")]
    assert cc61["population_size"] == 3
    assert {(m["resource_id"], when(m["first_seen"]), when(m["last_seen"]), m["failed"])
            for m in cc61["population"]} == {
        (bucket("logs"), at(0), at(179), False), (bucket("exports"), at(0), at(179), True),
        (bucket("archive"), at(ARCHIVE_FROM), at(179), False)}

    whole = ok(client.get(f"/api/v1/audits/{audit['id']}/period", headers=auth))
    assert next(c for c in whole["controls"] if c["control_id"] == "CC6.1") == {
        **cc61, "population": None}
    assert any(not c["automated"] and c["coverage"] is None for c in whole["controls"])

    auditor = accepted_auditor(settings, audit["id"])
    assert ok(client.get("/api/v1/auditor/period?control_id=soc2-cc6.1",
                         headers=auditor)) == period
    refused(client.get("/api/v1/auditor/period?control_id=CC99.9", headers=auditor), 404,
            "unknown_control")
    assert client.get(f"/api/v1/audits/{audit['id']}/period", headers=auditor).status_code == 401
    assert client.get("/api/v1/auditor/period", headers=auth).status_code == 401

    refused(client.get(f"/api/v1/audits/{audit['id']}/period", headers=second_auth), 404,
            "audit_not_found")

    report = ok(client.post(f"/api/v1/audits/{audit['id']}/report", headers=auth))["report"]
    assert "## Operation Over the Period" in report
    row = f"| CC6.1 | {COVERED / timedelta(days=180):.2%} | "
    assert row in report, report
    assert f"{bucket('exports')} (`aws.s3.bucket_default_encryption`) failed" in report
    assert f"(aws, 7 failed runs: {OUTAGE_ERROR})" in report
    assert "the integration was disconnected (aws)" in report


def test_samples_are_drawn_from_the_population_reproducibly_and_logged(client, auth,
                                                                       settings):
    build(settings)
    audit = create_audit(client, auth, **PERIOD)
    auditor = accepted_auditor(settings, audit["id"])

    first = ok(client.post("/api/v1/auditor/samples", headers=auditor,
                           json={"control_id": "CC6.1", "size": 2, "seed": 42}), 201)
    again = ok(client.post("/api/v1/auditor/samples", headers=auditor,
                           json={"control_id": "CC6.1", "size": 2, "seed": 42}), 201)
    assert (first["seed"], first["size"], first["population_size"]) == (42, 2, 3)
    assert first["items"] == again["items"]
    assert first["population_sha256"] == again["population_sha256"]
    fresh = ok(client.post("/api/v1/auditor/samples", headers=auditor,
                           json={"control_id": "CC6.1", "size": 100}), 201)
    assert fresh["size"] == 3  # the whole population, when it is smaller
    redrawn = ok(client.post("/api/v1/auditor/samples", headers=auditor,
                             json={"control_id": "CC6.1", "size": 100,
                                   "seed": fresh["seed"]}), 201)
    assert redrawn["items"] == fresh["items"]

    for item in first["items"] + fresh["items"]:
        sampled = when(item["at"])
        assert datetime(2026, 1, 1, tzinfo=UTC) <= sampled < datetime(2026, 6, 30, tzinfo=UTC)
        listed = client.get("/api/v1/integrations/aws/evidence", headers=auth, query_string={
            "as_of": item["at"], "check": item["check_id"], "limit": 200}).get_json()
        [then] = [e for e in listed["evidence"] if e["resource_id"] == item["resource_id"]]
        evidence = item["evidence"]
        assert (evidence["id"], evidence["status"], evidence["sha256"]) == (
            then["id"], then["status"], then["sha256"])
        assert when(evidence["recorded_at"]) <= sampled

    logged = activity(settings, "sample_drawn")
    assert [e.details["seed"] for e in logged] == [42, 42, fresh["seed"], fresh["seed"]]
    assert logged[0].control_id == "CC6.1" and logged[0].actor_kind.value == "auditor"
    assert [(d["resource_id"], d["at"]) for d in logged[0].details["draw"]] == [
        (i["resource_id"], when(i["at"]).isoformat()) for i in first["items"]]
    assert logged[0].details["population_sha256"] == first["population_sha256"]

    before = len(activity(settings, "sample_drawn"))
    for body, status, code in [
            ({"control_id": "CC6.1", "size": 0}, 422, "invalid_request"),
            ({"control_id": "CC6.1", "size": 101}, 422, "invalid_request"),
            ({"control_id": "CC6.1", "size": "2"}, 422, "invalid_request"),
            ({"control_id": "CC6.1"}, 422, "invalid_request"),
            ({"control_id": "CC6.1", "size": 2, "seed": -1}, 422, "invalid_request"),
            ({"control_id": "CC6.1", "size": 2, "extra": 1}, 422, "invalid_request"),
            ({"control_id": "CC99.9", "size": 2}, 404, "unknown_control"),
            ({"control_id": "CC1.1", "size": 2}, 409, "empty_population")]:
        refused(client.post("/api/v1/auditor/samples", headers=auditor, json=body), status,
                code)
    assert len(activity(settings, "sample_drawn")) == before


def test_as_of_answers_the_past_empty_before_the_connection_and_refuses_the_future(
        client, auth, settings):
    build(settings)
    evidence = "/api/v1/integrations/aws/evidence"
    then = client.get(evidence, headers=auth, query_string={"as_of": "2026-01-26T00:00:00Z"})
    assert then.status_code == 200, then.get_json()
    assert {(e["resource_id"], e["status"]) for e in then.get_json()["evidence"]} == {
        (bucket("logs"), "passing"), (bucket("exports"), "failing")}
    before = client.get(evidence, headers=auth, query_string={"as_of": "2026-01-01"})
    assert before.status_code == 200
    assert (before.get_json()["evidence"], before.get_json()["total"]) == ([], 0)
    failing = client.get(evidence, headers=auth, query_string={
        "as_of": "2026-01-26T00:00:00Z", "status": "failing"}).get_json()
    assert [e["resource_id"] for e in failing["evidence"]] == [bucket("exports")]
    assert failing["total"] == 1
    now = client.get(evidence, headers=auth).get_json()
    assert now["total"] == 3

    controls = client.get("/api/v1/integrations/aws/controls", headers=auth,
                          query_string={"as_of": "2026-01-26T00:00:00Z"}).get_json()
    cc61 = next(r for r in controls["controlResults"] if r["controlId"] == "soc2-cc6.1")
    assert (controls["connected"], cc61["status"], cc61["failing"]) == (True, "failing", 1)

    status = client.get("/api/v1/integrations/aws/status", headers=auth,
                        query_string={"as_of": "2026-03-04T12:00:00Z"}).get_json()
    assert (status["status"], status["statusMessage"], status["as_of"]) == (
        "error", OUTAGE_ERROR, "2026-03-04T12:00:00Z")
    assert [a["kind"] for a in status["coverage_alerts"]] == ["sync_failed"]
    assert "soc2-cc6.1" in status["coverage_alerts"][0]["controls"]
    gone = client.get("/api/v1/integrations/aws/status", headers=auth,
                      query_string={"as_of": "2026-04-15T00:00:00Z"}).get_json()
    assert (gone["connected"], gone["status"]) == (False, "disconnected")
    assert [a["kind"] for a in gone["coverage_alerts"]] == ["disconnected"]
    early = client.get("/api/v1/integrations/aws/status", headers=auth,
                       query_string={"as_of": "2025-12-31T00:00:00Z"}).get_json()
    assert (early["connected"], early["status"], early["syncHistory"]) == (
        False, "not_connected", [])

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for path in (evidence, "/api/v1/integrations/aws/controls",
                 "/api/v1/integrations/aws/status"):
        for value in (future, "yesterday", "12345", "2026-13-01", "2026-01-01T00:00:00\x00"):
            resp = client.get(path, headers=auth, query_string={"as_of": value})
            refused(resp, 422, "invalid_request")


def test_the_period_is_for_type_ii_only_and_must_run_forward(client, auth, settings):
    for body in ({"type": "type_i", **PERIOD},
                 {"period_start": "2026-06-30", "period_end": "2026-01-01"},
                 {"period_start": "2026-01-01", "period_end": "2026-01-01"},
                 {"period_start": "2026-01-01"}, {}):
        resp = client.post("/api/v1/audits", headers=auth, json={
            "framework_id": "soc2", "type": "type_ii", "title": "Annual", **body})
        refused(resp, 422, "invalid_period")
    for body in ({"period_start": 20260101, "period_end": "2026-06-30"},
                 {"period_start": "2026-01-01T00:00:00Z", "period_end": "2026-06-30"},
                 {"period_start": "1 Jan 2026", "period_end": "2026-06-30"}):
        resp = client.post("/api/v1/audits", headers=auth, json={
            "framework_id": "soc2", "type": "type_ii", "title": "Annual", **body})
        refused(resp, 422, "invalid_request")
    assert ok(client.get("/api/v1/audits", headers=auth)) == []

    audit = {"id": legacy_audit(settings)}  # created before a period was required
    refused(client.get(f"/api/v1/audits/{audit['id']}/period", headers=auth), 409,
            "period_not_set")
    ok(client.put(f"/api/v1/audits/{audit['id']}", headers=auth, json={"title": "Renamed"}))
    refused(client.put(f"/api/v1/audits/{audit['id']}", headers=auth,
                       json={"period_start": None, "period_end": None}), 422, "invalid_period")
    refused(client.put(f"/api/v1/audits/{audit['id']}", headers=auth,
                       json={"period_end": "2026-06-30"}), 422, "invalid_period")
    updated = ok(client.put(f"/api/v1/audits/{audit['id']}", headers=auth, json=PERIOD))
    assert (updated["period_start"], updated["period_end"]) == ("2026-01-01", "2026-06-30")
    edit = activity(settings, "audit_updated")[-1]  # after the title's
    assert edit.details["fields"]["period_start"] == {"from": None, "to": "2026-01-01"}
    period = ok(client.get(f"/api/v1/audits/{audit['id']}/period?control_id=CC6.1",
                           headers=auth))
    [cc61] = period["controls"]
    assert [g["causes"][0]["kind"] for g in cc61["gaps"]] == ["not_connected"]
    assert cc61["coverage"] == 0


def test_a_coverage_hole_shows_on_the_status_endpoint_and_metrics(client, auth, settings):
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        ensure_account(s, "acme")
        conn = Connection(account_id="acme", integration_id="aws", sync_frequency=Frequency.DAILY,
                          status=ConnectionStatus.ACTIVE, created_at=now - timedelta(days=10))
        s.add(conn)
        s.flush()
        items = [Item.of(bucket("logs"), "aws.s3.bucket", "passing", "Bucket logs", {})]
        for days_ago, status in ((4, RunStatus.SUCCEEDED), (3, RunStatus.FAILED),
                                 (2, RunStatus.FAILED)):
            t = now - timedelta(days=days_ago)
            run = SyncRun(account_id="acme", connection_id=conn.id, trigger=Trigger.SCHEDULED,
                          status=status, errors=[] if status is RunStatus.SUCCEEDED else [
                              {"check": None, "message": "AWS timed out"}],
                          queued_at=t, started_at=t, finished_at=t)
            s.add(run)
            s.flush()
            if status is RunStatus.SUCCEEDED:
                store_check_results(s, account_id="acme", connection_id=conn.id,
                                    check_id="aws.s3.bucket_default_encryption", items=items,
                                    run_id=run.id, now=t)
    today = now.date()
    create_audit(client, auth, period_start=(today - timedelta(days=30)).isoformat(),
                 period_end=(today + timedelta(days=30)).isoformat())

    status = client.get("/api/v1/integrations/aws/status", headers=auth).get_json()
    assert status["as_of"] is None
    [alert] = status["coverage_alerts"]
    assert alert["kind"] == "sync_failed"
    assert when(alert["last_fresh"]) == now - timedelta(days=4)
    assert when(alert["stale_since"]) == now - timedelta(days=3) + timedelta(hours=1)
    assert [r["error"] for r in alert["runs"]] == ["AWS timed out", "AWS timed out"]
    assert "soc2-cc6.1" in alert["controls"]

    metrics = client.get("/metrics").get_data(as_text=True)
    assert ('evidence_connections_without_fresh_result{cause="sync_failed",provider="aws"} 1.0'
            in metrics), metrics
    uncovered = [line for line in metrics.splitlines() if line.startswith(
        'evidence_period_controls_uncovered{cause="sync_failed",framework="soc2"}')]
    assert uncovered and float(uncovered[0].split()[-1]) >= 1
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(AuditActivity)) == 1


def test_a_running_period_is_answered_so_far_and_a_future_one_not_yet(client, auth):
    today = datetime.now(UTC).date()
    running = create_audit(client, auth, period_start=(today - timedelta(days=10)).isoformat(),
                           period_end=(today + timedelta(days=10)).isoformat())
    before = datetime.now(UTC)
    period = ok(client.get(f"/api/v1/audits/{running['id']}/period?control_id=CC6.1",
                           headers=auth))
    assert period["complete"] is False
    assert before <= when(period["ends_at"]) <= datetime.now(UTC)
    [cc61] = period["controls"]
    assert cc61["period_seconds"] < 10 * 86400 + 86400
    report = ok(client.post(f"/api/v1/audits/{running['id']}/report", headers=auth))["report"]
    assert "the period is still running" in report

    future = create_audit(client, auth, period_start=(today + timedelta(days=1)).isoformat(),
                          period_end=(today + timedelta(days=30)).isoformat())
    refused(client.get(f"/api/v1/audits/{future['id']}/period", headers=auth), 409,
            "period_not_started")
    report = ok(client.post(f"/api/v1/audits/{future['id']}/report", headers=auth))["report"]
    assert f"The period begins on {(today + timedelta(days=1)).isoformat()}." in report


def test_the_database_refuses_a_period_the_api_would_refuse(settings, db):
    from datetime import date

    from sqlalchemy.exc import IntegrityError

    from engine.models.audit import Audit, AuditType

    now = datetime.now(UTC)
    for kind, start, end in ((AuditType.TYPE_I, date(2026, 1, 1), date(2026, 6, 30)),
                             (AuditType.TYPE_II, date(2026, 6, 30), date(2026, 1, 1)),
                             (AuditType.TYPE_II, date(2026, 1, 1), None)):
        with session_factory(settings)() as s:
            ensure_account(s, "acme")
            s.add(Audit(account_id="acme", framework_id="soc2", type=kind, title="t",
                        created_by="test", created_at=now, updated_at=now, period_start=start,
                        period_end=end))
            with pytest.raises(IntegrityError, match="ck_audit_period"):
                s.flush()
