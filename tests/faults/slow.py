"""A connector whose speed and failures the test drives through files in a control folder.

A worker subprocess loads it with EVIDENCE_EXTRA_CONNECTORS=tests.faults.slow:SlowConnector.
The connection's config names the folder (`{"control": "/path"}`); in it:

- `control.json`: {"resources": N, "fail": bool, "gate": NAME|null, "gate_before": K,
  "delay": seconds per check, "salt": text in every result}, read at every collection;
- `collections.log`: one line per collection (so the test counts provider calls);
- `open-NAME`: created by the test to let checks K.. of a gated run go on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from connectors.base import (
    AuthType,
    Category,
    Connector,
    ProviderUnavailable,
    Result,
    Severity,
    check,
    collector,
)

CHECKS = 4
GATE_TIMEOUT = 120.0


class SlowCredentials(BaseModel):
    token: SecretStr


@dataclass(frozen=True)
class Snapshot:
    items: list[str]
    delay: float
    gate: Path | None
    gate_before: int
    salt: str


def control(folder: Path, **values: Any) -> None:
    """Write the folder's control file (the test's side)."""
    folder.mkdir(parents=True, exist_ok=True)
    current = {"resources": 5, "fail": False, "gate": None, "gate_before": 1, "delay": 0.0,
               "salt": ""}
    current.update(values)
    tmp = folder / "control.json.tmp"
    tmp.write_text(json.dumps(current))
    tmp.replace(folder / "control.json")


def collections(folder: Path) -> int:
    log = folder / "collections.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


@collector()
def collect_items(session: dict[str, Any]) -> Snapshot:
    folder = Path(session["control"])
    settings = json.loads((folder / "control.json").read_text())
    with (folder / "collections.log").open("a") as log:
        log.write(f"{os.getpid()} {time.time()}\n")
    if settings["fail"]:
        raise ProviderUnavailable("the slow provider is down")
    gate = folder / f"open-{settings['gate']}" if settings["gate"] else None
    return Snapshot([f"item-{i:03d}" for i in range(settings["resources"])],
                    float(settings["delay"]), gate, int(settings["gate_before"]),
                    str(settings["salt"]))


def _judge(snapshot: Snapshot, index: int) -> Iterator[Result]:
    if snapshot.gate is not None and index >= snapshot.gate_before:
        deadline = time.monotonic() + GATE_TIMEOUT
        while not snapshot.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(snapshot.delay)
    for item in snapshot.items:
        yield Result.of(f"slow:{item}", passing=index % 2 == 0, title=f"{item} judged by {index}",
                        data={"item": item, "check": index, "salt": snapshot.salt})


def _make_check(index: int) -> Any:
    def judge(snapshot: Snapshot) -> Iterator[Result]:
        return _judge(snapshot, index)

    judge.__doc__ = f"Slow check number {index}."
    return check(id=f"slow.item.check_{index}", severity=Severity.LOW, resource_type="slow.item",
                 remediation="None.", needs=collect_items)(judge)


class SlowConnector(Connector):
    id: ClassVar[str] = "slow"
    name = "Slow"
    category = Category.MONITORING
    auth_type = AuthType.API_KEY
    icon = "slow"
    credentials_model = SlowCredentials
    checks = tuple(_make_check(i) for i in range(CHECKS))
    max_parallel = 1

    def verify(self) -> dict[str, Any]:
        return {}

    def session(self) -> dict[str, Any]:
        return {"control": self.config["control"]}


def _make_split_check(index: int) -> Any:
    """Check `index` of the split connector, on a collector of its own (so a fanned-out run
    puts each check in a part of its own)."""
    def read(session: dict[str, Any]) -> Snapshot:
        return collect_items.fn(session)

    read.__name__ = f"collect_items_{index}"

    def judge(snapshot: Snapshot) -> Iterator[Result]:
        return _judge(snapshot, index)

    judge.__doc__ = f"Slow split check number {index}."
    return check(id=f"slowsplit.item.check_{index}", severity=Severity.LOW,
                 resource_type="slow.item", remediation="None.",
                 needs=collector()(read))(judge)


class SlowSplitConnector(SlowConnector):
    """The slow connector with one collector per check: a run of it fans out into parts."""

    id: ClassVar[str] = "slowsplit"
    name = "Slow (split)"
    icon = "slow"
    checks = tuple(_make_split_check(i) for i in range(CHECKS))
