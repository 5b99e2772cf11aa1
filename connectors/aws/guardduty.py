"""Amazon GuardDuty: threat detection is on in every region."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class Detector:
    """One GuardDuty detector and whether it is enabled."""

    detector_id: str
    status: str
    finding_publishing_frequency: str | None


@dataclass(frozen=True)
class RegionDetectors:
    """The GuardDuty detectors of one region (a region has at most one)."""

    account_id: str
    region: str
    detectors: list[Detector] = field(default_factory=list)

    @property
    def resource_id(self) -> str:
        return f"aws:account:{self.account_id}:region:{self.region}"


@collector(scoped=True)
def collect_detectors(session: AwsSession, region: str) -> list[RegionDetectors]:
    """The region's GuardDuty detectors with their status."""
    account_id = session.identity().account_id
    detectors = []
    with session.service("guardduty", region) as guardduty:
        ids = [d for page in guardduty.get_paginator("list_detectors").paginate()
               for d in page["DetectorIds"]]
        for detector_id in sorted(ids):
            answer = guardduty.get_detector(DetectorId=detector_id)
            detectors.append(Detector(
                detector_id=detector_id, status=str(answer.get("Status", "")),
                finding_publishing_frequency=answer.get("FindingPublishingFrequency")))
    return [RegionDetectors(account_id=account_id, region=region, detectors=detectors)]


@check(id="aws.guardduty.enabled", severity=Severity.HIGH,
       resource_type="aws.account.region", needs=collect_detectors,
       remediation="Enable GuardDuty in every region (a delegated administrator can enable it "
                   "organization-wide), e.g. `aws guardduty create-detector --enable --region "
                   "REGION`, or `aws guardduty update-detector --detector-id ID --enable` for a "
                   "suspended detector; route its findings to your alerting.")
def guardduty_enabled(regions: list[RegionDetectors]) -> Iterator[Result]:
    """GuardDuty threat detection is enabled in every region."""
    for r in regions:
        enabled = [d for d in r.detectors if d.status == "ENABLED"]
        if enabled:
            title = f"GuardDuty is enabled in {r.region} (detector {enabled[0].detector_id})"
        elif r.detectors:
            title = f"GuardDuty's detector in {r.region} is suspended"
        else:
            title = f"GuardDuty is not enabled in {r.region}"
        yield Result.of(r.resource_id, passing=bool(enabled), title=title,
                        data={"account_id": r.account_id, "region": r.region,
                              "detectors": [{"id": d.detector_id, "status": d.status,
                                             "finding_publishing_frequency":
                                                 d.finding_publishing_frequency}
                                            for d in r.detectors]})
