"""Rejudge: today's check code over stored snapshots, on real Postgres, with the provider down.

The doors connector of test_snapshots syncs three states; then its check's rule changes
(version 2: locked *and* alarmed). Rejudge must report exactly the verdicts the new rule
changes, per interval, without reading the provider; --apply records them, and a second
rejudge finds nothing left to change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main as evidence
from engine import ledger, registry
from engine.errors import InvalidInput, NotFound
from engine.models import (
    ChangeKind,
    Evidence,
    EvidenceVersion,
    Judgement,
    LedgerEntry,
    LedgerKind,
    SnapshotSeen,
)
from engine.rejudge import rejudge
from tests.engine import test_snapshots as doors
from tests.engine.test_snapshots import ESTATE, DoorConnector, DoorConnectorV2, sync
from workers.celery_app import make_celery, queue_depths

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def history(factory: sessionmaker[Session], connection_id: str) -> Iterator[list[datetime]]:
    """Three states of the estate synced under rule v1; then the rule becomes v2 and the
    provider goes down. Yields the start of each snapshot interval."""
    sync(factory, connection_id)                          # front ok, back no alarm, side open
    sync(factory, connection_id)                          # unchanged: no new interval
    ESTATE["doors"]["side"]["locked"] = True              # us changes
    sync(factory, connection_id)
    ESTATE["doors"]["front"]["alarm"] = False             # eu changes
    sync(factory, connection_id)
    with factory() as s:
        starts = sorted(set(s.scalars(select(SnapshotSeen.valid_from))))
    registry.unregister("snap")
    registry.register(DoorConnectorV2)
    ESTATE["down"], ESTATE["reads"] = True, 0
    yield starts
    registry.unregister("snap")
    registry.register(DoorConnector)


factory = doors.factory
connection_id = doors.connection_id


def verdicts(report) -> set[tuple[str, datetime, str | None, str | None, int | None, int]]:
    return {(c.resource_id, c.valid_from, c.old_status, c.new_status, c.old_check_version,
             c.new_check_version) for c in report.changes}


def test_rejudge_reports_exactly_the_verdicts_the_new_rule_changes_without_the_provider(
        factory, connection_id, settings, history):
    first, second, third = history
    with factory() as s:
        report = rejudge(s, settings, account_id="acme")
    assert ESTATE["reads"] == 0  # the provider was never asked (it would have raised)
    assert report.failures == []
    assert report.intervals == 3
    assert verdicts(report) == {
        # back: locked, no alarm, in every state
        ("door:back", first, "passing", "failing", 1, 2),
        ("door:back", second, "passing", "failing", 1, 2),
        ("door:back", third, "passing", "failing", 1, 2),
        # front lost its alarm in the third state only
        ("door:front", third, "passing", "failing", 1, 2),
    }  # side: open then locked and alarmed: v2 agrees with v1 everywhere
    assert [c.valid_to for c in report.changes if c.valid_from == third] == [None, None]

    for moment in (third, third + timedelta(seconds=1)):  # the state current then, whole
        with factory() as s:
            since = rejudge(s, settings, connection_id=connection_id, since=moment)
        assert verdicts(since) == {v for v in verdicts(report) if v[1] == third}


def test_apply_records_judgements_and_rejudged_versions_and_a_second_rejudge_finds_nothing(
        factory, connection_id, settings, history):
    with factory() as s, s.begin():
        versions = s.scalar(select(func.count()).select_from(EvidenceVersion))
        applied = rejudge(s, settings, account_id="acme", apply=True)
    assert applied.applied and len(applied.changes) == 4
    with factory() as s:
        judged = s.execute(select(Judgement.resource_id, Judgement.old_status,
                                  Judgement.new_status, Judgement.old_check_version,
                                  Judgement.new_check_version)).tuples().all()
        rejudged = s.execute(
            select(Evidence.resource_id, EvidenceVersion.status, EvidenceVersion.check_version)
            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
            .where(EvidenceVersion.change == ChangeKind.REJUDGED)).tuples().all()
        total = s.scalar(select(func.count()).select_from(EvidenceVersion))
        current = dict(s.execute(select(Evidence.resource_id, Evidence.status)).tuples().all())
    assert sorted(judged) == sorted([("door:back", "passing", "failing", 1, 2)] * 3
                                    + [("door:front", "passing", "failing", 1, 2)])
    # the current state is recorded as the v2 rule judges it: the changed verdicts, and the
    # door whose verdict stands but whose title the new rule words differently
    assert sorted(rejudged) == [("door:back", "failing", 2), ("door:front", "failing", 2),
                                ("door:side", "passing", 2)]
    assert total == versions + 3  # the old verdicts stay in history
    assert current == {"door:back": "failing", "door:front": "failing", "door:side": "passing"}

    with factory() as s:
        again = rejudge(s, settings, account_id="acme")
        entries = s.execute(select(LedgerEntry.subject, LedgerEntry.content).where(
            LedgerEntry.kind == LedgerKind.JUDGEMENT.value,
            LedgerEntry.content.contains('"rejudge"'))).all()
        chain = ledger.verify(s, "acme", settings=settings)
    assert again.changes == [] and again.intervals == 3
    assert [subject for subject, _ in entries] == [f"{connection_id}/snap.door.locked"] * 3
    assert sum(len(json.loads(content)["verdicts"]) for _, content in entries) == 4
    assert chain.broken is None

    ESTATE["down"] = False  # the next sync with the v2 rule agrees with what was recorded
    with factory() as s:
        before = s.scalar(select(func.count()).select_from(EvidenceVersion))
    sync(factory, connection_id)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(EvidenceVersion)) == before


def test_the_cli_prints_the_changes_as_json_and_refuses_an_unknown_scope(
        factory, connection_id, settings, history, capsys):
    assert evidence(["rejudge", "--account", "acme", "--check", "snap.door.locked",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["changes"]) == 4 and out["applied"] is False
    assert {c["resource_id"] for c in out["changes"]} == {"door:back", "door:front"}

    assert evidence(["rejudge", "--account", "acme"]) == 0
    text = capsys.readouterr().out
    assert "door:back" in text and "passing → failing" in text and "4 verdicts" in text

    with factory() as s, pytest.raises(InvalidInput):
        rejudge(s, settings, account_id="acme", check_id="snap.door.missing")
    with factory() as s, pytest.raises(NotFound):
        rejudge(s, settings, account_id="other", connection_id=connection_id)
    assert evidence(["rejudge", "--account", "acme", "--check", "snap.door.missing"]) == 2
    assert "snap.door.missing" in capsys.readouterr().err
    assert datetime.now(UTC) > history[-1]


def test_queue_sends_the_rejudge_to_its_own_queue(factory, connection_id, settings, capsys):
    celery = make_celery(settings)
    celery.control.purge()
    assert evidence(["rejudge", "--connection", connection_id, "--since", "2026-01-01",
                     "--apply", "--queue"]) == 0
    assert "rejudge queue" in capsys.readouterr().out
    assert queue_depths(celery)["rejudge"] == 1
    assert queue_depths(celery)["sync"] == 0
    with celery.connection_for_read() as conn:
        message = conn.default_channel.basic_get("rejudge")
    assert message.headers["task"] == "rejudge.run"
    assert message.headers["argsrepr"] == repr(
        ["", connection_id, "", "2026-01-01T00:00:00+00:00", "apply"])
