"""Cloud Storage: bucket access control, public exposure, recoverability, logging, encryption.

Two collectors read the project: bucket metadata (one paged list: every setting but IAM) and the
buckets' IAM policies (one getIamPolicy each, a separate permission). The policy collector lists
the buckets itself, so a failure of either API leaves the other's checks standing. A third takes
this connection's validated configuration from the SDK, so the CMEK check judges a snapshot and
can be re-run on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import storage
from pydantic import BaseModel, ConfigDict

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.gcp.session import TIMEOUT, GcpSession

PAGE_SIZE = 500
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
RESOURCE_TYPE = "gcp.storage.bucket"


def resource_id(bucket: str) -> str:
    """The bucket's full resource name, as Cloud Asset Inventory writes it."""
    return f"//storage.googleapis.com/projects/_/buckets/{bucket}"


@dataclass(frozen=True)
class Bucket:
    """One bucket's settings as the JSON API reports them."""

    name: str
    resource_id: str
    location: str | None
    uniform_access: bool
    public_access_prevention: str | None
    versioning: bool
    retention_period_seconds: int | None
    retention_locked: bool
    soft_delete_seconds: int | None
    logging: dict[str, str] | None
    default_kms_key_name: str | None


@dataclass(frozen=True)
class BucketIamPolicy:
    """One bucket's IAM bindings; read_error names the permission that was refused."""

    bucket: str
    resource_id: str
    bindings: list[dict[str, Any]] = field(default_factory=list)
    read_error: str | None = None


class StorageConfig(BaseModel):
    """This connection's Cloud Storage configuration parameters."""

    model_config = ConfigDict(extra="ignore")

    require_cmek: bool = False


@dataclass(frozen=True)
class EncryptionRequirement:
    """Whether this connection requires customer-managed keys on every bucket."""

    require_cmek: bool


# --- collectors (the only I/O in this module) -------------------------------------------------

@collector()
def collect_buckets(session: GcpSession) -> list[Bucket]:
    """Every bucket of the project with the settings the bucket checks judge."""
    return sorted((_bucket(b) for b in _list_buckets(session)), key=lambda b: b.name)


@collector()
def collect_bucket_iam_policies(session: GcpSession) -> list[BucketIamPolicy]:
    """Every bucket's IAM policy; a bucket whose policy may not be read carries the error."""
    policies = []
    for listed in _list_buckets(session):
        policy = _iam_policy(session, listed.name)
        if policy is not None:
            policies.append(policy)
    return sorted(policies, key=lambda p: p.bucket)


@collector()
def read_encryption_requirement(session: GcpSession, *,
                                config: StorageConfig) -> EncryptionRequirement:
    """The connection's `require_cmek` parameter (no provider call)."""
    return EncryptionRequirement(config.require_cmek)


def _list_buckets(session: GcpSession) -> list[storage.Bucket]:
    """All buckets of the project, page by page; each page is retried on its own."""
    buckets: list[storage.Bucket] = []
    token: str | None = None
    while True:
        page, token = session.call("buckets.list", "storage.buckets.list",
                                   partial(_bucket_page, project=session.project_id, token=token))
        buckets.extend(page)
        if not token:
            return buckets


def _bucket_page(client: storage.Client, *, project: str,
                 token: str | None) -> tuple[list[storage.Bucket], str | None]:
    iterator = client.list_buckets(project=project, page_token=token, page_size=PAGE_SIZE,
                                   retry=None, timeout=TIMEOUT)
    page = next(iterator.pages, None)
    return (list(page) if page is not None else []), iterator.next_page_token


def _iam_policy(session: GcpSession, name: str) -> BucketIamPolicy | None:
    """The bucket's policy (version 3, so conditional bindings show); None if it is gone."""
    def read(client: storage.Client) -> list[dict[str, Any]] | None:
        try:
            policy = client.bucket(name).get_iam_policy(requested_policy_version=3, retry=None,
                                                        timeout=TIMEOUT)
        except api_exceptions.NotFound:
            return None  # deleted since the listing
        return [_binding(b) for b in policy.bindings]

    try:
        bindings = session.call("buckets.getIamPolicy", "storage.buckets.getIamPolicy", read)
    except PermissionMissing as exc:
        # A bucket-level deny (or VPC Service Controls) is that bucket's error, not the run's.
        return BucketIamPolicy(name, resource_id(name), read_error=exc.message)
    if bindings is None:
        return None
    return BucketIamPolicy(name, resource_id(name), bindings=bindings)


def _binding(binding: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": binding.get("role"),
                           "members": sorted(binding.get("members") or [])}
    if binding.get("condition"):
        out["condition"] = dict(binding["condition"])
    return out


def _bucket(b: storage.Bucket) -> Bucket:
    iam = b.iam_configuration
    retention = b.retention_period
    soft_delete = b.soft_delete_policy.retention_duration_seconds if (
        b.soft_delete_policy is not None) else None
    logging = b.get_logging()
    return Bucket(
        name=b.name, resource_id=resource_id(b.name), location=b.location,
        uniform_access=bool(iam.uniform_bucket_level_access_enabled),
        public_access_prevention=iam.public_access_prevention,
        versioning=bool(b.versioning_enabled),
        retention_period_seconds=int(retention) if retention is not None else None,
        retention_locked=bool(b.retention_policy_locked),
        soft_delete_seconds=int(soft_delete) if soft_delete is not None else None,
        logging={k: str(v) for k, v in logging.items()} if logging else None,
        default_kms_key_name=b.default_kms_key_name,
    )


# --- checks (pure functions over the snapshots) -----------------------------------------------

def _facts(b: Bucket, **extra: Any) -> dict[str, Any]:
    return {"bucket": b.name, "location": b.location, **extra}


def _days(seconds: int) -> str:
    """A duration in days: "7 days", "1 day", "0.5 days"."""
    days = seconds / 86400
    return f"{days:g} day" + ("" if days == 1 else "s")


@check(id="gcp.storage.bucket_uniform_access", severity=Severity.HIGH,
       resource_type=RESOURCE_TYPE, needs=collect_buckets,
       remediation="Turn on uniform bucket-level access (bucket > Permissions > Access control: "
                   "Uniform), e.g. `gcloud storage buckets update gs://NAME "
                   "--uniform-bucket-level-access`; grant access with IAM instead of ACLs, and "
                   "enforce it for new buckets with the constraint "
                   "storage.uniformBucketLevelAccess.")
def bucket_uniform_access(buckets: list[Bucket]) -> Iterator[Result]:
    """Cloud Storage buckets use uniform bucket-level access (IAM only, no object ACLs)."""
    for b in buckets:
        title = (f"Bucket {b.name} uses uniform bucket-level access" if b.uniform_access
                 else f"Bucket {b.name} uses fine-grained access (object ACLs apply)")
        yield Result.of(b.resource_id, passing=b.uniform_access, title=title,
                        data=_facts(b, uniform_bucket_level_access=b.uniform_access))


@check(id="gcp.storage.bucket_public_access_prevention", severity=Severity.HIGH,
       resource_type=RESOURCE_TYPE, needs=collect_buckets,
       remediation="Enforce public access prevention on the bucket (bucket > Permissions > "
                   "Prevent public access), e.g. `gcloud storage buckets update gs://NAME "
                   "--public-access-prevention`; serve public content through a load balancer "
                   "or Cloud CDN with signed URLs.")
def bucket_public_access_prevention(buckets: list[Bucket]) -> Iterator[Result]:
    """Cloud Storage buckets enforce public access prevention.

    "inherited" fails: the bucket itself does not enforce it, and whether an organization
    policy does is not evidence this bucket carries.
    """
    for b in buckets:
        setting = b.public_access_prevention
        enforced = setting == "enforced"
        if enforced:
            title = f"Bucket {b.name} enforces public access prevention"
        elif setting in ("inherited", "unspecified"):
            title = (f"Bucket {b.name} does not enforce public access prevention "
                     "(inherited from the organization policy)")
        else:
            title = f"Bucket {b.name} does not enforce public access prevention"
        yield Result.of(b.resource_id, passing=enforced, title=title,
                        data=_facts(b, public_access_prevention=setting))


@check(id="gcp.storage.bucket_no_public_iam", severity=Severity.CRITICAL,
       resource_type=RESOURCE_TYPE, needs=collect_bucket_iam_policies,
       remediation="Remove allUsers and allAuthenticatedUsers from the bucket's IAM policy "
                   "(bucket > Permissions), e.g. `gcloud storage buckets "
                   "remove-iam-policy-binding gs://NAME --member=allUsers --role=ROLE`, then "
                   "enforce public access prevention so they cannot come back.")
def bucket_no_public_iam(policies: list[BucketIamPolicy]) -> Iterator[Result]:
    """Cloud Storage bucket IAM policies grant nothing to allUsers or allAuthenticatedUsers."""
    for p in policies:
        if p.read_error is not None:
            yield Result.error(p.resource_id, f"Could not read the IAM policy of bucket "
                               f"{p.bucket}: {p.read_error}",
                               {"bucket": p.bucket, "error": p.read_error})
            continue
        public = [{"role": b["role"], "members": [m for m in b["members"]
                                                   if m in PUBLIC_MEMBERS]}
                  for b in p.bindings if any(m in PUBLIC_MEMBERS for m in b["members"])]
        if public:
            grants = ", ".join(f"{r['role']} to {' and '.join(r['members'])}" for r in public)
            title = f"Bucket {p.bucket} is public: grants {grants}"
        else:
            title = f"Bucket {p.bucket} grants nothing to allUsers or allAuthenticatedUsers"
        yield Result.of(p.resource_id, passing=not public, title=title,
                        data={"bucket": p.bucket, "bindings": p.bindings,
                              "public_bindings": public})


@check(id="gcp.storage.bucket_versioning", severity=Severity.MEDIUM,
       resource_type=RESOURCE_TYPE, needs=collect_buckets,
       remediation="Turn on object versioning (bucket > Protection > Object versioning), e.g. "
                   "`gcloud storage buckets update gs://NAME --versioning`, with a lifecycle "
                   "rule that deletes noncurrent versions after your recovery window.")
def bucket_versioning(buckets: list[Bucket]) -> Iterator[Result]:
    """Cloud Storage buckets keep noncurrent object versions so overwritten data is recoverable."""
    for b in buckets:
        title = (f"Bucket {b.name} has object versioning on" if b.versioning
                 else f"Bucket {b.name} has object versioning off")
        yield Result.of(b.resource_id, passing=b.versioning, title=title,
                        data=_facts(b, versioning=b.versioning))


@check(id="gcp.storage.bucket_retention", severity=Severity.MEDIUM,
       resource_type=RESOURCE_TYPE, needs=collect_buckets,
       remediation="Keep deleted data recoverable: leave soft delete on (7 days or more), e.g. "
                   "`gcloud storage buckets update gs://NAME --soft-delete-duration=7d`, or set a "
                   "retention policy (`--retention-period=30d`, locked for records that must "
                   "not be erased early).")
def bucket_retention(buckets: list[Bucket]) -> Iterator[Result]:
    """Cloud Storage buckets protect objects from early deletion with a retention or
    soft-delete policy."""
    for b in buckets:
        retention = b.retention_period_seconds or 0
        soft_delete = b.soft_delete_seconds or 0
        kept = []
        if retention:
            kept.append(f"a {'locked ' if b.retention_locked else ''}retention policy of "
                        f"{_days(retention)}")
        if soft_delete:
            kept.append(f"{_days(soft_delete)} of soft delete")
        title = (f"Bucket {b.name} keeps deleted objects recoverable with " + " and ".join(kept)
                 if kept else f"Bucket {b.name} has no retention policy and soft delete off")
        yield Result.of(b.resource_id, passing=bool(kept), title=title,
                        data=_facts(b, retention_period_seconds=b.retention_period_seconds,
                                    retention_locked=b.retention_locked,
                                    soft_delete_seconds=b.soft_delete_seconds))


@check(id="gcp.storage.bucket_access_logging", severity=Severity.MEDIUM,
       resource_type=RESOURCE_TYPE, needs=collect_buckets,
       remediation="Turn on usage and storage logs into a dedicated log bucket, e.g. `gcloud "
                   "storage buckets update gs://NAME --log-bucket=gs://LOG_BUCKET "
                   "--log-object-prefix=NAME`, or enable Data Access audit logs for Cloud "
                   "Storage.")
def bucket_access_logging(buckets: list[Bucket]) -> Iterator[Result]:
    """Cloud Storage buckets write usage logs to a log bucket."""
    for b in buckets:
        target = (b.logging or {}).get("logBucket")
        title = (f"Bucket {b.name} writes access logs to {target}" if target
                 else f"Bucket {b.name} has no access logging")
        yield Result.of(b.resource_id, passing=bool(target), title=title,
                        data=_facts(b, logging=b.logging))


@check(id="gcp.storage.bucket_cmek", severity=Severity.MEDIUM,
       resource_type=RESOURCE_TYPE, needs=(collect_buckets, read_encryption_requirement),
       remediation="Set a Cloud KMS key as the bucket's default encryption key, e.g. `gcloud "
                   "storage buckets update gs://NAME --default-encryption-key=projects/P/"
                   "locations/L/keyRings/R/cryptoKeys/K` (grant the Cloud Storage service agent "
                   "roles/cloudkms.cryptoKeyEncrypterDecrypter on the key first).")
def bucket_cmek(buckets: list[Bucket], requirement: EncryptionRequirement) -> Iterator[Result]:
    """Cloud Storage buckets encrypt new objects with a customer-managed key where required.

    Google encrypts every object at rest; a customer-managed key is a stronger control some
    organisations require. With the connection parameter require_cmek on, a bucket without a
    default KMS key fails; with it off (the default) such a bucket is not applicable, and a
    bucket with a key passes either way.
    """
    for b in buckets:
        key = b.default_kms_key_name
        data = _facts(b, default_kms_key_name=key, require_cmek=requirement.require_cmek)
        if key:
            yield Result.of(b.resource_id, passing=True,
                            title=f"Bucket {b.name} encrypts new objects with Cloud KMS key {key}",
                            data=data)
        elif requirement.require_cmek:
            yield Result.of(b.resource_id, passing=False,
                            title=f"Bucket {b.name} uses Google-managed encryption, but this "
                                  "connection requires customer-managed keys", data=data)
        else:
            yield Result.not_applicable(
                b.resource_id, f"Bucket {b.name} uses Google-managed encryption; customer-managed "
                               "keys are not required (require_cmek is off)", data)

