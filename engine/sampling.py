"""An auditor's sample: resources and dates drawn from a control's population over the audit's
period by a seeded random draw (`random.Random(seed)`: the same seed over the same population
draws the same sample), recorded in the activity log with the seed, and answered with the
evidence as it stood at each sampled instant (engine/as_of.py).
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.as_of import EvidenceAt, evidence_at
from engine.audits import Actor, now_utc, record, resolve_control
from engine.errors import Conflict
from engine.evidence import canonical_json
from engine.frameworks import Control
from engine.models.audit import ActivityType, Audit
from engine.period import Member, audit_period

MAX_SAMPLE = 100
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SampleItem:
    member: Member
    at: datetime
    evidence: EvidenceAt | None
    """The version in force at `at` (None only if the record no longer holds it)."""


@dataclass(frozen=True)
class Sample:
    control: Control
    seed: int
    requested: int
    population_size: int
    population_sha256: str
    """SHA-256 of the population as drawn from (canonical JSON), so a re-draw can be checked."""
    items: list[SampleItem]
    drawn_at: datetime


def draw(population: Sequence[Member], size: int, seed: int) -> list[tuple[Member, datetime]]:
    """`size` members (all, if fewer) and, for each, a whole second within the spans in which
    it was judged: the same seed over the same population draws the same sample."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    chosen = rng.sample(list(population), min(size, len(population)))
    out = []
    for member in chosen:
        seconds = [max(int(s.length.total_seconds()), 1) for s in member.seen]
        offset = rng.randrange(sum(seconds))
        for span, n in zip(member.seen, seconds, strict=True):
            if offset < n:
                at = min(span.start + timedelta(seconds=offset), span.end - timedelta(
                    microseconds=1))
                out.append((member, at))
                break
            offset -= n
    return out


def population_digest(population: Sequence[Member]) -> str:
    return hashlib.sha256(canonical_json([
        [m.integration_id, m.check_id, m.resource_id, m.first_seen, m.last_seen]
        for m in population]).encode()).hexdigest()


def draw_sample(session: Session, audit: Audit, actor: Actor, *, control_ref: str, size: int,
                grace: timedelta, seed: int | None = None,
                now: datetime | None = None) -> Sample:
    """Draw, answer the evidence at each sampled instant, and log the seed and the draw."""
    now = now or now_utc()
    control = resolve_control(audit, control_ref)
    answer = audit_period(session, audit, grace, control_ids=[control.id])
    population = answer.controls[0].population if answer.controls else ()
    if not population:
        raise Conflict(f"control {control.id} has no population in the audit's period: no "
                       "resource was judged for it", code="empty_population",
                       control_id=control.id)
    seed = secrets.randbelow(MAX_SEED) if seed is None else seed
    items = []
    for member, at in draw(population, size, seed):
        conn_id = member.connection_at(at)
        page = evidence_at(session, audit.account_id, [conn_id] if conn_id else [], at,
                           limit=1, check_id=member.check_id, resource_id=member.resource_id)
        items.append(SampleItem(member, at, page.items[0] if page.items else None))
    digest = population_digest(population)
    record(session, audit, actor, ActivityType.SAMPLE_DRAWN, now, control_id=control.id,
           seed=seed, size=size, drawn=len(items), population_size=len(population),
           population_sha256=digest,
           period=[answer.period.start.isoformat(), answer.period.end.isoformat()],
           draw=[{"integration_id": i.member.integration_id, "check_id": i.member.check_id,
                  "resource_id": i.member.resource_id, "at": i.at.isoformat(),
                  "version_id": i.evidence.version_id if i.evidence else None}
                 for i in items])
    return Sample(control, seed, size, len(population), digest, items, now)
