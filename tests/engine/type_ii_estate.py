"""The emulated provider of the Type II record scenario (tests/engine/test_type_ii_record.py):
two in-process connectors whose estate the test controls.

`daily` reads widgets; its check `daily.widget.locked` changes its rule half-way: version 1
passes a locked widget, version 2 (DailyV2, registered in its place) also asks for firmware 2
or later. `hourly` reads ports; `hourly.port.closed` passes a closed port. While `down` is set
the provider cannot be reached: opening its session raises ProviderUnavailable, so the run
fails (runner semantics: the same error raised inside a collector would instead end the run
`partial`, its check storing a `scope:global` error row in place of the widgets: `unreadable`
does that). While `sealed`
is set any call to it raises, so a test can prove that nothing read the provider (rejudge works
from stored snapshots).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from connectors.base import (
    AuthType,
    Category,
    Check,
    Connector,
    Result,
    Severity,
    check,
    collector,
)
from connectors.errors import ProviderUnavailable

OUTAGE_ERROR = "Widgets Inc. did not answer: 503 Service Unavailable"
MIN_FIRMWARE = 2

ESTATE: dict[str, Any] = {"widgets": {}, "ports": {}, "down": False, "unreadable": False,
                          "sealed": False}


class ProviderCalled(AssertionError):
    """The provider was called while the test had sealed it."""


def reset() -> None:
    ESTATE.update(widgets={}, ports={}, down=False, unreadable=False, sealed=False)


def _reach(what: str) -> None:
    if ESTATE["sealed"]:
        raise ProviderCalled(f"the provider was called ({what}) while sealed")
    if ESTATE["down"]:
        raise ProviderUnavailable(OUTAGE_ERROR)


class Token(BaseModel):
    token: SecretStr


@collector()
def collect_widgets(session: dict[str, Any]) -> dict[str, dict[str, Any]]:
    _reach("widgets")
    if ESTATE["unreadable"]:  # the session opened, the widgets' API answers 503
        raise ProviderUnavailable(OUTAGE_ERROR)
    return copy.deepcopy(ESTATE["widgets"])


@collector()
def collect_ports(session: dict[str, Any]) -> dict[str, bool]:
    _reach("ports")
    return dict(ESTATE["ports"])


@check(id="daily.widget.locked", severity=Severity.HIGH, resource_type="daily.widget",
       remediation="Lock the widget.", needs=collect_widgets, version=1)
def widget_locked_v1(widgets: dict[str, dict[str, Any]]) -> Iterator[Result]:
    """Widgets are locked."""
    for name, w in sorted(widgets.items()):
        yield Result.of(f"widget:{name}", passing=w["locked"],
                        title=f"Widget {name} is {'locked' if w['locked'] else 'unlocked'}",
                        data=w)


@check(id="daily.widget.locked", severity=Severity.HIGH, resource_type="daily.widget",
       remediation="Lock the widget and upgrade its firmware.", needs=collect_widgets,
       version=2)
def widget_locked_v2(widgets: dict[str, dict[str, Any]]) -> Iterator[Result]:
    """Widgets are locked and run firmware 2 or later."""
    for name, w in sorted(widgets.items()):
        ok = w["locked"] and w["firmware"] >= MIN_FIRMWARE
        yield Result.of(f"widget:{name}", passing=ok,
                        title=f"Widget {name} is {'locked' if w['locked'] else 'unlocked'} "
                              f"on firmware {w['firmware']}", data=w)


@check(id="hourly.port.closed", severity=Severity.MEDIUM, resource_type="hourly.port",
       remediation="Close the port.", needs=collect_ports)
def port_closed(ports: dict[str, bool]) -> Iterator[Result]:
    """Ports are closed."""
    for name, is_open in sorted(ports.items()):
        yield Result.of(f"port:{name}", passing=not is_open,
                        title=f"Port {name} is {'open' if is_open else 'closed'}")


class DailyV1(Connector):
    id: ClassVar[str] = "daily"
    name = "Daily widgets"
    category = Category.MONITORING
    auth_type = AuthType.API_KEY
    icon = "daily"
    credentials_model = Token
    checks: ClassVar[tuple[Check, ...]] = (widget_locked_v1,)
    control_mappings: ClassVar[Path | None] = Path(__file__).with_name("type_ii_daily.yaml")

    def verify(self) -> dict[str, Any]:
        _reach("verify")
        return {}

    def session(self) -> dict[str, Any]:
        _reach("session")
        return {}


class DailyV2(DailyV1):
    """The same connector after its check's rule changed (version 2)."""

    checks: ClassVar[tuple[Check, ...]] = (widget_locked_v2,)


class Hourly(DailyV1):
    id: ClassVar[str] = "hourly"
    name = "Hourly ports"
    icon = "hourly"
    checks: ClassVar[tuple[Check, ...]] = (port_closed,)
    control_mappings: ClassVar[Path | None] = Path(__file__).with_name("type_ii_hourly.yaml")
