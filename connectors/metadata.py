"""Check metadata as data: what a failure risks, how to fix it, where to read more.

Each provider ships `metadata.yaml` beside the module that declares its connector, one entry per
check id:

    <check id>:
      risk: "What goes wrong when this fails."
      remediation:
        console: "Steps in the provider's web console."
        cli: "A real command, or 'Not available: ...'."
        terraform: |
          resource "..." "..." { ... }
      url: "https://..."
      benchmarks:            # optional: benchmark recommendations the check tests, by
        cis_sscs: ["1.1.4"]  # benchmark id, for benchmarks whose catalog is not shipped

The file is read and validated when the connector class is created (at import): an entry for a
check the connector does not declare, or a malformed entry, fails loudly with the check id. A
declared check without an entry is allowed here and caught by the completeness test.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

__all__ = ["CheckMetadata", "Remediation", "load_check_metadata"]

_BENCHMARK_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_RECOMMENDATION = re.compile(r"^[A-Za-z0-9.()\-]{1,32}$")


def _https_url(value: str) -> str:
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?", value):
        raise ValueError("must be an https:// URL to the provider's or the benchmark's docs")
    return value


def _sentence(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


Text = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_sentence)]
HttpsUrl = Annotated[str, Field(max_length=500), AfterValidator(_https_url)]


class Remediation(BaseModel):
    """How to fix a failing resource: in the web console, on the command line, in Terraform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    console: Text
    cli: Text
    terraform: Text


class CheckMetadata(BaseModel):
    """One check's documentation beside its code (connectors/<provider>/metadata.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk: Text
    remediation: Remediation
    url: HttpsUrl
    benchmarks: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Benchmark recommendations by benchmark id, e.g. {"cis_sscs": ("1.1.4",)}."""

    @field_validator("benchmarks")
    @classmethod
    def _recommendation_ids(cls, value: dict[str, tuple[str, ...]]
                            ) -> dict[str, tuple[str, ...]]:
        for benchmark, ids in value.items():
            if not _BENCHMARK_ID.match(benchmark):
                raise ValueError(f"benchmark id {benchmark!r} must look like cis_gcp")
            if not ids or any(not _RECOMMENDATION.match(i) for i in ids):
                raise ValueError(f"benchmark {benchmark}: give a list of recommendation ids")
        return value


def load_check_metadata(path: Path, check_ids: Collection[str],
                        owner: str) -> Mapping[str, CheckMetadata]:
    """The entries of `path` (none when the file does not exist), validated against the
    connector `owner`'s declared `check_ids`; TypeError names the file, the check and the
    field on an unknown check or a malformed entry."""
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TypeError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError(f"{path}: must map check ids to their metadata")
    found: dict[str, CheckMetadata] = {}
    for check_id, entry in raw.items():
        if check_id not in check_ids:
            raise TypeError(f"{path.name}: metadata for {check_id!r}, which is not a check of "
                            f"connector {owner}")
        try:
            found[check_id] = CheckMetadata.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors(include_url=False))
            raise TypeError(f"{path.name}: {check_id}: {problems}") from None
    return found
