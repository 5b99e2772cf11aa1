"""The check catalog: every registered connector's checks, the framework controls they serve and
what a failure means and how to fix it.

`evidence checks` prints it for the terminal; `evidence checks --markdown` renders docs/checks.md
from the same data (the checks' declarations, each connector's mappings.yaml and metadata.yaml),
so the document cannot drift from the code. Benchmarks whose catalog does not ship (CIS GCP,
CIS Software Supply Chain) are listed as the checks name them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from connectors.base import CheckMetadata, Connector, Severity
from engine.frameworks import catalog as load_frameworks_catalog
from engine.registry import connectors

# Short column labels; a framework not named here is labelled from its id (cis_x → CIS X).
FRAMEWORK_LABELS = {"soc2": "SOC 2", "iso27001": "ISO 27001:2022", "cis_aws": "CIS AWS v3.0",
                    "nist_800_53": "NIST 800-53", "cis_gcp": "CIS GCP v3.0",
                    "cis_sscs": "CIS SSCS v1.0"}
_LEADING_FRAMEWORKS = ("soc2", "iso27001", "cis_aws", "nist_800_53")
_SEVERITY_STYLES = {Severity.CRITICAL: "bold red", Severity.HIGH: "red",
                    Severity.MEDIUM: "yellow", Severity.LOW: "cyan", Severity.INFO: "dim"}
_NONE = "—"


@dataclass(frozen=True)
class CheckEntry:
    """One check as the catalog lists it."""

    id: str
    severity: Severity
    title: str
    resource_type: str
    controls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    metadata: CheckMetadata | None = None
    replaces: tuple[str, ...] = ()
    replaced_by: tuple[str, ...] = ()
    """Set on a deprecated alias: the checks that declare `replaces=` its id."""


@dataclass(frozen=True)
class ConnectorChecks:
    """One connector and its checks, in the order the connector declares them."""

    id: str
    name: str
    checks: tuple[CheckEntry, ...]

    @property
    def frameworks(self) -> list[str]:
        """The frameworks its checks map to: SOC 2, ISO 27001, CIS AWS, NIST first, then the
        others."""
        used = {fw for entry in self.checks for fw in entry.controls}
        return ([fw for fw in _LEADING_FRAMEWORKS if fw in used]
                + sorted(used - set(_LEADING_FRAMEWORKS)))


ControlRefs = dict[str, dict[str, tuple[str, ...]]]


def mapped_controls(mapping_files: Iterable[Path] = ()) -> ControlRefs:
    """check id → framework id → control ids, as written in the connectors' mapping files."""
    found: ControlRefs = {}
    for path in mapping_files:
        for check_id, refs in (yaml.safe_load(path.read_text()) or {}).items():
            found[check_id] = {str(fw): tuple(str(c) for c in ids)
                               for fw, ids in (refs or {}).items() if ids}
    return found


def _merged(*sources: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    merged: dict[str, tuple[str, ...]] = {}
    for source in sources:
        for fw, ids in source.items():
            merged[fw] = tuple(dict.fromkeys((*merged.get(fw, ()), *ids)))
    return merged


def check_catalog(registry: Mapping[str, type[Connector]] | None = None) -> list[ConnectorChecks]:
    """Every connector of the registry (by id) with its checks, their mapped controls (a
    benchmark the check or its metadata names shows even where no mapping file names it) and
    metadata."""
    registered = dict(sorted((registry if registry is not None else connectors()).items()))
    mappings = mapped_controls(cls.control_mappings for cls in registered.values()
                               if cls.control_mappings is not None)
    replaced_by: dict[str, list[str]] = {}
    for cls in registered.values():
        for chk in cls.checks:
            for old in chk.replaces:
                replaced_by.setdefault(old, []).append(chk.id)
    catalog = []
    for connector_id, cls in registered.items():
        metadata = cls.check_metadata()
        entries = []
        for chk in cls.checks:
            meta = metadata.get(chk.id)
            entries.append(CheckEntry(
                id=chk.id, severity=chk.severity, title=chk.title,
                resource_type=chk.resource_type,
                controls=_merged(chk.benchmarks, meta.benchmarks if meta else {},
                                 mappings.get(chk.id, {})),
                metadata=meta, replaces=chk.replaces,
                replaced_by=tuple(replaced_by.get(chk.id, ()))))
        catalog.append(ConnectorChecks(id=connector_id, name=cls.name, checks=tuple(entries)))
    return catalog


def framework_label(framework_id: str) -> str:
    return FRAMEWORK_LABELS.get(framework_id, framework_id.replace("_", " ").upper())


def _markdown_text(text: str) -> str:
    """Text safe inside a markdown table cell or paragraph: pipes and emphasis markers
    escaped, line breaks joined."""
    for char in ("\\", "|", "*", "_", "`"):
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def _code_span(text: str) -> str:
    """Inline code that holds any backticks the text has."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _check_details(entry: CheckEntry, frameworks: Sequence[str]) -> list[str]:
    """A check's section below its connector's table."""
    lines = ["", f"### `{entry.id}`", "",
             f"{_markdown_text(entry.title)} Severity **{entry.severity.value}**, judges each "
             f"`{entry.resource_type}`."]
    if entry.replaced_by:
        lines += ["", "Deprecated alias, kept for one release: replaced by "
                  + ", ".join(f"`{c}`" for c in entry.replaced_by) + "."]
    if entry.replaces:
        lines += ["", "Replaces " + ", ".join(f"`{c}`" for c in entry.replaces)
                  + " (filters and mappings naming the old id still resolve)."]
    mapped = [f"{framework_label(fw)}: {', '.join(entry.controls[fw])}"
              for fw in frameworks if entry.controls.get(fw)]
    lines += ["", "Frameworks: " + ("; ".join(mapped) if mapped else _NONE) + "."]
    meta = entry.metadata
    if meta is None:
        return [*lines, "", "No risk or remediation written for this check yet."]
    fix = meta.remediation
    return [*lines, "",
            f"**Risk.** {_markdown_text(meta.risk)}", "",
            "**Remediation.**", "",
            f"- Console: {_markdown_text(fix.console)}",
            f"- CLI: {_code_span(' '.join(fix.cli.split()))}"
            if not fix.cli.startswith("Not available") else f"- CLI: {_markdown_text(fix.cli)}",
            "- Terraform:", "",
            "  ```hcl", *(f"  {line}".rstrip() for line in fix.terraform.rstrip().splitlines()),
            "  ```", "",
            f"Reference: <{meta.url}>"]


def render_markdown(catalog: Sequence[ConnectorChecks]) -> str:
    """docs/checks.md: per connector a table of its checks and controls, then each check's
    risk, remediation and reference."""
    total = sum(len(c.checks) for c in catalog)
    lines = [
        "# Checks",
        "",
        "<!-- Generated by `evidence checks --markdown > docs/checks.md` from each check's",
        "     declaration and its connector's mappings.yaml and metadata.yaml; do not edit by",
        "     hand. -->",
        "",
        f"{total} checks from {len(catalog)} connector{'s' if len(catalog) != 1 else ''}. "
        "Each check judges every resource of its type and maps to the framework controls "
        "listed beside it; below each table, what a failure risks and how to fix it.",
    ]
    for connector in catalog:
        frameworks = connector.frameworks
        header = ["Check", "Severity", "Resource", "What it verifies",
                  *map(framework_label, frameworks)]
        lines += ["", f"## {connector.name} (`{connector.id}`)", "",
                  f"{len(connector.checks)} check{'s' if len(connector.checks) != 1 else ''}.",
                  "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        for entry in connector.checks:
            cells = [f"`{entry.id}`", entry.severity.value, f"`{entry.resource_type}`",
                     _markdown_text(entry.title),
                     *(", ".join(entry.controls.get(fw, ())) or _NONE for fw in frameworks)]
            lines.append("| " + " | ".join(cells) + " |")
        for entry in connector.checks:
            lines += _check_details(entry, frameworks)
    return "\n".join(lines) + "\n"


def render_tables(catalog: Sequence[ConnectorChecks]) -> list[Table]:
    """One rich table per connector, for the terminal."""
    tables = []
    for connector in catalog:
        frameworks = connector.frameworks
        table = Table(title=f"{connector.name} ({connector.id}): {len(connector.checks)} checks",
                      title_justify="left", show_lines=False, expand=False)
        table.add_column("Check", style="bold", no_wrap=True)
        table.add_column("Severity", no_wrap=True)
        table.add_column("What it verifies", ratio=1, min_width=24)
        for fw in frameworks:
            table.add_column(framework_label(fw))
        for entry in connector.checks:
            table.add_row(entry.id, f"[{_SEVERITY_STYLES[entry.severity]}]"
                          f"{entry.severity.value}[/]", escape(entry.title),
                          *(", ".join(entry.controls.get(fw, ())) or _NONE for fw in frameworks))
        tables.append(table)
    return tables


def render_details(connector: ConnectorChecks) -> list[Panel]:
    """Each check's risk, remediation (console, CLI, Terraform) and reference, for the
    terminal."""
    panels = []
    for entry in connector.checks:
        meta = entry.metadata
        body = Text()
        body.append(f"{entry.title}\n")
        mapped = [f"{framework_label(fw)}: {', '.join(ids)}" for fw in connector.frameworks
                  if (ids := entry.controls.get(fw))]
        body.append("; ".join(mapped) + "\n", style="dim")
        if entry.replaced_by:
            body.append("Deprecated alias: replaced by " + ", ".join(entry.replaced_by) + "\n",
                        style="yellow")
        if meta is None:
            body.append("No risk or remediation written for this check yet.")
        else:
            body.append("Risk: ", style="bold").append(f"{meta.risk}\n")
            body.append("Console: ", style="bold").append(f"{meta.remediation.console}\n")
            body.append("CLI: ", style="bold").append(f"{meta.remediation.cli}\n")
            body.append("Terraform:\n", style="bold").append(
                meta.remediation.terraform.rstrip() + "\n")
            body.append("Reference: ", style="bold").append(meta.url)
        panels.append(Panel(Group(body), title=f"{entry.id} ({entry.severity.value})",
                            title_align="left"))
    return panels


def print_checks(markdown: bool = False, console: Console | None = None) -> int:
    """`evidence checks`: the catalog as tables with each check's risk and remediation, or as
    markdown for docs/checks.md. Loads the framework catalog first, so a mapping that does not
    resolve fails here, naming its file and check."""
    load_frameworks_catalog()
    catalog = check_catalog()
    if markdown:
        print(render_markdown(catalog), end="")
        return 0
    out = console or Console()
    for connector, table in zip(catalog, render_tables(catalog), strict=True):
        out.print(table)
        for panel in render_details(connector):
            out.print(panel)
    total = sum(len(c.checks) for c in catalog)
    out.print(f"{total} checks from {len(catalog)} connectors")
    return 0
