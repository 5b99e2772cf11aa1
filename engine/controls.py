"""Control evaluation: roll evidence up to framework controls through the check mappings.

A control passes when every evaluated result mapped to it passes; `not_applicable` results are
not counted; a control with no evaluated result is `not_evaluated`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session
from sqlalchemy.types import String

from engine import ledger
from engine.frameworks import Catalog, Control, catalog
from engine.models import ControlResult, ControlResultHistory, ControlStatus
from engine.models.ledger import LedgerKind
from engine.pushed import pushed_counts


@dataclass(frozen=True)
class ControlCount:
    control: Control
    status: ControlStatus
    passing: int
    failing: int
    errored: int
    pushed: int = 0
    """Verified pushed evidence linked to the control: shown beside results, never judged."""
    checks: tuple[str, ...] = field(default=(), kw_only=True)
    """The checks counted for the control (of those asked for), sorted."""

    @property
    def total(self) -> int:
        return self.passing + self.failing + self.errored


def status_of(passing: int, failing: int, errored: int) -> ControlStatus:
    if failing:
        return ControlStatus.FAILING
    if errored:
        return ControlStatus.ERROR
    return ControlStatus.PASSING if passing else ControlStatus.NOT_EVALUATED


_COUNTS = text("""
SELECT m.framework_id, m.control_id,
       count(*) FILTER (WHERE e.status = 'passing') AS passing,
       count(*) FILTER (WHERE e.status = 'failing') AS failing,
       count(*) FILTER (WHERE e.status = 'error') AS errored
FROM unnest(:checks, :frameworks, :controls) AS m(check_id, framework_id, control_id)
JOIN evidence e ON e.check_id = m.check_id
JOIN connection c ON c.id = e.connection_id
WHERE e.account_id = :account_id AND e.closed_at IS NULL AND c.status <> 'disconnected'
  AND (CAST(:connection_id AS text) IS NULL OR e.connection_id = :connection_id)
GROUP BY m.framework_id, m.control_id
""").bindparams(*(bindparam(n, type_=ARRAY(String)) for n in ("checks", "frameworks",
                                                                  "controls")))


def count_controls(session: Session, account_id: str, *, connection_id: str | None = None,
                   check_ids: set[str] | None = None,
                   cat: Catalog | None = None) -> list[ControlCount]:
    """Per-control counts of current evidence, for the account or one of its connections.

    Every control mapped from `check_ids` (default: every mapped check) is listed, evaluated
    or not.
    """
    cat = cat or catalog()
    pairs = [(check_id, c) for check_id, controls in cat.check_controls.items()
             if check_ids is None or check_id in check_ids for c in controls]
    rows = session.execute(_COUNTS, {
        "checks": [p[0] for p in pairs], "frameworks": [p[1].framework_id for p in pairs],
        "controls": [p[1].id for p in pairs], "account_id": account_id,
        "connection_id": connection_id,
    }).all()
    found = {(r.framework_id, r.control_id): r for r in rows}
    pushed = pushed_counts(session, account_id)
    served: dict[str, list[str]] = {}
    for check_id, control in pairs:
        served.setdefault(control.key, []).append(check_id)
    counts: dict[str, ControlCount] = {}
    for _, control in pairs:
        r = found.get((control.framework_id, control.id))
        p, f, e = (r.passing, r.failing, r.errored) if r else (0, 0, 0)
        counts[control.key] = ControlCount(control, status_of(p, f, e), p, f, e,
                                           pushed.get((control.framework_id, control.id), 0),
                                           checks=tuple(sorted(served[control.key])))
    return sorted(counts.values(), key=lambda c: c.control.sort_key)


def recompute_controls(session: Session, account_id: str, now: datetime) -> int:
    """Refresh the account's control results; history gets a row only where a result changed."""
    counts = count_controls(session, account_id)
    if not counts:
        return 0
    current = {(r.framework_id, r.control_id): r for r in session.scalars(
        select(ControlResult).where(ControlResult.account_id == account_id))}
    changed = [c for c in counts if (old := current.get((c.control.framework_id, c.control.id)))
               is None or (old.status, old.passing, old.total) != (c.status, c.passing, c.total)]
    rows = [{"account_id": account_id, "framework_id": c.control.framework_id,
             "control_id": c.control.id, "status": c.status, "passing": c.passing,
             "total": c.total, "evaluated_at": now} for c in counts]
    stmt = insert(ControlResult).values(rows)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[ControlResult.account_id, ControlResult.framework_id,
                        ControlResult.control_id],
        set_={"status": stmt.excluded.status, "passing": stmt.excluded.passing,
              "total": stmt.excluded.total, "evaluated_at": stmt.excluded.evaluated_at}))
    if changed:
        history = [{"account_id": account_id, "framework_id": c.control.framework_id,
                    "control_id": c.control.id, "status": c.status, "passing": c.passing,
                    "total": c.total, "evaluated_at": now} for c in changed]
        session.execute(insert(ControlResultHistory).values(history))
        ledger.append(session, account_id, LedgerKind.JUDGEMENT, {"controls": history},
                      subject="controls", now=now)
    return len(changed)
