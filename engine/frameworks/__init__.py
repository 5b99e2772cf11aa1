"""Framework catalogs (SOC 2, ISO 27001:2022, CIS AWS Foundations v3.0, NIST SP 800-53 Rev. 5)
and which controls each check serves.

The catalogs are data files here; the check-to-control mappings ship inside each connector's own
package (`Connector.control_mappings`), so the engine reads them only through the registry. A
check's benchmark ids (`@check(benchmarks=...)` or its metadata.yaml entry) count as mappings
where that benchmark's catalog ships (cis_aws); others (cis_gcp, cis_sscs) are listed, not
rolled up. Loading validates everything at once and fails loudly, naming the file and check:
unique control ids, every mapping to a shipped framework and one of its controls, every mapped
check declared by its connector, and, for a connector that ships a mapping file, every check
mapped to SOC 2 and ISO 27001 and every benchmark id of a shipped benchmark in its catalog.

`replaces` (a check superseding another's id) is read here too: `Catalog.replaced_by` lets
filters and mappings that name an old id resolve to the checks that took it over.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from connectors.base import Connector
from engine.errors import InvalidInput
from engine.registry import connectors

HERE = Path(__file__).parent
REQUIRED_FRAMEWORKS = ("soc2", "iso27001")
"""Every check of a connector that ships a mapping file maps to at least one control of each."""

_TOKEN = re.compile(r"\d+|[A-Za-z]+")


@dataclass(frozen=True)
class Control:
    framework_id: str
    id: str
    title: str
    group: str
    description: str = ""
    level: int | None = None
    """A benchmark recommendation's profile level (CIS Level 1 or 2)."""
    automated: bool | None = None
    """Whether the benchmark calls the recommendation automated (True) or manual (False)."""

    @property
    def sort_key(self) -> tuple[object, ...]:
        """Catalog order: A.8.2 before A.8.16, 1.9 before 1.10, AC-6(2) before AC-6(10)."""
        return (self.framework_id, *((0, int(t), "") if t.isdigit() else (1, 0, t)
                                     for t in _TOKEN.findall(self.id.replace("CC", ""))))

    @property
    def key(self) -> str:
        """The API's control id, e.g. `soc2-cc6.1`, `nist_800_53-ac-6(10)`."""
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
    replaced_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Old check id -> the checks that declare `replaces=` it (a split or a rename)."""
    references: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    """check id -> benchmark id -> recommendation ids, for benchmarks without a catalog."""

    def controls_for(self, check_id: str) -> tuple[Control, ...]:
        return self.check_controls.get(check_id, ())

    def resolve_check(self, check_id: str) -> tuple[str, ...]:
        """The check ids a filter naming `check_id` means: the id itself, and when a newer
        check replaces it, those too (so history under the old id and the new rows answer)."""
        return (check_id, *self.replaced_by.get(check_id, ()))

    def resolve(self, control_ref: str, framework_id: str | None = None) -> Control:
        """Find a control from `soc2-cc6.1`, or `CC6.1` / `AC-6(10)` with a framework id (any
        case); without one, any framework's control of that id."""
        if framework_id is None and "-" in control_ref:
            prefix, rest = control_ref.split("-", 1)
            if prefix.lower() in self.frameworks:
                framework_id, control_ref = prefix, rest
        if framework_id is not None:
            fw = self.frameworks.get(framework_id.lower())
            candidates = [fw] if fw is not None else []
        else:
            candidates = list(self.frameworks.values())
        for fw in candidates:
            for control in fw.controls.values():
                if control.id.lower() == control_ref.lower():
                    return control
        raise InvalidInput(f"unknown control {control_ref!r}"
                           + (f" in framework {framework_id!r}" if framework_id else ""),
                           code="unknown_control")


def _load_framework(path: Path) -> Framework:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    controls: dict[str, Control] = {}
    for c in raw["controls"]:
        control_id = str(c["id"])
        if control_id in controls:
            raise ValueError(f"{path.name}: control {control_id} is listed twice")
        if not c.get("title"):
            raise ValueError(f"{path.name}: control {control_id} has no title")
        assessment = c.get("assessment")
        if assessment not in (None, "automated", "manual"):
            raise ValueError(f"{path.name}: control {control_id}: assessment is automated or "
                             "manual")
        controls[control_id] = Control(
            raw["id"], control_id, str(c["title"]), str(c.get("group", "")),
            str(c.get("description", "")), int(c["level"]) if "level" in c else None,
            None if assessment is None else assessment == "automated")
    return Framework(raw["id"], raw["name"], str(raw.get("version", "")), controls)


def load_frameworks() -> dict[str, Framework]:
    """Every catalog in this package, by framework id (a framework id twice fails)."""
    frameworks: dict[str, Framework] = {}
    for path in sorted(HERE.glob("*.yaml")):
        fw = _load_framework(path)
        if fw.id in frameworks:
            raise ValueError(f"{path.name}: framework {fw.id} is defined twice")
        frameworks[fw.id] = fw
    return frameworks


def _read_mappings(path: Path) -> dict[str, dict[str, list[str]]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name}: must map check ids to frameworks")
    for check_id, refs in raw.items():
        if not isinstance(refs, dict) or not all(
                isinstance(ids, list) and ids for ids in refs.values()):
            raise ValueError(f"{path.name}: {check_id} must map framework ids to lists of "
                             "control ids")
    return {str(k): {str(fw): [str(i) for i in ids] for fw, ids in v.items()}
            for k, v in raw.items()}


def _control(frameworks: Mapping[str, Framework], where: str, check_id: str,
             framework_id: str, control_id: str) -> Control:
    if framework_id not in frameworks:
        raise ValueError(f"{where}: {check_id} maps to framework {framework_id!r}, which has no "
                         f"catalog in engine/frameworks/ (known: {', '.join(sorted(frameworks))})")
    fw = frameworks[framework_id]
    if control_id not in fw.controls:
        raise ValueError(f"{where}: {check_id} maps to unknown {framework_id} control "
                         f"{control_id}")
    return fw.controls[control_id]


def load_catalog(mapping_files: Sequence[Path] = (), *,
                 connector_classes: Iterable[type[Connector]] = ()) -> Catalog:
    """Read the catalogs, the given mapping files and the given connectors' mappings, benchmark
    ids and `replaces`; anything that does not resolve fails loudly (ValueError)."""
    frameworks = load_frameworks()
    found: dict[str, list[Control]] = {}
    references: dict[str, dict[str, tuple[str, ...]]] = {}
    replaced_by: dict[str, list[str]] = {}

    def add(check_id: str, control: Control) -> None:
        controls = found.setdefault(check_id, [])
        if control not in controls:
            controls.append(control)

    for path in mapping_files:
        for check_id, refs in _read_mappings(path).items():
            for framework_id, control_ids in refs.items():
                for control_id in control_ids:
                    add(check_id, _control(frameworks, path.name, check_id, framework_id,
                                           control_id))
    for cls in connector_classes:
        declared = {chk.id for chk in cls.checks}
        replaced = {old for chk in cls.checks for old in chk.replaces}
        metadata = cls.check_metadata()
        if cls.control_mappings is not None:
            path = cls.control_mappings
            for check_id, refs in _read_mappings(path).items():
                if check_id not in declared and check_id not in replaced:
                    raise ValueError(f"{path.name}: {check_id} is not a check of connector "
                                     f"{cls.id} (nor an id one of its checks replaces)")
                found.setdefault(check_id, [])
                for framework_id, control_ids in refs.items():
                    for control_id in control_ids:
                        add(check_id, _control(frameworks, path.name, check_id, framework_id,
                                               control_id))
        for chk in cls.checks:
            for old in chk.replaces:
                replaced_by.setdefault(old, []).append(chk.id)
            entry = metadata.get(chk.id)
            benchmarks: dict[str, tuple[str, ...]] = {}
            for source in (chk.benchmarks, entry.benchmarks if entry else {}):
                for framework_id, ids in source.items():
                    benchmarks[framework_id] = tuple(dict.fromkeys(
                        (*benchmarks.get(framework_id, ()), *ids)))
            for framework_id, ids in benchmarks.items():
                if framework_id not in frameworks:
                    references.setdefault(chk.id, {})[framework_id] = ids
                    continue
                for control_id in ids:
                    add(chk.id, _control(frameworks, f"check {chk.id} (benchmarks)", chk.id,
                                         framework_id, control_id))
        if cls.control_mappings is not None:
            _require_complete(cls, found)
    for old, new_ids in replaced_by.items():
        if not found.get(old):  # an id no longer declared nor mapped serves what replaced it
            for new_id in new_ids:
                for control in found.get(new_id, ()):
                    add(old, control)
    return Catalog(frameworks, {k: tuple(v) for k, v in found.items()},
                   {k: tuple(v) for k, v in replaced_by.items()}, references)


def _require_complete(cls: type[Connector], found: Mapping[str, list[Control]]) -> None:
    """Every check of a connector that ships mappings serves SOC 2 and ISO 27001."""
    for chk in cls.checks:
        served = {c.framework_id for c in found.get(chk.id, ())}
        missing = [fw for fw in REQUIRED_FRAMEWORKS if fw not in served]
        if missing:
            raise ValueError(f"{cls.control_mappings}: {chk.id} maps to no "
                             f"{' and no '.join(missing)} control")


def catalog() -> Catalog:
    """The process-wide catalog: the frameworks and the mappings of every registered connector
    (read once per set of connectors, so registering one in-process is seen at once)."""
    return _cached_catalog(tuple(cls for _, cls in sorted(connectors().items())))


@lru_cache(maxsize=4)
def _cached_catalog(classes: tuple[type[Connector], ...]) -> Catalog:
    return load_catalog(connector_classes=classes)
