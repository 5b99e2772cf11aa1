"""The tamper-evident ledger on real Postgres: what a sync, a pushed link and an audit append;
the triggers; verify naming the first broken entry; signed checkpoints; concurrent appends."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine import audits, ledger, registry
from engine.apikeys import Caller
from engine.audits import Actor, AuditChanges, FindingChanges
from engine.db import Job, session_factory
from engine.models import Connection, EvidenceVersion, RunStatus, SyncRun, Trigger
from engine.models.audit import (
    ActorKind,
    AuditStatus,
    AuditType,
    FindingSeverity,
    FindingStatus,
    ReviewStatus,
)
from engine.models.ledger import LedgerCheckpoint, LedgerEntry, LedgerKind
from engine.parts import run_part
from engine.pushed import link_to_control, request_upload
from engine.settings import Settings
from engine.storage import open_store
from engine.sync import request_sync, run_sync
from tests.engine import fake
from tests.engine.test_parts import fan_out

ACME = "acme"
CUSTOMER = Actor(ActorKind.CUSTOMER, "owner@acme.test")
AUDITOR = Actor(ActorKind.AUDITOR, "Ann Auditor (audit firm)")


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    registry.register(fake.FakeConnector)
    fake.ESTATE.update(widgets={"a": True, "b": False, "c": True}, explode=False)
    yield session_factory(settings)
    registry.unregister("fake")


@pytest.fixture
def connection_id(factory: sessionmaker[Session], settings: Settings) -> str:
    return fake.add_connection(factory, settings, "fake")


def sync(factory: sessionmaker[Session], connection_id: str) -> SyncRun:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
    run_sync(factory, run_id, worker="test")
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def entries(factory: sessionmaker[Session], account_id: str = ACME) -> list[LedgerEntry]:
    with factory() as s:
        return list(s.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id)
                              .order_by(LedgerEntry.seq)))


def verify(factory: sessionmaker[Session], checkpoint: dict[str, Any] | None = None,
           account_id: str = ACME) -> ledger.Verdict:
    with factory() as s:
        return ledger.verify(s, account_id, checkpoint=checkpoint)


def as_superuser(factory: sessionmaker[Session], sql: str, **params: Any) -> None:
    """Change rows behind the ledger's back: triggers off for this transaction only."""
    with factory() as s, s.begin():
        s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(text(sql), params)


def take_checkpoint(factory: sessionmaker[Session], reason: str = "test") -> dict[str, Any]:
    with factory() as s, s.begin():
        return ledger.checkpoint_document(ledger.checkpoint(s, ACME, reason=reason))


def test_a_sync_appends_one_entry_per_changed_check_then_its_judgement_and_completion(
        factory, connection_id):
    run = sync(factory, connection_id)
    chain = entries(factory)
    assert [e.kind for e in chain] == ["evidence_versions", "evidence_versions", "judgement",
                                       "run_completed"]
    assert [e.seq for e in chain] == [1, 2, 3, 4]
    assert chain[0].prev_sha256 == ledger.GENESIS
    assert all(b.prev_sha256 == a.entry_sha256 for a, b in zip(chain, chain[1:], strict=False))
    with factory() as s:
        version_ids = sorted(s.scalars(select(EvidenceVersion.id)))
    batches = [json.loads(e.content) for e in chain[:2]]
    assert {b["check_id"] for b in batches} == {"fake.widget.locked", "fake.widget.exploding"}
    assert all(b["run_id"] == run.id and b["versions"] == 3 for b in batches)
    covered = sorted(i for b in batches for lo, hi in b["ids"] for i in range(lo, hi + 1))
    assert covered == version_ids
    completed = json.loads(chain[3].content)
    assert (completed["run_id"], completed["status"]) == (run.id, "succeeded")

    sync(factory, connection_id)  # nothing changed: one more entry, the run's completion
    assert [e.kind for e in entries(factory)][4:] == ["run_completed"]

    fake.ESTATE["widgets"] = {"a": True, "b": True, "c": True}  # b fixed: one check changes
    sync(factory, connection_id)
    added = entries(factory)[5:]
    assert [e.kind for e in added] == ["evidence_versions", "judgement", "run_completed"]
    assert json.loads(added[0].content)["versions"] == 1
    verdict = verify(factory)
    assert verdict.ok and verdict.length == 8
    assert verdict.head_sha256 == added[-1].entry_sha256


def test_the_ledger_refuses_update_delete_and_truncate(factory, connection_id):
    sync(factory, connection_id)
    for sql in ("UPDATE ledger_entry SET content = '{}' WHERE seq = 1",
                "DELETE FROM ledger_entry WHERE seq = 1", "TRUNCATE ledger_entry"):
        with factory() as s, s.begin(), pytest.raises(DBAPIError, match="append-only"):
            s.execute(text(sql))
    assert len(entries(factory)) == 4
    assert verify(factory).ok


def test_editing_one_evidence_version_names_the_entry_that_covers_it(factory, connection_id):
    sync(factory, connection_id)
    chain = entries(factory)
    target = next(e for e in chain if e.subject.endswith("/fake.widget.exploding"))
    lo, _ = json.loads(target.content)["ids"][0]
    as_superuser(factory, "UPDATE evidence_version SET status = 'passing', title = 'fine' "
                 "WHERE id = :id", id=lo)
    verdict = verify(factory)
    assert not verdict.ok and verdict.broken is not None
    assert (verdict.broken.seq, verdict.broken.kind) == (target.seq, "evidence_versions")
    assert "was changed" in verdict.broken.reason


@pytest.mark.parametrize("change", ["snapshot_sha256 = repeat('0', 64)",
                                    "check_version = check_version + 1",
                                    "recorded_at = recorded_at - interval '1 day'"])
def test_changing_what_judged_a_version_or_when_breaks_its_entry(factory, connection_id,
                                                                 change):
    sync(factory, connection_id)
    first = entries(factory)[0]
    lo, _ = json.loads(first.content)["ids"][0]
    as_superuser(factory, f"UPDATE evidence_version SET {change} WHERE id = :id", id=lo)
    broken = verify(factory).broken
    assert broken is not None and broken.seq == first.seq


def test_deleting_one_evidence_version_names_the_missing_id(factory, connection_id):
    sync(factory, connection_id)
    target = entries(factory)[0]
    _, hi = json.loads(target.content)["ids"][-1]
    as_superuser(factory, "DELETE FROM evidence_version WHERE id = :id", id=hi)
    broken = verify(factory).broken
    assert broken is not None and broken.seq == 1
    assert f"missing ids {hi}" in broken.reason


def test_editing_a_ledger_row_names_it(factory, connection_id):
    sync(factory, connection_id)
    as_superuser(factory, "UPDATE ledger_entry SET content = replace(content, 'succeeded', "
                 "'failed') WHERE account_id = 'acme' AND seq = 4")
    broken = verify(factory).broken
    assert broken is not None and (broken.seq, broken.kind) == (4, "run_completed")
    assert "content was changed" in broken.reason


def test_rewriting_a_ledger_row_with_its_hashes_breaks_the_next_link(factory, connection_id):
    sync(factory, connection_id)
    chain = entries(factory)
    forged = '{"controls":[]}'
    content_sha = ledger.sha256_hex(forged)
    entry_sha = ledger.entry_hash(account_id=ACME, seq=3, kind="judgement",
                                  subject=chain[2].subject, recorded_at=chain[2].recorded_at,
                                  content_sha256=content_sha, prev_sha256=chain[2].prev_sha256)
    as_superuser(factory, "UPDATE ledger_entry SET content = :c, content_sha256 = :h, "
                 "entry_sha256 = :e WHERE account_id = 'acme' AND seq = 3",
                 c=forged, h=content_sha, e=entry_sha)
    broken = verify(factory).broken
    assert broken is not None and broken.seq == 4
    assert "entry 3" in broken.reason


def test_deleting_a_ledger_row_names_it(factory, connection_id):
    sync(factory, connection_id)
    as_superuser(factory, "DELETE FROM ledger_entry WHERE account_id = 'acme' AND seq = 2")
    broken = verify(factory).broken
    assert broken is not None and broken.seq == 2
    assert "entry 2 is missing" in broken.reason


def test_deleting_the_last_entries_is_seen_from_the_head(factory, connection_id):
    sync(factory, connection_id)
    as_superuser(factory, "DELETE FROM ledger_entry WHERE account_id = 'acme' AND seq >= 3")
    broken = verify(factory).broken
    assert broken is not None and broken.seq == 3
    assert "entries 3–4 are missing" in broken.reason


def test_a_checkpoint_taken_before_an_edit_still_verifies_its_prefix(factory, connection_id):
    sync(factory, connection_id)
    kept = take_checkpoint(factory)
    assert kept["length"] == 4
    fake.ESTATE["widgets"] = {"a": False}
    sync(factory, connection_id)
    length = len(entries(factory))
    as_superuser(factory, "UPDATE ledger_entry SET subject = 'forged' "
                 "WHERE account_id = 'acme' AND seq = :seq", seq=length - 1)
    verdict = verify(factory, kept)
    assert verdict.checkpoint is not None and verdict.checkpoint.ok, verdict.checkpoint
    assert verdict.broken is not None and verdict.broken.seq == length - 1
    assert not verdict.ok

    as_superuser(factory, "UPDATE ledger_entry SET subject = 'forged' "
                 "WHERE account_id = 'acme' AND seq = 2")
    verdict = verify(factory, kept)
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok
    assert "entry 2" in verdict.checkpoint.reason


def test_a_checkpoint_fails_when_an_evidence_version_inside_it_changes(factory, connection_id):
    sync(factory, connection_id)
    kept = take_checkpoint(factory)
    lo, _ = json.loads(entries(factory)[0].content)["ids"][0]
    as_superuser(factory, "UPDATE evidence_version SET data = '{}' WHERE id = :id", id=lo)
    verdict = verify(factory, kept)
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok


def test_a_checkpoint_names_entries_removed_after_it(factory, connection_id):
    sync(factory, connection_id)
    kept = take_checkpoint(factory)
    as_superuser(factory, "DELETE FROM ledger_entry WHERE account_id = 'acme' AND seq = 4")
    as_superuser(factory, "UPDATE ledger_head SET seq = 3, entry_sha256 = "
                 "(SELECT entry_sha256 FROM ledger_entry WHERE account_id = 'acme' AND seq = 3)")
    verdict = verify(factory, kept)
    assert verdict.broken is None  # the chain alone looks whole; the checkpoint knows better
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok
    assert "entries were removed" in verdict.checkpoint.reason


def test_a_checkpoint_with_a_bad_signature_fails(factory, connection_id):
    sync(factory, connection_id)
    kept = take_checkpoint(factory)
    forged = {**kept, "length": 3}
    verdict = verify(factory, forged)
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok
    assert "signature does not verify" in verdict.checkpoint.reason
    signature = bytearray(base64.b64decode(kept["signature"]))
    signature[0] ^= 1
    tampered = {**kept, "signature": base64.b64encode(bytes(signature)).decode()}
    verdict = verify(factory, tampered)
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok
    assert verify(factory, kept).ok


def test_a_checkpoint_signed_by_another_key_fails(factory, connection_id):
    sync(factory, connection_id)
    kept = take_checkpoint(factory)
    other = Ed25519PrivateKey.generate()
    key_id = ledger.key_id_of(other.public_key())
    payload = ledger.signed_payload(ACME, kept["length"], kept["head_sha256"],
                                    kept["signed_at"], key_id)
    foreign = {**kept, "key_id": key_id,
               "signature": base64.b64encode(other.sign(payload)).decode()}
    verdict = verify(factory, foreign)
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok
    assert "not this deployment's key" in verdict.checkpoint.reason


def test_concurrent_appends_of_one_account_make_one_unbroken_chain(factory, connection_id):
    rounds, threads = 25, 4
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(rounds):
                with factory() as s, s.begin():
                    ledger.append(s, ACME, LedgerKind.AUDIT_ACTIVITY, {"writer": n, "i": i})
                    ledger.append(s, ACME, LedgerKind.AUDIT_ACTIVITY, {"writer": n, "j": i})
        except BaseException as exc:  # noqa: BLE001 (reported below)
            failures.append(exc)

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not failures
    chain = entries(factory)
    assert [e.seq for e in chain] == list(range(1, rounds * threads * 2 + 1))
    verdict = verify(factory)
    assert verdict.ok and verdict.length == rounds * threads * 2


def test_a_rolled_back_transaction_appends_nothing(factory, connection_id):
    with factory() as s, s.begin():
        ledger.append(s, ACME, LedgerKind.AUDIT_ACTIVITY, {"kept": True})
    with factory() as s:
        ledger.append(s, ACME, LedgerKind.AUDIT_ACTIVITY, {"kept": False})
        s.rollback()
    with factory() as s, s.begin():
        s.execute(text("SELECT 1"))
    assert [json.loads(e.content) for e in entries(factory)] == [{"kept": True}]


def test_an_audit_appends_reviews_findings_and_status_changes_and_checkpoints_each_move(
        factory, connection_id):
    sync(factory, connection_id)
    with factory() as s, s.begin():
        audit = audits.create_audit(s, ACME, CUSTOMER, framework_id="soc2",
                                    audit_type=AuditType.TYPE_I, title="SOC 2 2026")
        audit_id = audit.id
        audits.update_audit(s, audit, CUSTOMER, AuditChanges(status=AuditStatus.IN_PROGRESS))
        audits.update_audit(s, audit, CUSTOMER,
                            AuditChanges(status=AuditStatus.EVIDENCE_REVIEW))
    with factory() as s, s.begin():
        audit = audits.get_audit(s, ACME, audit_id)
        control = next(iter(audits.framework(audit.framework_id).controls.values())).id
        audits.review_control(s, audit, AUDITOR, control, status=ReviewStatus.PASSED,
                              notes="sampled")
        finding = audits.create_finding(s, audit, AUDITOR, control_ref=control,
                                        severity=FindingSeverity.MINOR, title="Late review",
                                        description="Access review was a week late.")
        audits.update_finding(s, audit, AUDITOR, finding.id,
                              FindingChanges(status=FindingStatus.RESOLVED))
    kinds = [(e.kind, e.subject) for e in entries(factory)[4:]]
    assert kinds == [("audit_activity", audit_id), ("audit_status", audit_id),
                     ("audit_status", audit_id), ("audit_review", audit_id),
                     ("finding", audit_id), ("finding", audit_id)]
    review = json.loads(entries(factory)[7].content)
    assert review["details"]["status"] == "passed" and review["control_id"] == control
    with factory() as s:
        marks = s.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.length)).all()
        assert [(c.reason, c.audit_id, c.length) for c in marks] == [
            ("audit_status", audit_id, 6), ("audit_status", audit_id, 7)]
        documents = [ledger.checkpoint_document(c) for c in marks]
    assert all(verify(factory, d).ok for d in documents)
    with factory() as s:
        report = audits.render(s, audits.get_audit(s, ACME, audit_id), datetime.now(UTC))
    section = report[report.index("## Ledger Checkpoints"):]
    assert all(f"`{d['head_sha256']}`" in section and f"`{d['signature']}`" in section
               for d in documents)
    kept = json.loads(section.split("```json\n")[1].split("\n```")[0])
    assert kept == documents[-1] and verify(factory, kept).ok


def test_a_new_pushed_link_is_appended_once(factory, connection_id, settings, moto_endpoint):
    store_settings = settings.model_copy(update={
        "storage_endpoint_url": moto_endpoint, "storage_bucket": "ledger-push-tests",
        "storage_access_key_id": "testing",
        "storage_secret_access_key": SecretStr("testing-secret")})
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing-secret",
                 ).create_bucket(Bucket="ledger-push-tests")
    store, caller = open_store(store_settings), Caller(ACME, "ci@acme.test")
    now = datetime.now(UTC)
    body = b"quarterly access review, signed"
    with factory() as s, s.begin():
        ticket = request_upload(s, store, caller, filename="review.pdf",
                                content_type="application/pdf", control_ref="CC6.1",
                                framework_ref="soc2", size=len(body), max_size=1 << 20,
                                expires_in=300, now=now)
        url, key = ticket.upload_url, ticket.evidence.upload_key
    assert requests.put(url, data=body, headers={"Content-Type": "application/pdf"},
                        timeout=30).status_code == 200
    sha = hashlib.sha256(body).hexdigest()
    for _ in range(2):  # the same link again is answered from the first: appended once
        with factory() as s, s.begin():
            link = link_to_control(s, store, caller, sha, control_ref="CC6.1",
                                   framework_ref="soc2", assessment_id=None, object_key=key,
                                   max_size=1 << 20, now=now)
            assert link.lineage is not None
    links = [e for e in entries(factory) if e.kind == "pushed_link"]
    assert len(links) == 1
    content = json.loads(links[0].content)
    assert (content["sha256"], content["control_id"]) == (sha, "CC6.1")
    assert verify(factory).ok


def test_the_daily_checkpoint_signs_only_chains_that_moved(factory, connection_id, settings):
    sync(factory, connection_id)
    with factory() as s, s.begin():
        ledger.append(s, "other", LedgerKind.AUDIT_ACTIVITY, {"hello": 1})
    now = datetime.now(UTC)
    with factory() as s, s.begin():
        first = [c.account_id for c in ledger.checkpoint_moved(s, now)]
    with factory() as s, s.begin():
        second = [c.account_id for c in ledger.checkpoint_moved(s, now + timedelta(days=1))]
    sync(factory, connection_id)
    with factory() as s, s.begin():
        third = [(c.account_id, c.length)
                 for c in ledger.checkpoint_moved(s, now + timedelta(days=2))]
    assert (first, second, third) == (["acme", "other"], [], [("acme", 5)])


@pytest.mark.parametrize("form", ["pem", "raw"])
def test_a_configured_signing_key_signs_and_no_key_is_stored(factory, connection_id, settings,
                                                             form):
    key = Ed25519PrivateKey.generate()
    value = (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode() if form == "pem" else
             base64.b64encode(key.private_bytes(serialization.Encoding.Raw,
                                                serialization.PrivateFormat.Raw,
                                                serialization.NoEncryption())).decode())
    configured = settings.model_copy(update={"ledger_signing_key": SecretStr(value)})
    with factory() as s, s.begin():
        cp = ledger.checkpoint(s, ACME, reason="test", settings=configured)
        assert cp.key_id == ledger.key_id_of(key.public_key())
        assert ledger.public_key(s, configured).key_id == cp.key_id
        assert s.scalar(text("SELECT count(*) FROM ledger_signing_key")) == 0
        document = ledger.checkpoint_document(cp)
    with factory() as s:
        assert ledger.verify(s, ACME, checkpoint=document, settings=configured).ok
        assert not ledger.verify(s, ACME, checkpoint=document).ok  # the generated key differs


def test_the_generated_key_is_stored_sealed_never_in_plaintext(factory, connection_id):
    with factory() as s, s.begin():
        key = ledger.signing_key(s)
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    with factory() as s:
        sealed = s.scalar(text("SELECT sealed FROM ledger_signing_key"))
        assert seed not in sealed and base64.b64encode(seed) not in sealed
        again = ledger.signing_key(s)
    assert ledger.key_id_of(again.public_key()) == ledger.key_id_of(key.public_key())


def test_every_account_is_verified_by_itself(factory, connection_id):
    sync(factory, connection_id)
    with factory() as s, s.begin():
        ledger.append(s, "other", LedgerKind.AUDIT_ACTIVITY, {"hello": 1})
    as_superuser(factory, "UPDATE ledger_entry SET kind = 'finding' WHERE account_id = 'other'")
    with factory() as s:
        assert ledger.accounts(s) == ["acme", "other"]
    assert verify(factory).ok
    broken = verify(factory, account_id="other").broken
    assert broken is not None and (broken.account_id, broken.seq) == ("other", 1)


def test_a_batch_with_gaps_in_its_ids_records_each_range(factory, connection_id):
    sync(factory, connection_id)
    later = datetime.now(UTC) + timedelta(hours=1)
    with factory() as s, s.begin():
        mark = ledger.version_mark(s)
        evidence_id = s.scalar(text("SELECT min(id) FROM evidence"))
        for skip in (False, True):
            if skip:  # another writer took ids in between
                s.execute(text("SELECT nextval('evidence_version_id_seq')"))
            s.execute(text(
                "INSERT INTO evidence_version (evidence_id, account_id, run_id, change, status, "
                "title, data, content_hash, recorded_at) VALUES (:e, 'acme', 'run-x', 'changed', "
                "'passing', 'Widget a is locked', '{\"locked\": true}', 'h', :t)"),
                {"e": evidence_id, "t": later})
        ledger.append_versions(s, account_id=ACME, connection_id=connection_id,
                               check_id="fake.widget.locked", run_id="run-x", now=later,
                               after_id=mark)
    batch = entries(factory)[-1]
    ids = json.loads(batch.content)["ids"]
    assert len(ids) == 2 and ids[0][0] == ids[0][1] == mark + 1
    assert ids[1][0] == ids[1][1] == mark + 3
    assert verify(factory).ok
    as_superuser(factory, "DELETE FROM evidence_version WHERE id = :id", id=mark + 3)
    broken = verify(factory).broken
    assert broken is not None and broken.seq == batch.seq
    assert f"missing ids {mark + 3}" in broken.reason


def test_an_evidence_version_added_behind_the_ledgers_back_is_named(factory, connection_id):
    sync(factory, connection_id)
    with factory() as s, s.begin():
        evidence_id = s.scalar(text("SELECT min(id) FROM evidence"))
        forged = [s.scalar(text(
            "INSERT INTO evidence_version (evidence_id, account_id, run_id, change, status, "
            "title, data, content_hash, recorded_at) VALUES (:e, 'acme', NULL, 'changed', "
            "'passing', 'Widget b is locked', '{}', 'h', now()) RETURNING id"),
            {"e": evidence_id}) for _ in range(2)]
    verdict = verify(factory)
    assert verdict.broken is None and not verdict.ok
    assert (verdict.unrecorded, verdict.unrecorded_count) == (tuple(forged), 2)
    assert ledger.describe(verdict)[1].startswith("UNRECORDED acme: 2 evidence versions are "
                                                  f"covered by no ledger entry (ids {forged[0]}")
    fake.ESTATE["widgets"] = {"a": False}
    sync(factory, connection_id)  # later batches are covered; the forged rows stay named
    assert verify(factory).unrecorded == tuple(forged)


def test_a_run_fanned_out_over_parts_running_at_once_makes_one_unbroken_chain(
        settings, db, sent):
    registry.register(fake.SplitConnector)
    fake.ESTATE.update(widgets={"a": True, "b": False, "c": True}, explode=False)
    fake.SPLIT.update(gadgets={"x": True, "y": False}, gears={"g": True}, refuse=False,
                      reads=[])
    try:
        factory = session_factory(settings)
        connection_id = fake.add_connection(factory, settings, "split")
        fanned = settings.model_copy(update={"sync_parts": 3})
        run_id, parts = fan_out(factory, connection_id, fanned, sent)
        workers = [threading.Thread(target=run_part, args=(factory, p, f"w{n}", fanned))
                   for n, p in enumerate(parts)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        registry.unregister("split")
    with factory() as s:
        assert s.get_one(SyncRun, run_id).status == RunStatus.SUCCEEDED
    chain = entries(factory)
    batches = sorted(e.subject.split("/")[1] for e in chain if e.kind == "evidence_versions")
    assert batches == ["split.gadget.shiny", "split.gear.oiled", "split.widget.exploding",
                       "split.widget.locked"]
    assert [e.kind for e in chain][-2:] == ["judgement", "run_completed"]
    verdict = verify(factory)
    assert verdict.ok and verdict.length == len(chain) == 6
