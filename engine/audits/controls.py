"""The framework an audit is against, and its controls as an audit names them."""

from __future__ import annotations

from engine.errors import EngineError, InvalidInput, NotFound
from engine.frameworks import Control, Framework, catalog
from engine.models.audit import Audit


def framework(framework_id: str) -> Framework:
    frameworks = catalog().frameworks
    found = frameworks.get(framework_id.lower())
    if found is None:
        raise InvalidInput(f"unknown framework {framework_id!r}; known frameworks: "
                           + ", ".join(sorted(frameworks)), code="unknown_framework")
    return found


def resolve_control(audit: Audit, control_ref: str, *,
                    missing: type[EngineError] = NotFound) -> Control:
    """`CC6.1` or `soc2-cc6.1` (any case) within the audit's framework."""
    fw = framework(audit.framework_id)
    prefix, sep, rest = control_ref.partition("-")
    ref = rest if sep and prefix.lower() == fw.id else control_ref
    for control in fw.controls.values():
        if control.id.lower() == ref.lower():
            return control
    raise missing(f"no control {control_ref!r} in framework {fw.id}", code="unknown_control")


def framework_checks(fw: Framework) -> dict[str, tuple[Control, ...]]:
    """Check id → the controls of `fw` it serves (checks serving none are left out)."""
    found: dict[str, tuple[Control, ...]] = {}
    for check_id, controls in catalog().check_controls.items():
        mine = tuple(c for c in controls if c.framework_id == fw.id)
        if mine:
            found[check_id] = mine
    return found
