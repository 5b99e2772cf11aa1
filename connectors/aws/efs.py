"""Amazon EFS: file systems encrypted at rest (CIS AWS v3.0 2.4.1)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class FileSystem:
    """One EFS file system and its encryption at rest."""

    file_system_id: str
    arn: str
    region: str
    name: str | None
    encrypted: bool
    kms_key_id: str | None


@collector(scoped=True)
def collect_file_systems(session: AwsSession, region: str) -> list[FileSystem]:
    """Every EFS file system in the region."""
    partition = session.identity().partition
    account_id = session.identity().account_id
    systems = []
    with session.service("efs", region) as efs:
        for page in efs.get_paginator("describe_file_systems").paginate():
            for fs in page["FileSystems"]:
                fs_id = fs["FileSystemId"]
                systems.append(FileSystem(
                    file_system_id=fs_id,
                    arn=fs.get("FileSystemArn")
                    or f"arn:{partition}:elasticfilesystem:{region}:{account_id}"
                       f":file-system/{fs_id}",
                    region=region, name=fs.get("Name"),
                    encrypted=bool(fs.get("Encrypted", False)), kms_key_id=fs.get("KmsKeyId")))
    return sorted(systems, key=lambda s: s.arn)


@check(id="aws.efs.encryption_at_rest", severity=Severity.HIGH,
       resource_type="aws.efs.file_system", needs=collect_file_systems,
       benchmarks={"cis_aws": ["2.4.1"]},
       remediation="EFS encryption is chosen at creation: create an encrypted file system "
                   "(`aws efs create-file-system --encrypted --kms-key-id KEY`), copy the data "
                   "across (AWS DataSync), move the mount targets and delete the old one.")
def encryption_at_rest(systems: list[FileSystem]) -> Iterator[Result]:
    """EFS file systems encrypt their data at rest."""
    for fs in systems:
        named = f" ({fs.name})" if fs.name else ""
        label = f"File system {fs.file_system_id}{named} in {fs.region}"
        title = f"{label} is encrypted at rest" if fs.encrypted else f"{label} is not encrypted"
        yield Result.of(fs.arn, passing=fs.encrypted, title=title,
                        data={"file_system_id": fs.file_system_id, "region": fs.region,
                              "name": fs.name, "Encrypted": fs.encrypted,
                              "KmsKeyId": fs.kms_key_id})
