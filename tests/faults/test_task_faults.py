"""kill -9 of the worker in the middle of the tasks that move state without a run: verifying a
connection (the real AWS connector against moto), sending a mail (a local SMTP server) and
expiring unverified uploads (moto's S3). The broker's visibility timeout is an hour, as in
production, so what brings each task back is its lease going stale and the reaper sending it
again (engine/lease.py), not a redelivery. Each test prints what it saw (`pytest -s`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from sqlalchemy import func, select, update

from engine.connections import connect
from engine.db import unit_of_work
from engine.lease import EVERY_UPLOAD, TaskKind, TaskLease, lease_id
from engine.mail import queue_mail
from engine.models import Account, Connection, ConnectionStatus, Frequency, RunStatus, SyncRun
from engine.models.audit import MailStatus, OutboundMail
from engine.models.push import EvidenceObject, ObjectStatus
from engine.tenancy import scope_to_account
from tests.emulators import reset_moto
from tests.faults.held import HeldInbox, HeldProxy, held_smtp
from tests.faults.stack import Stack, log_count

REALISTIC_VISIBILITY = 3600
BUCKET = "held-evidence"
KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(scope="module")
def held_moto(moto_endpoint: str) -> Iterator[HeldProxy]:
    """moto's server behind a proxy whose gate the test closes to hold the worker's call."""
    with HeldProxy(moto_endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def held_mail() -> Iterator[tuple[HeldInbox, int]]:
    with held_smtp() as server:
        yield server


@pytest.fixture
def tasks(live: Stack, held_moto: HeldProxy, held_mail: tuple[HeldInbox, int]) -> Iterator[Stack]:
    """The stack with its `default` worker replaced by one that sends mail through the held
    SMTP server and keeps evidence in moto's S3 behind the held proxy."""
    reset_moto(held_moto.upstream)
    held_moto.gate.open()
    held_moto.gate.reset()
    held_mail[0].gate.reset()
    held_mail[0].messages.clear()
    held_mail[0].abandoned = 0
    assert live.settings.visibility_timeout == REALISTIC_VISIBILITY
    live.stop("worker-default")
    live.worker("worker-tasks", "default", concurrency=2, **{
        "EVIDENCE_SMTP_HOST": "127.0.0.1", "EVIDENCE_SMTP_PORT": str(held_mail[1]),
        "EVIDENCE_STORAGE_ENDPOINT_URL": held_moto.url, "EVIDENCE_STORAGE_BUCKET": BUCKET,
        "EVIDENCE_STORAGE_ACCESS_KEY_ID": KEY, "EVIDENCE_STORAGE_SECRET_ACCESS_KEY": SECRET,
        "EVIDENCE_UPLOAD_VERIFY_WINDOW_SECONDS": "3600"})
    try:
        yield live
    finally:
        held_moto.gate.open()
        held_mail[0].gate.open()
        live.stop("worker-tasks")
        live.worker("worker-default", "default", concurrency=4)


def task_lease(stack: Stack, kind: TaskKind, subject: str) -> TaskLease | None:
    with stack.factory() as s:
        return s.get(TaskLease, lease_id(kind, subject))


def held_by(stack: Stack, kind: TaskKind, subject: str) -> str | None:
    """The stack process holding the task's lease, once one does."""
    lease = task_lease(stack, kind, subject)
    if lease is None or lease.status != RunStatus.RUNNING or lease.worker is None:
        return None
    return stack.name_of_pid(int(lease.worker.split(":")[1]))


def receipts(stack: Stack, name: str, task: str, task_id: str) -> int:
    return log_count(stack.procs[name], f"{task}[{task_id}] received")


def test_a_worker_killed_while_the_smtp_server_holds_the_data_sends_the_mail_after_restart(
        tasks: Stack, held_mail: tuple[HeldInbox, int]):
    inbox, port = held_mail
    inbox.gate.close()
    sender = tasks.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
    tasks.use_as_job_sender()
    with unit_of_work(tasks.settings) as s:
        mail_id = queue_mail(s, sender, to="auditor@example.test", subject="Your audit",
                             body="Follow the link to begin.").id
    [first_task] = tasks.task_ids[mail_id]
    tasks.wait_for(lambda: inbox.gate.held, 90, "the mail's DATA to be held")
    owner = tasks.wait_for(lambda: held_by(tasks, TaskKind.MAIL, mail_id), 30,
                           "the mail's lease to be held")
    tasks.kill(owner)  # SIGKILL before the server's 250 reached the worker
    killed_at = time.monotonic()
    tasks.wait_for(lambda: inbox.abandoned >= 1, 30, "the server to drop the killed session")
    tasks.worker(owner, "default", wait=False)
    inbox.gate.open()
    mail = tasks.wait_for(lambda: mail_in(tasks, mail_id, MailStatus.SENT), 120,
                          "the mail to be sent again by the restarted worker")
    deliveries = receipts(tasks, owner, "mail.send", first_task)
    print(f"\nmail kill -9: {mail.status.value} after {mail.attempts} attempts, "
          f"{time.monotonic() - killed_at:.1f}s after the kill; messages accepted="
          f"{len(inbox.messages)}, sessions dropped with the worker={inbox.abandoned}; first "
          f"message delivered {deliveries} time(s)")
    assert mail.status == MailStatus.SENT and mail.attempts == 2
    assert mail.body_sealed is None  # the link exists only in the mailbox now
    assert [m["Message-ID"] for m in inbox.messages] == [f"<{mail_id}@localhost>"]
    assert deliveries == 1
    assert task_lease(tasks, TaskKind.MAIL, mail_id) is None


def mail_in(stack: Stack, mail_id: str, status: MailStatus) -> OutboundMail | None:
    with stack.factory() as s:
        mail = s.get_one(OutboundMail, mail_id)
    return mail if mail.status == status else None


def test_a_worker_killed_mid_upload_expiry_leaves_rows_the_next_run_finishes(
        tasks: Stack, held_moto: HeldProxy):
    s3 = boto3.client("s3", endpoint_url=held_moto.upstream, region_name="us-east-1",
                      aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"acme/uploads/{n:02d}.csv" for n in range(12)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"never verified\n")
    with tasks.factory() as s, s.begin():
        s.merge(Account(id="acme"))
        s.add_all(EvidenceObject(account_id="acme", upload_key=key, filename="a.csv",
                                 content_type="text/csv", status=ObjectStatus.PENDING,
                                 uploaded_by="test", created_at=func.now() - timedelta(days=2),
                                 upload_expires_at=func.now() - timedelta(days=1))
                  for key in keys)
    held_moto.gate.close()  # the job's DeleteObjects call waits here
    tasks.celery.send_task("maintenance.expire_unverified_uploads", queue="default")
    tasks.wait_for(lambda: any("delete" in c for c in held_moto.gate.held), 90,
                   "the expiry's DeleteObjects call to be held")
    owner = tasks.wait_for(lambda: held_by(tasks, TaskKind.EXPIRE_UPLOADS, EVERY_UPLOAD), 30,
                           "the expiry's lease to be held")
    tasks.kill(owner)  # SIGKILL mid-batch: objects maybe deleted, rows not yet committed
    killed_at = time.monotonic()
    assert expired_uploads(tasks) == 0  # the batch's rows are all still pending
    tasks.worker(owner, "default", wait=False)
    held_moto.gate.open()
    tasks.wait_for(lambda: expired_uploads(tasks) == len(keys), 120,
                   "the reaper to send the expiry again and it to finish the batch")
    left = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
    print(f"\nupload expiry kill -9: {expired_uploads(tasks)}/{len(keys)} rows expired "
          f"{time.monotonic() - killed_at:.1f}s after the kill; objects left={left}; "
          f"store calls held={len(held_moto.gate.held)}")
    assert left == 0
    assert task_lease(tasks, TaskKind.EXPIRE_UPLOADS, EVERY_UPLOAD) is None


def expired_uploads(stack: Stack) -> int:
    with stack.factory() as s:
        return s.scalar(select(func.count()).select_from(EvidenceObject)
                        .where(EvidenceObject.status == ObjectStatus.EXPIRED)) or 0


def test_a_worker_killed_during_verify_is_replaced_and_the_connection_activates(
        tasks: Stack, held_moto: HeldProxy):
    held_moto.gate.close()  # the verify's first AWS call (STS GetCallerIdentity) waits here
    tasks.use_as_job_sender()
    with unit_of_work(tasks.settings) as s:
        conn_id = connect(scope_to_account(s, "acme"), integration_id="aws", credentials={
            "access_key_id": KEY, "secret_access_key": SECRET, "regions": ["us-east-1"],
            "endpoint_url": held_moto.url}, frequency=Frequency.DAILY, settings=tasks.settings).id
    [first_task] = tasks.task_ids[conn_id]
    tasks.wait_for(lambda: any("GetCallerIdentity" in c for c in held_moto.gate.held), 90,
                   "the verify's AWS call to be held")
    owner = tasks.wait_for(lambda: held_by(tasks, TaskKind.VERIFY, conn_id), 30,
                           "the verify's lease to be held")
    tasks.kill(owner)  # SIGKILL with the provider call in flight
    killed_at = time.monotonic()
    tasks.worker(owner, "sync", wait=False)  # its supervisor restarts it
    held_moto.gate.open()
    conn = tasks.wait_for(lambda: connection_in(tasks, conn_id, ConnectionStatus.ACTIVE), 120,
                          "the killed verify to be sent again and the connection to activate")
    recovered = time.monotonic() - killed_at
    deliveries = receipts(tasks, owner, "connections.verify", first_task)
    print(f"\nverify kill -9: connection {conn.status.value} ({conn.meta.get('accountId')}) "
          f"{recovered:.1f}s after the kill; the killed worker's message delivered "
          f"{deliveries} time(s) (visibility timeout {tasks.settings.visibility_timeout}s), "
          f"AWS calls held {len(held_moto.gate.held)}")
    cancel_runs(tasks, conn_id)  # the first sync it queued is not this test's subject
    assert conn.status == ConnectionStatus.ACTIVE and conn.meta["accountId"] == "123456789012"
    assert deliveries == 1  # the broker never handed the killed worker's message out again
    assert task_lease(tasks, TaskKind.VERIFY, conn_id) is None  # done: the lease is gone


def connection_in(stack: Stack, conn_id: str, status: ConnectionStatus) -> Connection | None:
    with stack.factory() as s:
        conn = s.get_one(Connection, conn_id)
    return conn if conn.status == status else None


def cancel_runs(stack: Stack, conn_id: str) -> None:
    with stack.factory() as s, s.begin():
        s.execute(update(SyncRun).where(SyncRun.connection_id == conn_id,
                                        SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
                  .values(status=RunStatus.CANCELLED, finished_at=func.now()))
