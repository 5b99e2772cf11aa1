"""What the console's pages are built from (engine/dashboard.py), on rows a sync writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from console.charts import trend_chart
from engine.connections import ensure_account
from engine.dashboard import (
    ControlFilters,
    control_board,
    overview,
    pass_rate_trend,
    sync_history,
)
from engine.db import unit_of_work
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
