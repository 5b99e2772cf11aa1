"""An in-process connector whose estate the test controls (for engine-level sync tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from connectors.base import (
    AuthType,
    Category,
    Connector,
    Result,
    Severity,
    check,
    collector,
)

ESTATE: dict[str, Any] = {"widgets": {}, "explode": False}


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
    checks = (widget_locked, widget_exploding)
    control_mappings = Path(__file__).with_name("fake_controls.yaml")

    def verify(self) -> dict[str, Any]:
        return {"widgets": len(ESTATE["widgets"])}

    def session(self) -> dict[str, Any]:
        return {}
