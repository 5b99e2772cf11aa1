"""Amazon RDS: databases are encrypted, private, backed up and patched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector

MIN_BACKUP_RETENTION_DAYS = 7


@dataclass(frozen=True)
class DbInstance:
    """One RDS DB instance: storage encryption, reachability, backups and patching."""

    identifier: str
    arn: str
    region: str
    engine: str
    storage_encrypted: bool
    kms_key_id: str | None
    cluster: str | None
    publicly_accessible: bool = False
    backup_retention_period: int = 0
    auto_minor_version_upgrade: bool = False


@collector(scoped=True)
def collect_db_instances(session: AwsSession, region: str) -> list[DbInstance]:
    """Every RDS DB instance in the region."""
    instances = []
    with session.service("rds", region) as rds:
        for page in rds.get_paginator("describe_db_instances").paginate():
            for db in page["DBInstances"]:
                instances.append(DbInstance(
                    identifier=db["DBInstanceIdentifier"], arn=db["DBInstanceArn"],
                    region=region, engine=db.get("Engine", ""),
                    storage_encrypted=bool(db.get("StorageEncrypted", False)),
                    kms_key_id=db.get("KmsKeyId"),
                    cluster=db.get("DBClusterIdentifier"),
                    publicly_accessible=bool(db.get("PubliclyAccessible", False)),
                    backup_retention_period=int(db.get("BackupRetentionPeriod", 0) or 0),
                    auto_minor_version_upgrade=bool(db.get("AutoMinorVersionUpgrade", False)),
                ))
    return instances


@check(id="aws.rds.storage_encrypted", severity=Severity.HIGH,
       resource_type="aws.rds.db_instance", needs=collect_db_instances,
       benchmarks={"cis_aws": ["2.3.1"]},
       remediation="RDS encrypts storage only at creation: take a snapshot, copy it with "
                   "encryption (`aws rds copy-db-snapshot --kms-key-id KEY ...`), restore a "
                   "new instance from the encrypted copy and switch clients over.")
def storage_encrypted(instances: list[DbInstance]) -> Iterator[Result]:
    """RDS DB instances encrypt their storage at rest."""
    for db in instances:
        title = (f"DB instance {db.identifier} ({db.engine}, {db.region}) encrypts its storage"
                 if db.storage_encrypted else
                 f"DB instance {db.identifier} ({db.engine}, {db.region}) stores data unencrypted")
        yield Result.of(db.arn, passing=db.storage_encrypted, title=title,
                        data={"identifier": db.identifier, "region": db.region,
                              "engine": db.engine, "StorageEncrypted": db.storage_encrypted,
                              "KmsKeyId": db.kms_key_id, "DBClusterIdentifier": db.cluster})


def _label(db: DbInstance) -> str:
    return f"DB instance {db.identifier} ({db.engine}, {db.region})"


@check(id="aws.rds.not_publicly_accessible", severity=Severity.HIGH,
       resource_type="aws.rds.db_instance", needs=collect_db_instances,
       benchmarks={"cis_aws": ["2.3.3"]},
       remediation="Make the instance private: `aws rds modify-db-instance "
                   "--db-instance-identifier ID --no-publicly-accessible --apply-immediately`, "
                   "keep it in private subnets, and reach it through the VPC (bastion, VPN or "
                   "SSM port forwarding).")
def not_publicly_accessible(instances: list[DbInstance]) -> Iterator[Result]:
    """RDS DB instances are not publicly accessible from the internet."""
    for db in instances:
        title = (f"{_label(db)} is publicly accessible" if db.publicly_accessible
                 else f"{_label(db)} is reachable only from inside its VPC")
        yield Result.of(db.arn, passing=not db.publicly_accessible, title=title,
                        data={"identifier": db.identifier, "region": db.region,
                              "engine": db.engine, "PubliclyAccessible": db.publicly_accessible})


@check(id="aws.rds.automated_backups", severity=Severity.MEDIUM,
       resource_type="aws.rds.db_instance", needs=collect_db_instances,
       remediation="Keep automated backups for at least 7 days: `aws rds modify-db-instance "
                   "--db-instance-identifier ID --backup-retention-period 7 "
                   "--apply-immediately` (Aurora instances follow their cluster's setting).")
def automated_backups(instances: list[DbInstance]) -> Iterator[Result]:
    """RDS DB instances keep automated backups for at least 7 days."""
    for db in instances:
        days = db.backup_retention_period
        if days == 0:
            title = f"{_label(db)} has automated backups turned off"
        elif days < MIN_BACKUP_RETENTION_DAYS:
            title = (f"{_label(db)} keeps automated backups for only {days} "
                     f"day{'s' if days != 1 else ''}")
        else:
            title = f"{_label(db)} keeps automated backups for {days} days"
        yield Result.of(db.arn, passing=days >= MIN_BACKUP_RETENTION_DAYS, title=title,
                        data={"identifier": db.identifier, "region": db.region,
                              "engine": db.engine, "BackupRetentionPeriod": days,
                              "minimum_days": MIN_BACKUP_RETENTION_DAYS})


@check(id="aws.rds.auto_minor_version_upgrade", severity=Severity.LOW,
       resource_type="aws.rds.db_instance", needs=collect_db_instances,
       benchmarks={"cis_aws": ["2.3.2"]},
       remediation="Let RDS apply minor engine versions (security fixes) in the maintenance "
                   "window: `aws rds modify-db-instance --db-instance-identifier ID "
                   "--auto-minor-version-upgrade --apply-immediately`.")
def auto_minor_version_upgrade(instances: list[DbInstance]) -> Iterator[Result]:
    """RDS DB instances receive minor engine upgrades (security patches) automatically."""
    for db in instances:
        title = (f"{_label(db)} upgrades minor engine versions automatically"
                 if db.auto_minor_version_upgrade else
                 f"{_label(db)} does not upgrade minor engine versions automatically")
        yield Result.of(db.arn, passing=db.auto_minor_version_upgrade, title=title,
                        data={"identifier": db.identifier, "region": db.region,
                              "engine": db.engine,
                              "AutoMinorVersionUpgrade": db.auto_minor_version_upgrade})
