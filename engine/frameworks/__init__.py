"""Framework catalogs (SOC 2, ISO 27001) and which controls each check serves.

The catalogs are data files here; the check-to-control mappings ship inside each connector's own
package (`Connector.control_mappings`), so the engine reads them only through the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from engine.errors import InvalidInput
from engine.registry import connectors

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Control:
    framework_id: str
    id: str
    title: str
    group: str

    @property
    def sort_key(self) -> tuple[object, ...]:
        """Catalog order: A.8.2 before A.8.16."""
        return (self.framework_id, *(int(p) if p.isdigit() else p
                                     for p in self.id.replace("CC", "").split(".")))

    @property
    def key(self) -> str:
        """The API's control id, e.g. `soc2-cc6.1`."""
        return f"{self.framework_id}-{self.id.lower()}"


@dataclass(frozen=True)
class Framework:
    id: str
    name: str
    version: str
    controls: dict[str, Control]


@dataclass(frozen=True)
class Catalog:
    """Every framework and which controls each check serves."""

    frameworks: dict[str, Framework]
    check_controls: dict[str, tuple[Control, ...]]

    def controls_for(self, check_id: str) -> tuple[Control, ...]:
        return self.check_controls.get(check_id, ())

    def resolve(self, control_ref: str, framework_id: str | None = None) -> Control:
        """Find a control from `soc2-cc6.1`, or `CC6.1` with a framework id (any case)."""
        if framework_id is None and "-" in control_ref:
            framework_id, control_ref = control_ref.split("-", 1)
        candidates = [self.frameworks[framework_id.lower()]] if framework_id and \
            framework_id.lower() in self.frameworks else []
        if framework_id is None:
            candidates = list(self.frameworks.values())
        for fw in candidates:
            for control in fw.controls.values():
                if control.id.lower() == control_ref.lower():
                    return control
        raise InvalidInput(f"unknown control {control_ref!r}"
                           + (f" in framework {framework_id!r}" if framework_id else ""),
                           code="unknown_control")


def _load_framework(path: Path) -> Framework:
    raw = yaml.safe_load(path.read_text())
    controls = {c["id"]: Control(raw["id"], c["id"], c["title"], c.get("group", ""))
                for c in raw["controls"]}
    return Framework(raw["id"], raw["name"], str(raw.get("version", "")), controls)


def mapping_files() -> tuple[Path, ...]:
    """Every registered connector's mapping file, in connector id order."""
    return tuple(cls.control_mappings for _, cls in sorted(connectors().items())
                 if cls.control_mappings is not None)


def load_catalog(mapping_files: tuple[Path, ...] = ()) -> Catalog:
    """Read the catalogs and the given mapping files; a mapping to an unknown control fails
    loudly."""
    frameworks = {fw.id: fw for fw in map(_load_framework, sorted(HERE.glob("*.yaml")))}
    check_controls: dict[str, tuple[Control, ...]] = {}
    for path in mapping_files:
        for check_id, refs in (yaml.safe_load(path.read_text()) or {}).items():
            found: list[Control] = []
            for framework_id, control_ids in refs.items():
                if framework_id not in frameworks:
                    continue  # e.g. a CIS benchmark whose catalog is not shipped yet
                for control_id in control_ids:
                    if control_id not in frameworks[framework_id].controls:
                        raise ValueError(f"{path.name}: {check_id} maps to unknown "
                                         f"{framework_id} control {control_id}")
                    found.append(frameworks[framework_id].controls[control_id])
            check_controls[check_id] = tuple(found)
    return Catalog(frameworks, check_controls)


def catalog() -> Catalog:
    """The process-wide catalog: the frameworks and the mappings of every registered connector
    (read once per set of connectors, so registering one in-process is seen at once)."""
    return _cached_catalog(mapping_files())


@lru_cache(maxsize=4)
def _cached_catalog(mapping_files: tuple[Path, ...]) -> Catalog:
    return load_catalog(mapping_files)
