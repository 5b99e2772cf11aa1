"""IAM Access Analyzer: an active analyzer in every region (CIS AWS v3.0 1.20).

moto has no Access Analyzer: against it (or any endpoint that does not serve the service) each
region's result is an error naming the service, not a failed sync; the verdicts are tested on
plain snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from connectors.aws.session import AwsSession, ServiceNotServed
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class RegionAnalyzers:
    """The Access Analyzer analyzers of one region: name → (type, status)."""

    account_id: str
    region: str
    analyzers: list[dict[str, str]] = field(default_factory=list)
    read_error: str | None = None  # the endpoint does not serve Access Analyzer

    @property
    def resource_id(self) -> str:
        return f"aws:account:{self.account_id}:region:{self.region}"


@collector(scoped=True)
def collect_analyzers(session: AwsSession, region: str) -> list[RegionAnalyzers]:
    """The region's analyzers with their type and status."""
    account_id = session.identity().account_id
    try:
        with session.service("accessanalyzer", region) as client:
            analyzers = [{"name": a["name"], "type": a.get("type", ""),
                          "status": a.get("status", "")}
                         for page in client.get_paginator("list_analyzers").paginate()
                         for a in page["analyzers"]]
    except ServiceNotServed as exc:
        return [RegionAnalyzers(account_id=account_id, region=region, read_error=exc.message)]
    return [RegionAnalyzers(account_id=account_id, region=region,
                            analyzers=sorted(analyzers, key=lambda a: a["name"]))]


@check(id="aws.accessanalyzer.enabled", severity=Severity.MEDIUM,
       resource_type="aws.account.region", needs=collect_analyzers,
       benchmarks={"cis_aws": ["1.20"]},
       remediation="Create an analyzer in every region (the organization's delegated "
                   "administrator can make one for the whole organization), e.g. `aws "
                   "accessanalyzer create-analyzer --analyzer-name account --type ACCOUNT "
                   "--region REGION`, and review its findings.")
def access_analyzer_enabled(regions: list[RegionAnalyzers]) -> Iterator[Result]:
    """IAM Access Analyzer has an active analyzer in every region."""
    for r in regions:
        if r.read_error is not None:
            yield Result.error(r.resource_id, f"Could not read IAM Access Analyzer in "
                               f"{r.region}: {r.read_error}",
                               {"account_id": r.account_id, "region": r.region,
                                "error": r.read_error})
            continue
        active = [a for a in r.analyzers if a["status"] == "ACTIVE"]
        if active:
            title = f"Access Analyzer {active[0]['name']} is active in {r.region}"
        elif r.analyzers:
            title = (f"Access Analyzer in {r.region} is not active ("
                     + ", ".join(f"{a['name']}: {a['status']}" for a in r.analyzers) + ")")
        else:
            title = f"Access Analyzer has no analyzer in {r.region}"
        yield Result.of(r.resource_id, passing=bool(active), title=title,
                        data={"account_id": r.account_id, "region": r.region,
                              "analyzers": r.analyzers})
