"""The maintenance jobs on real Postgres: the reaper (runs and task leases) and history pruning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Check
from engine import registry
from engine.db import Job, session_factory
from engine.lease import EVERY_UPLOAD, TaskKind, TaskLease, lease_id, queue_task
from engine.maintenance import expire_unverified_uploads, prune_history, reap_stale_runs
from engine.models import (
    Account,
    Connection,
    ConnectionStatus,
    ControlResultHistory,
    ControlStatus,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.models.audit import Audit, AuditType, MailStatus, OutboundMail
from engine.models.ledger import LedgerEntry
from engine.settings import Settings
from engine.sync import request_sync
from engine.vault import vault
from engine.verification import verify_connection
from tests.engine import fake


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    factory = session_factory(settings)
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
    yield factory


@pytest.fixture
def reaping(settings: Settings) -> Settings:
    return settings.model_copy(update={"lease_stale_seconds": 30, "queued_stale_seconds": 300,
                                       "max_run_attempts": 3})


def new_run(factory: sessionmaker[Session], **sql_values: str) -> str:
    with factory() as s, s.begin():
        conn = Connection(account_id="acme", integration_id=f"p{datetime.now().timestamp()}",
                          status=ConnectionStatus.ACTIVE, sync_frequency=Frequency.HOURLY)
        s.add(conn)
        s.flush()
        run, _ = request_sync(s, conn, Trigger.MANUAL)
        run_id = run.id
        if sql_values:
            assignments = ", ".join(f"{k} = {v}" for k, v in sql_values.items())
            s.execute(text(f"UPDATE sync_run SET {assignments} WHERE id = :id"), {"id": run_id})
    return run_id


def reap(factory: sessionmaker[Session], settings: Settings):
    with factory() as s, s.begin():
        return reap_stale_runs(s, settings)


def run(factory: sessionmaker[Session], run_id: str) -> SyncRun:
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def test_a_run_whose_worker_died_is_queued_again_and_sent(factory, reaping, sent):
    dead = new_run(factory, status="'running'", worker="'w1'", attempts=1,
                   heartbeat_at="now() - interval '2 minutes'")
    live = new_run(factory, status="'running'", worker="'w2'", attempts=1,
                   heartbeat_at="now() - interval '5 seconds'")
    sent.clear()
    reaped = reap(factory, reaping)
    assert (reaped.requeued, reaped.failed, reaped.resent) == ([dead], [], [])
    assert [(j.name, j.args) for j in sent] == [("sync.run", (dead,))]
    assert (run(factory, dead).status, run(factory, dead).worker) == (RunStatus.QUEUED, None)
    assert run(factory, live).status == RunStatus.RUNNING


def test_a_run_out_of_attempts_is_failed_and_its_connection_backs_off(factory, reaping):
    dead = new_run(factory, status="'running'", worker="'w1'", attempts=3,
                   started_at="now() - interval '10 minutes'",
                   heartbeat_at="now() - interval '2 minutes'")
    reaped = reap(factory, reaping)
    assert reaped.failed == [dead]
    failed = run(factory, dead)
    assert failed.status == RunStatus.FAILED and failed.finished_at is not None
    assert "stopped answering 3 times" in failed.errors[-1]["message"]
    with factory() as s:
        conn = s.get_one(Connection, failed.connection_id)
    assert conn.consecutive_failures == 1
    assert conn.next_sync_at > datetime.now(UTC) + timedelta(hours=1)


def test_a_run_queued_too_long_lost_its_message_and_is_sent_again_once(factory, reaping,
                                                                       sent):
    lost = new_run(factory, enqueued_at="now() - interval '10 minutes'")
    fresh = new_run(factory)
    sent.clear()
    assert reap(factory, reaping).resent == [lost]
    assert [j.args for j in sent] == [(lost,)]
    assert reap(factory, reaping).resent == []  # just sent: not again at the next tick
    assert run(factory, fresh).status == RunStatus.QUEUED


def test_prune_deletes_only_finished_history_older_than_the_retention(factory):
    now = datetime.now(UTC)
    new_run(factory, status="'succeeded'", finished_at="now() - interval '400 days'")
    recent = new_run(factory, status="'succeeded'", finished_at="now() - interval '3 days'")
    still_open = new_run(factory, queued_at="now() - interval '400 days'")
    with factory() as s, s.begin():
        s.add_all(ControlResultHistory(account_id="acme", framework_id="soc2",
                                       control_id="CC6.1", status=ControlStatus.PASSING,
                                       passing=1, total=1, evaluated_at=now - timedelta(days=d))
                  for d in (500, 300, 1))
    pruned = prune_history(factory, now, timedelta(days=365), batch=1)
    assert (pruned.runs, pruned.control_history) == (1, 1)
    with factory() as s:
        assert set(s.scalars(select(SyncRun.id))) == {recent, still_open}
        assert s.scalar(select(func.count()).select_from(ControlResultHistory)) == 2


def test_prune_keeps_the_runs_and_history_inside_an_audits_period(factory):
    now = datetime.now(UTC)
    start = (now - timedelta(days=500)).date()
    with factory() as s, s.begin():
        s.add(Audit(account_id="acme", framework_id="soc2", type=AuditType.TYPE_II,
                    title="FY", period_start=start, period_end=start + timedelta(days=180),
                    created_by="lead", created_at=now, updated_at=now))
    inside = new_run(factory, status="'succeeded'", finished_at="now() - interval '450 days'")
    outside = new_run(factory, status="'succeeded'", finished_at="now() - interval '250 days'")
    with factory() as s, s.begin():
        s.add_all(ControlResultHistory(account_id="acme", framework_id="soc2",
                                       control_id="CC6.1", status=ControlStatus.PASSING,
                                       passing=1, total=1, evaluated_at=now - timedelta(days=d))
                  for d in (450, 250))
    pruned = prune_history(factory, now, timedelta(days=200))
    assert (pruned.runs, pruned.control_history) == (1, 1)
    with factory() as s:
        assert set(s.scalars(select(SyncRun.id))) == {inside}, outside
        kept = s.scalars(select(ControlResultHistory.evaluated_at)).one()
    assert (now - kept).days == 450


def test_a_run_the_reaper_gives_up_on_is_recorded_in_the_ledger(factory, reaping, settings):
    dead = new_run(factory, status="'running'", worker="'w1'", attempts=3,
                   started_at="now() - interval '10 minutes'",
                   heartbeat_at="now() - interval '2 minutes'")
    assert reap(factory, reaping).failed == [dead]
    with factory() as s:
        entries = s.scalars(select(LedgerEntry).where(LedgerEntry.subject == dead)).all()
    assert [(e.kind, json.loads(e.content)["status"]) for e in entries] == [
        ("run_completed", "failed")]


# --- task leases: verify, mail, upload expiry -----------------------------------------------

@pytest.fixture
def fake_registered() -> Iterator[None]:
    registry.register(fake.FakeConnector)
    registry.register(Reconnected)
    yield
    registry.unregister("fake")
    registry.unregister(Reconnected.id)


def pending_connection(factory: sessionmaker[Session], settings: Settings,
                       integration: str = "fake", account: str = "acme") -> str:
    with factory() as s, s.begin():
        s.merge(Account(id=account))
        conn = Connection(account_id=account, integration_id=integration,
                          status=ConnectionStatus.PENDING, sync_frequency=Frequency.DAILY,
                          credentials_encrypted=vault(settings).seal({"token": "t0k3n"}))
        s.add(conn)
        s.flush()
        return conn.id


def hold_lease(factory: sessionmaker[Session], kind: TaskKind, subject: str,
               **sql_values: str | int) -> str:
    """A task lease in the state the SQL values give (default: held by w1, beating now)."""
    values = {"status": "'running'", "worker": "'w1'", "heartbeat_at": "now()", "attempts": 1,
              **sql_values}
    with factory() as s, s.begin():
        s.execute(text(
            f"INSERT INTO task_lease (id, kind, subject_id, {', '.join(values)}) "
            f"VALUES (:id, :kind, :subject, {', '.join(str(v) for v in values.values())})"),
            {"id": lease_id(kind, subject), "kind": kind.value, "subject": subject})
    return lease_id(kind, subject)


def lease(factory: sessionmaker[Session], kind: TaskKind, subject: str) -> TaskLease | None:
    with factory() as s:
        return s.get(TaskLease, lease_id(kind, subject))


def connection(factory: sessionmaker[Session], conn_id: str) -> Connection:
    with factory() as s:
        return s.get_one(Connection, conn_id)


def test_a_verify_whose_worker_died_is_sent_again_and_then_activates(
        factory, reaping, sent, settings, fake_registered):
    dead_conn, live_conn = (pending_connection(factory, settings, account=account)
                            for account in ("acme", "globex"))
    dead = hold_lease(factory, TaskKind.VERIFY, dead_conn,
                      heartbeat_at="now() - interval '2 minutes'")
    hold_lease(factory, TaskKind.VERIFY, live_conn, worker="'w2'",
               heartbeat_at="now() - interval '5 seconds'")
    sent.clear()
    reaped = reap(factory, reaping)
    assert (reaped.requeued, reaped.failed, reaped.resent) == ([dead], [], [])
    assert sent == [Job("connections.verify", (dead_conn,), queue="sync")]
    assert lease(factory, TaskKind.VERIFY, dead_conn).status == RunStatus.QUEUED
    assert lease(factory, TaskKind.VERIFY, live_conn).worker == "w2"
    assert verify_connection(factory, dead_conn, settings, worker="w3") \
        == ConnectionStatus.ACTIVE
    assert lease(factory, TaskKind.VERIFY, dead_conn) is None  # done: the lease is gone
    assert [j.name for j in sent[1:]] == ["sync.run"]  # its first sync


def test_a_second_delivery_of_a_verify_finds_the_lease_held_and_leaves(
        factory, settings, sent, fake_registered):
    conn_id = pending_connection(factory, settings)
    hold_lease(factory, TaskKind.VERIFY, conn_id)
    assert verify_connection(factory, conn_id, settings, worker="w2") \
        == ConnectionStatus.PENDING
    held = lease(factory, TaskKind.VERIFY, conn_id)
    assert (held.worker, held.attempts) == ("w1", 1)
    assert connection(factory, conn_id).status == ConnectionStatus.PENDING and sent == []


def test_a_verify_out_of_attempts_puts_the_connection_in_error_saying_why(
        factory, reaping, sent, settings):
    conn_id = pending_connection(factory, settings)
    dead = hold_lease(factory, TaskKind.VERIFY, conn_id, attempts=3,
                      heartbeat_at="now() - interval '2 minutes'")
    sent.clear()
    assert reap(factory, reaping).failed == [dead]
    conn = connection(factory, conn_id)
    assert conn.status == ConnectionStatus.ERROR
    assert "stopped answering 3 times" in conn.status_message
    assert "Connect again" in conn.status_message
    assert lease(factory, TaskKind.VERIFY, conn_id) is None and sent == []


def test_a_verify_whose_message_was_lost_is_sent_again_once(factory, reaping, sent, settings):
    conn_id = pending_connection(factory, settings)
    lost = hold_lease(factory, TaskKind.VERIFY, conn_id, status="'queued'", worker="NULL",
                      heartbeat_at="NULL", attempts=0,
                      enqueued_at="now() - interval '10 minutes'")
    sent.clear()
    assert reap(factory, reaping).resent == [lost]
    assert reap(factory, reaping).resent == []  # just sent: not again at the next tick
    assert sent == [Job("connections.verify", (conn_id,), queue="sync")]


class Reconnected(fake.FakeConnector):
    """Its verify runs while the account connects again (new credentials queue a new verify)."""

    id: ClassVar[str] = "reconnected"
    checks: ClassVar[tuple[Check, ...]] = ()
    factory: ClassVar[sessionmaker[Session] | None] = None
    connection_id: ClassVar[str] = ""

    def verify(self) -> dict[str, Any]:
        assert self.factory is not None
        with self.factory() as s, s.begin():
            queue_task(s, TaskKind.VERIFY, self.connection_id)
        return {"verified": "the old credentials"}


def test_a_verify_overtaken_by_a_reconnect_writes_nothing(factory, settings, sent,
                                                          fake_registered):
    conn_id = pending_connection(factory, settings, integration=Reconnected.id)
    Reconnected.factory, Reconnected.connection_id = factory, conn_id
    assert verify_connection(factory, conn_id, settings, worker="w1") \
        == ConnectionStatus.PENDING
    conn = connection(factory, conn_id)
    assert (conn.status, conn.meta) == (ConnectionStatus.PENDING, {})
    assert lease(factory, TaskKind.VERIFY, conn_id).status == RunStatus.QUEUED  # the new one's


def queued_mail(factory: sessionmaker[Session], settings: Settings) -> str:
    with factory() as s, s.begin():
        mail = OutboundMail(to_address="a@b.test", subject="s", status=MailStatus.QUEUED,
                            body_sealed=vault(settings).seal({"body": "b"}), attempts=1)
        s.add(mail)
        s.flush()
        return mail.id


def test_a_mail_whose_worker_died_is_sent_again_then_failed_after_its_attempts(
        factory, reaping, sent, settings):
    mail_id, given_up = queued_mail(factory, settings), queued_mail(factory, settings)
    dead = hold_lease(factory, TaskKind.MAIL, mail_id, heartbeat_at="now() - interval '1 hour'")
    out = hold_lease(factory, TaskKind.MAIL, given_up, attempts=3,
                     heartbeat_at="now() - interval '1 hour'")
    sent.clear()
    reaped = reap(factory, reaping)
    assert (reaped.requeued, reaped.failed) == ([dead], [out])
    assert sent == [Job("mail.send", (mail_id,))]
    with factory() as s:
        failed = s.get_one(OutboundMail, given_up)
        assert s.get_one(OutboundMail, mail_id).status == MailStatus.QUEUED
    assert failed.status == MailStatus.FAILED
    assert "stopped answering 3 times" in (failed.last_error or "")


class NoStore:
    def delete_many(self, keys: list[str]) -> None:
        raise AssertionError(f"a second expiry deleted {keys}")


def test_upload_expiry_is_leased_a_second_copy_leaves_and_a_dead_one_is_sent_again(
        factory, reaping, sent, settings):
    held = hold_lease(factory, TaskKind.EXPIRE_UPLOADS, EVERY_UPLOAD)
    second = expire_unverified_uploads(factory, NoStore(), datetime.now(UTC),  # type: ignore[arg-type]
                                       timedelta(hours=1), settings=reaping, worker="w2")
    assert second.uploads == 0
    with factory() as s, s.begin():
        s.execute(text("UPDATE task_lease SET heartbeat_at = now() - interval '2 minutes' "
                       "WHERE id = :id"), {"id": held})
    sent.clear()
    assert reap(factory, reaping).requeued == [held]
    assert sent == [Job("maintenance.expire_unverified_uploads", ())]
