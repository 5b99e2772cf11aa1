"""AWS Config: a configuration recorder records every resource type in every region."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class Recorder:
    """One configuration recorder: what it records and whether it is recording now."""

    name: str
    recording: bool
    all_supported: bool
    include_global_resource_types: bool
    last_status: str | None
    recording_group: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionRecorders:
    """The configuration recorders of one region."""

    account_id: str
    region: str
    recorders: list[Recorder] = field(default_factory=list)

    @property
    def resource_id(self) -> str:
        return f"aws:account:{self.account_id}:region:{self.region}"


@collector(scoped=True)
def collect_recorders(session: AwsSession, region: str) -> list[RegionRecorders]:
    """The region's configuration recorders and their recording status."""
    account_id = session.identity().account_id
    with session.service("config", region) as config:
        recorders = config.describe_configuration_recorders()["ConfigurationRecorders"]
        statuses = {s["name"]: s for s in
                    config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
    found = []
    for recorder in recorders:
        group = dict(recorder.get("recordingGroup") or {})
        strategy = (group.get("recordingStrategy") or {}).get("useOnly")
        status = statuses.get(recorder["name"], {})
        found.append(Recorder(
            name=recorder["name"], recording=bool(status.get("recording", False)),
            all_supported=bool(group.get("allSupported", False))
            or strategy == "ALL_SUPPORTED_RESOURCE_TYPES",
            include_global_resource_types=bool(group.get("includeGlobalResourceTypes", False)),
            last_status=status.get("lastStatus"), recording_group=group))
    return [RegionRecorders(account_id=account_id, region=region,
                            recorders=sorted(found, key=lambda r: r.name))]


@check(id="aws.config.recorder_enabled", severity=Severity.MEDIUM,
       resource_type="aws.account.region", needs=collect_recorders,
       benchmarks={"cis_aws": ["3.3"]},
       remediation="Set up AWS Config in every region with a recorder of all supported "
                   "resource types, a delivery channel and the recorder started (Config > "
                   "Settings, or `aws configservice put-configuration-recorder`, "
                   "`put-delivery-channel`, `start-configuration-recorder`); an organization "
                   "can do this with a conformance pack or Control Tower.")
def recorder_enabled(regions: list[RegionRecorders]) -> Iterator[Result]:
    """AWS Config records the configuration of all supported resources in every region."""
    for r in regions:
        complete = [c for c in r.recorders if c.recording and c.all_supported]
        stopped = [c for c in r.recorders if not c.recording]
        if complete:
            title = f"AWS Config records all resource types in {r.region} ({complete[0].name})"
        elif not r.recorders:
            title = f"AWS Config has no configuration recorder in {r.region}"
        elif stopped:
            title = (f"AWS Config's recorder {stopped[0].name} in {r.region} is not recording")
        else:
            title = f"AWS Config records only some resource types in {r.region}"
        yield Result.of(r.resource_id, passing=bool(complete), title=title,
                        data={"account_id": r.account_id, "region": r.region,
                              "recorders": [{"name": c.name, "recording": c.recording,
                                             "all_supported": c.all_supported,
                                             "include_global_resource_types":
                                                 c.include_global_resource_types,
                                             "recording_group": c.recording_group}
                                            for c in r.recorders]})
