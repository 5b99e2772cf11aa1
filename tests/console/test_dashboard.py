"""What the console's pages are built from (engine/dashboard.py), on rows a sync writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from console.charts import trend_chart
from engine.connections import ensure_account
from engine.controls import count_controls
from engine.dashboard import (
    CONTROLS_PER_PAGE,
    RESOURCES_PER_CHECK,
    ControlFilters,
    _check_tallies,
    check_resources,
    control_board,
    control_counts,
    overview,
    pass_rate_trend,
    sync_history,
)
from engine.db import unit_of_work
from engine.errors import NotFound
from engine.frameworks import catalog
from engine.models import (
    Connection,
    ConnectionStatus,
    ControlResultHistory,
    ControlStatus,
    Evidence,
    EvidenceStatus,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.registry import connectors
from engine.tenancy import scope_to_account

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CHECK = "aws.s3.bucket_default_encryption"


def history(session, account_id: str, control: str, status: ControlStatus, days_ago: float):
    session.add(ControlResultHistory(
        account_id=account_id, framework_id="soc2", control_id=control, status=status,
        passing=int(status == ControlStatus.PASSING),
        total=int(status != ControlStatus.NOT_EVALUATED),
        evaluated_at=NOW - timedelta(days=days_ago)))


def test_the_trend_replays_the_history_day_by_day(settings, db):
    with unit_of_work(settings) as session:
        ensure_account(session, "acme")
        session.flush()
        history(session, "acme", "CC6.1", ControlStatus.FAILING, 200)  # before the window
        history(session, "acme", "CC6.6", ControlStatus.PASSING, 40)
        history(session, "acme", "CC6.1", ControlStatus.PASSING, 10)
        history(session, "acme", "CC7.2", ControlStatus.NOT_EVALUATED, 5)
        session.flush()
        trend = pass_rate_trend(session, "acme", NOW, catalog())["soc2"]
    assert len(trend) == 90 and trend[-1].day == NOW.date()
    assert trend[0].rate == 0.0  # CC6.1 failing since before the window
    assert trend[89 - 40].rate == 0.5  # CC6.6 passing from 40 days ago
    assert trend[89 - 10].rate == 1.0 and trend[-1].rate == 1.0  # nothing judged: not counted
    chart = trend_chart("SOC 2", trend)
    assert len(chart.lines) == 1 and "0% on" in chart.summary and "100% on" in chart.summary


def test_a_framework_without_results_has_no_line_and_says_so(settings, db):
    with unit_of_work(settings) as session:
        trend = pass_rate_trend(session, "nobody", NOW, catalog())["soc2"]
    chart = trend_chart("SOC 2", trend)
    assert chart.lines == [] and chart.dots == [] and "no control results" in chart.summary


def seed_failing_bucket(session, account_id: str, bucket: str) -> None:
    ensure_account(session, account_id)
    conn = Connection(account_id=account_id, integration_id="aws",
                      status=ConnectionStatus.ACTIVE)
    session.add(conn)
    session.flush()
    session.add(Evidence(account_id=account_id, connection_id=conn.id, check_id=CHECK,
                         resource_id=f"arn:aws:s3:::{bucket}", resource_type="aws.s3.bucket",
                         status=EvidenceStatus.FAILING, title=f"Bucket {bucket} is bare",
                         data={}, content_hash="0" * 64, first_seen_at=NOW,
                         last_changed_at=NOW))
    session.flush()


def test_the_control_board_shows_failing_resources_with_remediation_per_account(settings, db):
    with unit_of_work(settings) as session:
        seed_failing_bucket(session, "acme", "acme-logs")
        seed_failing_bucket(session, "globex", "globex-secrets")
    with unit_of_work(settings) as session:
        scope_to_account(session, "acme")
        board = control_board(session, ControlFilters(status=ControlStatus.FAILING))
        summary = overview(session, NOW)
    assert board.rows and all(r.count.status == ControlStatus.FAILING for r in board.rows)
    checks = [k for r in board.rows for k in r.checks if k.id == CHECK]
    assert checks and checks[0].remediation and checks[0].failing == 1
    assert [res.resource_id for res in checks[0].resources] == ["arn:aws:s3:::acme-logs"]
    assert "globex" not in repr(board)
    soc2 = next(f for f in summary.frameworks if f.id == "soc2")
    assert soc2.failing >= 1 and [c.integration_id for c in summary.connections] == ["aws"]


def test_the_integration_filter_keeps_only_its_checks(settings, db):
    with unit_of_work(settings) as session:
        seed_failing_bucket(session, "acme", "acme-logs")
    with unit_of_work(settings) as session:
        scope_to_account(session, "acme")
        board = control_board(session, ControlFilters(integration="github"))
    assert all(k.integration_id == "github" for r in board.rows for k in r.checks)
    assert all(r.count.status == ControlStatus.NOT_EVALUATED for r in board.rows)


def test_sync_history_names_the_check_that_failed_and_hides_other_accounts(settings, db):
    with unit_of_work(settings) as session:
        seed_failing_bucket(session, "acme", "acme-logs")
        seed_failing_bucket(session, "globex", "globex-secrets")
        for account in ("acme", "globex"):
            conn = session.scalars(select(Connection)
                                   .where(Connection.account_id == account)).one()
            session.add(SyncRun(account_id=account, connection_id=conn.id,
                                trigger=Trigger.MANUAL, status=RunStatus.PARTIAL,
                                evidence_count=3, errors=[{"check": CHECK, "message":
                                                           "s3:GetEncryptionConfiguration "
                                                           "was denied"}]))
    with unit_of_work(settings) as session:
        scope_to_account(session, "acme")
        runs = sync_history(session)
    assert len(runs) == 1 and runs[0].status == RunStatus.PARTIAL
    assert runs[0].integration_name == "Amazon Web Services"
    problem = runs[0].problems[0]
    assert problem.check_title and "denied" in problem.message


def seed_estate_rows(session, account_id: str, n: int) -> Connection:
    """`n` current rows over every AWS check, every third failing, every fifth erroring, one
    not applicable per check, as a sync would leave them (and a disconnected connection's)."""
    ensure_account(session, account_id)
    checks = [c.id for c in connectors()["aws"].checks]
    conns = []
    for status in (ConnectionStatus.ACTIVE, ConnectionStatus.DISCONNECTED):
        conn = Connection(account_id=account_id, integration_id="aws", status=status)
        session.add(conn)
        session.flush()
        conns.append(conn)
    for i in range(n):
        conn = conns[1] if i % 11 == 0 else conns[0]
        status = (EvidenceStatus.FAILING if i % 3 == 0 else EvidenceStatus.ERROR if i % 5 == 0
                  else EvidenceStatus.NOT_APPLICABLE if i % 7 == 0 else EvidenceStatus.PASSING)
        session.add(Evidence(account_id=account_id, connection_id=conn.id,
                             check_id=checks[i % len(checks)], resource_id=f"res-{i:04d}",
                             resource_type="aws.s3.bucket", status=status, title=f"r{i}",
                             data={}, content_hash="0" * 64, first_seen_at=NOW,
                             last_changed_at=NOW))
    session.flush()
    return conns[0]


def test_the_pages_count_controls_as_the_json_api_does(settings, db):
    with unit_of_work(settings) as session:
        live = seed_estate_rows(session, "acme", 600)
        seed_failing_bucket(session, "globex", "globex-secrets")
    with unit_of_work(settings) as session:
        scope_to_account(session, "acme")
        cat = catalog()
        for connection_id, check_ids in ((None, None),
                                         (live.id, {c.id for c in connectors()["aws"].checks})):
            tallies = _check_tallies(session, "acme", connection_id)
            mine = control_counts(session, "acme", cat, tallies, check_ids=check_ids)
            api = count_controls(session, "acme", cat=cat, check_ids=check_ids,
                                 connection_id=connection_id)
            assert mine == api and any(c.failing for c in mine)


def test_the_board_lists_a_checks_resources_once_a_page_and_pages_the_controls(
        settings, db):
    with unit_of_work(settings) as session:
        seed_estate_rows(session, "acme", 600)
    with unit_of_work(settings) as session:
        scope_to_account(session, "acme")
        first = control_board(session, ControlFilters())
        second = control_board(session, ControlFilters(page=2))
    assert first.pages >= 2 and len(first.rows) == CONTROLS_PER_PAGE
    assert first.matching == second.matching > CONTROLS_PER_PAGE
    assert second.first == CONTROLS_PER_PAGE + 1
    assert {r.count.control.key for r in first.rows}.isdisjoint(
        r.count.control.key for r in second.rows)
    listings: dict[str, int] = {}
    for row in first.rows:
        for chk in row.checks:
            if chk.resources:
                listings[chk.id] = listings.get(chk.id, 0) + 1
                assert len(chk.resources) <= RESOURCES_PER_CHECK
                assert [r.resource_id for r in chk.resources] == sorted(
                    r.resource_id for r in chk.resources)
            elif chk.failing + chk.errored:
                assert chk.listed_under in first.names  # a link to where they are listed
    assert listings and set(listings.values()) == {1}


def test_a_checks_page_lists_every_failing_resource_a_page_at_a_time(settings, db):
    with unit_of_work(settings) as session:
        seed_estate_rows(session, "acme", 600)
        seed_failing_bucket(session, "globex", "globex-secrets")
    with unit_of_work(settings) as session:
        scope_to_account(session, "acme")
        tallies = _check_tallies(session, "acme", None)
        check_id = max(tallies, key=lambda c: sum(tallies[c][1:]))  # the most failing
        whole = check_resources(session, check_id, limit=1000)
        page = check_resources(session, check_id, offset=2, limit=3)
        with pytest.raises(NotFound):
            check_resources(session, "aws.nothing.here")
    assert whole.total == len(whole.resources) > 3
    assert all(r.status in (EvidenceStatus.FAILING, EvidenceStatus.ERROR)
               for r in whole.resources)
    assert [r.resource_id for r in page.resources] == [
        r.resource_id for r in whole.resources][2:5]
    assert page.next_offset == (5 if whole.total > 5 else None)
    assert not any("globex" in r.resource_id for r in whole.resources)
