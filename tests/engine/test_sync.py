"""The sync path on real Postgres: upsert by content hash, versions, partial runs, one run."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import registry
from engine.db import Job, session_factory, set_job_sender
from engine.evidence import Item
from engine.models import (
    Account,
    ChangeKind,
    Connection,
    ConnectionStatus,
    ControlResult,
    Evidence,
    EvidenceVersion,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.settings import Settings
from engine.sync import request_sync, run_sync
from engine.vault import vault
from tests.engine import fake


@pytest.fixture
def sent() -> list[Job]:
    jobs: list[Job] = []
    set_job_sender(jobs.append)
    return jobs


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    registry.register(fake.FakeConnector)
    fake.ESTATE.update(widgets={"a": True, "b": False, "c": True}, explode=False)
    yield session_factory(settings)
    registry.unregister("fake")


@pytest.fixture
def connection_id(factory: sessionmaker[Session], settings: Settings) -> str:
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
        s.flush()
        conn = Connection(account_id="acme", integration_id="fake",
                          status=ConnectionStatus.ACTIVE,
                          credentials_encrypted=vault(settings).seal({"token": "t0k3n"}))
        s.add(conn)
        s.flush()
        return conn.id


def sync(factory: sessionmaker[Session], connection_id: str) -> SyncRun:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
    run_sync(factory, run_id, worker="test")
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_first_sync_stores_one_row_and_one_version_per_result(factory, connection_id):
    run = sync(factory, connection_id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.evidence_count == 6
    assert count(factory, Evidence) == 6
    assert count(factory, EvidenceVersion) == 6
    with factory() as s:
        statuses = dict(s.execute(select(Evidence.resource_id, Evidence.status).where(
            Evidence.check_id == "fake.widget.locked")).tuples().all())
    assert statuses == {"widget:a": "passing", "widget:b": "failing", "widget:c": "passing"}


def test_sync_twice_with_same_content_writes_no_new_version(factory, connection_id):
    sync(factory, connection_id)
    before = count(factory, EvidenceVersion)
    second = sync(factory, connection_id)
    assert second.status == RunStatus.SUCCEEDED
    assert second.changed_count == 0
    assert count(factory, EvidenceVersion) == before


def test_changed_resource_writes_one_version_and_gone_resource_is_closed(factory,
                                                                          connection_id):
    sync(factory, connection_id)
    fake.ESTATE["widgets"] = {"a": True, "b": True}  # b fixed, c deleted
    run = sync(factory, connection_id)
    assert run.changed_count == 3  # b changed in one check, c closed in both
    with factory() as s:
        changes = s.execute(select(Evidence.resource_id, EvidenceVersion.change)
                            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
                            .where(EvidenceVersion.run_id == run.id)).tuples().all()
        closed = s.scalars(select(Evidence).where(Evidence.resource_id == "widget:c")).all()
    assert sorted(changes) == [("widget:b", ChangeKind.CHANGED),
                               ("widget:c", ChangeKind.CLOSED), ("widget:c", ChangeKind.CLOSED)]
    assert all(e.closed_at is not None for e in closed)
    assert count(factory, Evidence) == 6  # closed, not deleted


def test_a_raising_check_leaves_the_others_and_ends_partial(factory, connection_id):
    sync(factory, connection_id)
    fake.ESTATE.update(explode=True, widgets={"a": False, "b": False, "c": True})
    run = sync(factory, connection_id)
    assert run.status == RunStatus.PARTIAL
    assert run.errors == [{"check": "fake.widget.exploding", "message": "RuntimeError: boom"}]
    with factory() as s:
        locked = dict(s.execute(select(Evidence.resource_id, Evidence.status).where(
            Evidence.check_id == "fake.widget.locked")).tuples().all())
        exploding = s.scalar(select(func.count()).select_from(Evidence).where(
            Evidence.check_id == "fake.widget.exploding", Evidence.closed_at.is_(None)))
    assert locked["widget:a"] == "failing"  # the healthy check stored its new verdict
    assert exploding == 3  # the raising check's earlier evidence stands


def test_control_results_roll_up_every_mapped_result(factory, connection_id):
    sync(factory, connection_id)
    with factory() as s:
        results = {(r.framework_id, r.control_id): (r.status, r.passing, r.total)
                   for r in s.scalars(select(ControlResult))}
    assert results[("soc2", "CC6.1")] == ("failing", 2, 3)
    assert results[("iso27001", "A.8.5")] == ("failing", 2, 3)
    assert results[("soc2", "CC7.2")] == ("passing", 3, 3)
    fake.ESTATE["widgets"] = {"a": True, "b": True, "c": True}
    sync(factory, connection_id)
    with factory() as s:
        cc61 = s.get_one(ControlResult, ("acme", "soc2", "CC6.1"))
    assert (cc61.status, cc61.passing, cc61.total) == ("passing", 3, 3)


def test_concurrent_sync_requests_make_one_run(factory, connection_id, sent):
    def request(_: int) -> tuple[str, bool]:
        with factory() as s, s.begin():
            run, created = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
            return run.id, created

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(request, range(8)))
    assert len({run_id for run_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert [j.name for j in sent] == ["sync.run"]


def test_a_second_delivery_of_a_running_run_does_nothing(factory, connection_id):
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
        s.get_one(SyncRun, run_id).status = RunStatus.RUNNING
        s.get_one(SyncRun, run_id).worker = "other"
        from sqlalchemy import text
        s.execute(text("UPDATE sync_run SET heartbeat_at = now() WHERE id = :id"),
                  {"id": run_id})
    assert run_sync(factory, run_id, worker="me") is None
    assert count(factory, Evidence) == 0


def test_item_hash_ignores_key_order_and_sees_value_changes():
    a = Item.of("r", "t", "passing", "x", {"b": 1, "a": [1, 2]})
    b = Item.of("r", "t", "passing", "x", {"a": [1, 2], "b": 1})
    c = Item.of("r", "t", "passing", "x", {"a": [2, 1], "b": 1})
    assert a.content_hash == b.content_hash != c.content_hash
