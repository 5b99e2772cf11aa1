"""AWS KMS: customer-managed symmetric keys rotate their key material every year."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector

_ROTATABLE_SPEC = "SYMMETRIC_DEFAULT"


@dataclass(frozen=True)
class KmsKey:
    """One customer-managed KMS key; rotation is read only where KMS supports it."""

    key_id: str
    arn: str
    region: str
    description: str
    key_state: str
    key_spec: str
    origin: str
    rotation_enabled: bool | None

    @property
    def rotatable(self) -> bool:
        """Automatic rotation exists for enabled symmetric keys with KMS-made key material."""
        return (self.key_spec == _ROTATABLE_SPEC and self.origin == "AWS_KMS"
                and self.key_state == "Enabled")


@collector(scoped=True)
def collect_keys(session: AwsSession, region: str) -> list[KmsKey]:
    """The region's customer-managed KMS keys (AWS-managed keys rotate on their own)."""
    with session.service("kms", region) as kms:
        listed = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate()
                  for k in page["Keys"]]
    keys = session.fan_out(lambda key_id: _read_key(session, region, key_id), listed)
    return sorted((k for k in keys if k is not None), key=lambda k: k.arn)


def _read_key(session: AwsSession, region: str, key_id: str) -> KmsKey | None:
    """One key's metadata and rotation status; None for keys AWS manages."""
    with session.service("kms", region) as kms:
        meta: dict[str, Any] = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if meta.get("KeyManager") != "CUSTOMER":
            return None
        key = KmsKey(key_id=meta["KeyId"], arn=meta["Arn"], region=region,
                     description=str(meta.get("Description", "")),
                     key_state=str(meta.get("KeyState", "")),
                     key_spec=str(meta.get("KeySpec") or meta.get("CustomerMasterKeySpec", "")),
                     origin=str(meta.get("Origin", "")), rotation_enabled=None)
        if not key.rotatable:
            return key
        rotation = bool(kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])
    return replace(key, rotation_enabled=rotation)


@check(id="aws.kms.key_rotation", severity=Severity.MEDIUM,
       resource_type="aws.kms.key", needs=collect_keys,
       benchmarks={"cis_aws": ["3.6"]},
       remediation="Turn on automatic rotation of the key material for customer-managed "
                   "symmetric keys: `aws kms enable-key-rotation --key-id KEY_ID` (yearly by "
                   "default, or `--rotation-period-in-days`).")
def key_rotation(keys: list[KmsKey]) -> Iterator[Result]:
    """Customer-managed symmetric KMS keys rotate their key material automatically."""
    for k in keys:
        label = f"KMS key {k.key_id} ({k.region}{', ' + k.description if k.description else ''})"
        data = {"key_id": k.key_id, "region": k.region, "description": k.description,
                "KeyState": k.key_state, "KeySpec": k.key_spec, "Origin": k.origin,
                "KeyRotationEnabled": k.rotation_enabled}
        if not k.rotatable:
            why = (f"is {k.key_state.lower() or 'not enabled'}" if k.key_state != "Enabled"
                   else f"is a {k.key_spec} key" if k.key_spec != _ROTATABLE_SPEC
                   else f"has {k.origin} key material")
            yield Result.not_applicable(k.arn, f"{label} {why}: automatic rotation does not "
                                        "apply", data)
            continue
        title = (f"{label} rotates its key material" if k.rotation_enabled
                 else f"{label} does not rotate its key material")
        yield Result.of(k.arn, passing=bool(k.rotation_enabled), title=title, data=data)
