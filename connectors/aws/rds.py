"""Amazon RDS: database storage is encrypted at rest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class DbInstance:
    """One RDS DB instance and its storage encryption."""

    identifier: str
    arn: str
    region: str
    engine: str
    storage_encrypted: bool
    kms_key_id: str | None
    cluster: str | None


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
                ))
    return instances


@check(id="aws.rds.storage_encrypted", severity=Severity.HIGH,
       resource_type="aws.rds.db_instance", needs=collect_db_instances,
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
