"""`rejudge.run` on its own queue: a real worker consuming only `rejudge` judges an AWS
connection's stored snapshot again, with no credentials at all (no provider call is possible),
and records the verdicts that differ from those on record."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import get_type_hints

import pytest
from sqlalchemy import func, select

from connectors.base import Status
from connectors.runner import Collected
from engine.db import session_factory
from engine.evidence import Item, store_check_results
from engine.models import Account, Connection, ConnectionStatus, Judgement
from engine.registry import get_connector
from engine.rejudge import rejudge_job
from engine.snapshots import Piece, record_collected
from tests.conftest import running_worker, settings_env
from tests.engine.test_snapshots import sample
from workers.celery_app import job_sender, make_celery

pytestmark = pytest.mark.slow  # a worker process starts and stops

FLIP = {Status.PASSING: Status.FAILING, Status.FAILING: Status.PASSING}


def test_a_worker_on_the_rejudge_queue_records_the_changed_verdicts(settings, db, tmp_path):
    factory = session_factory(settings)
    aws = get_connector("aws")
    chk = next(c for c in aws.checks if len(c.needs) == 1 and not c.needs[0].scoped
               and c.id.startswith("aws.s3."))
    [coll] = chk.needs
    snapshot = sample(get_type_hints(coll.fn)["return"])
    results = [r for r in chk.judge(snapshot) if r.status in FLIP]
    assert results
    then = datetime.now(UTC) - timedelta(days=3)
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
        s.flush()
        conn = Connection(account_id="acme", integration_id="aws",
                          status=ConnectionStatus.ACTIVE)  # no credentials: nothing to call
        s.add(conn)
        s.flush()
        pieces, _ = record_collected(s, settings, account_id="acme", connection_id=conn.id,
                                     run_id=None, now=then,
                                     collected={coll: _collected(snapshot)})
        [piece] = pieces[coll]
        assert isinstance(piece, Piece)
        # what an older rule recorded then: every verdict the other way round
        store_check_results(s, account_id="acme", connection_id=conn.id, check_id=chk.id,
                            items=[Item.of(r.resource_id, chk.resource_type,
                                           FLIP[r.status].value, r.title, r.data)
                                   for r in results],
                            run_id=None, now=then + timedelta(seconds=1),
                            snapshot_sha256=piece.sha256)
        connection_id = conn.id

    with running_worker(settings_env(settings), tmp_path / "worker.log", queues="rejudge",
                        concurrency=1):
        job_sender(make_celery(settings))(rejudge_job("acme", check_id=chk.id, apply=True))
        deadline = time.monotonic() + 60
        while _judged(factory) < len(results):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
    with factory() as s:
        judged = s.execute(select(Judgement.resource_id, Judgement.old_status,
                                  Judgement.new_status, Judgement.connection_id)).all()
    assert sorted(judged) == sorted((r.resource_id, FLIP[r.status].value, r.status.value,
                                     connection_id) for r in results)


def _judged(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(Judgement)) or 0


def _collected(value):
    return Collected(((None, value),), True)
