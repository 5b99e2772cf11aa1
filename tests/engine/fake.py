"""An in-process connector whose estate the test controls (for engine-level sync tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import (
    AuthFailed,
    AuthType,
    Category,
    Check,
    Connector,
    Result,
    Severity,
    Shard,
    check,
    collector,
)
from engine.models import Account, Connection, ConnectionStatus
from engine.settings import Settings
from engine.vault import vault

ESTATE: dict[str, Any] = {"widgets": {}, "explode": False}


def add_connection(factory: sessionmaker[Session], settings: Settings,
                   integration_id: str) -> str:
    """Account acme with an active connection to an in-process test connector; its id."""
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
        s.flush()
        conn = Connection(account_id="acme", integration_id=integration_id,
                          status=ConnectionStatus.ACTIVE,
                          credentials_encrypted=vault(settings).seal({"token": "t0k3n"}))
        s.add(conn)
        s.flush()
        return conn.id


class FakeCredentials(BaseModel):
    token: SecretStr


@collector()
def collect_widgets(session: dict[str, Any]) -> dict[str, bool]:
    return dict(ESTATE["widgets"])


@check(id="fake.widget.locked", severity=Severity.HIGH, resource_type="fake.widget",
       remediation="Lock the widget.", needs=collect_widgets)
def widget_locked(widgets: dict[str, bool]) -> Iterator[Result]:
    """Widgets are locked."""
    for name, locked in sorted(widgets.items()):
        yield Result.of(f"widget:{name}", passing=locked,
                        title=f"Widget {name} is {'locked' if locked else 'unlocked'}",
                        data={"locked": locked})


@check(id="fake.widget.exploding", severity=Severity.LOW, resource_type="fake.widget",
       remediation="None.", needs=collect_widgets)
def widget_exploding(widgets: dict[str, bool]) -> Iterator[Result]:
    """A check that raises when told to."""
    if ESTATE["explode"]:
        raise RuntimeError("boom")
    for name in sorted(widgets):
        yield Result.of(f"widget:{name}", passing=True, title=f"Widget {name} is calm")


class FakeConnector(Connector):
    id: ClassVar[str] = "fake"
    name = "Fake"
    category = Category.MONITORING
    auth_type = AuthType.API_KEY
    icon = "fake"
    credentials_model = FakeCredentials
    checks: ClassVar[tuple[Check, ...]] = (widget_locked, widget_exploding)
    control_mappings: ClassVar[Path | None] = Path(__file__).with_name("fake_controls.yaml")

    def verify(self) -> dict[str, Any]:
        return {"widgets": len(ESTATE["widgets"])}

    def session(self) -> dict[str, Any]:
        return {}


# --- a connector with independent collectors, so a run of it can fan out into parts --------

SPLIT: dict[str, Any] = {"gadgets": {}, "gears": {}, "refuse": False, "reads": []}


@collector(shardable=True)
def collect_gadgets(session: dict[str, Any], *, shard: Shard) -> dict[str, bool]:
    """Gadgets, sharded: each call records the gadgets it read in SPLIT["reads"]."""
    if SPLIT["refuse"]:
        raise AuthFailed("the token was revoked: connect again with a valid one")
    read = {name: shiny for name, shiny in SPLIT["gadgets"].items() if shard.owns(name)}
    SPLIT["reads"].append(sorted(read))
    return read


@collector()
def collect_gears(session: dict[str, Any]) -> dict[str, bool]:
    return dict(SPLIT["gears"])


@check(id="split.gadget.shiny", severity=Severity.LOW, resource_type="split.gadget",
       remediation="Polish it.", needs=collect_gadgets)
def gadget_shiny(gadgets: dict[str, bool]) -> Iterator[Result]:
    """Gadgets are shiny."""
    for name, shiny in sorted(gadgets.items()):
        yield Result.of(f"gadget:{name}", passing=shiny, title=f"Gadget {name}")


@check(id="split.gear.oiled", severity=Severity.LOW, resource_type="split.gear",
       remediation="Oil it.", needs=collect_gears)
def gear_oiled(gears: dict[str, bool]) -> Iterator[Result]:
    """Gears are oiled."""
    for name, oiled in sorted(gears.items()):
        yield Result.of(f"gear:{name}", passing=oiled, title=f"Gear {name}")


@check(id="split.widget.locked", severity=Severity.HIGH, resource_type="fake.widget",
       remediation="Lock the widget.", needs=collect_widgets)
def split_widget_locked(widgets: dict[str, bool]) -> Iterator[Result]:
    """Widgets are locked."""
    yield from widget_locked.fn(widgets)


@check(id="split.widget.exploding", severity=Severity.LOW, resource_type="fake.widget",
       remediation="None.", needs=collect_widgets)
def split_widget_exploding(widgets: dict[str, bool]) -> Iterator[Result]:
    """A check that raises when told to."""
    yield from widget_exploding.fn(widgets)


class SplitConnector(FakeConnector):
    """Three independent collectors: widgets (two checks), gadgets (sharded) and gears."""

    id: ClassVar[str] = "split"
    name = "Split"
    icon = "split"
    checks: ClassVar[tuple[Check, ...]] = (split_widget_locked, gadget_shiny,
                                           split_widget_exploding, gear_oiled)
    control_mappings: ClassVar[Path | None] = None
