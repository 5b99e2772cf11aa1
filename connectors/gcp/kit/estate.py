"""A realistic emulated Google Cloud project for the kit, seeded into gcp-storage-emulator.

`seed_estate` creates the Cloud Storage buckets of a small company ("acme") through the real
google-cloud-storage client, some compliant and some not, and returns the verdict every check
should reach on each bucket. The verdicts come from the seeding specification below, not from
the connector, so the tests compare two independent answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from connectors.base import Status

PASSING, FAILING, NOT_APPLICABLE = (Status.PASSING.value, Status.FAILING.value,
                                    Status.NOT_APPLICABLE.value)
DAY = 86400
KMS_KEYS = "projects/acme-security/locations/{location}/keyRings/storage/cryptoKeys/{bucket}"
AUDIT_LOG_BUCKET = "acme-prod-audit-logs"


@dataclass(frozen=True)
class _Bucket:
    name: str
    location: str
    uniform_access: bool
    prevention: str  # "enforced" or "inherited"
    public_members: tuple[str, ...] = ()  # granted roles/storage.objectViewer
    versioning: bool = False
    retention_days: int = 0
    soft_delete_days: int = 7  # what GCS gives a new bucket; 0 turns soft delete off
    logs: bool = False  # usage logs into the audit log bucket
    cmek: bool = False


BUCKETS = (
    # The log sink: locked down and retained, but it does not log itself.
    _Bucket(AUDIT_LOG_BUCKET, "US", True, "enforced", versioning=True, retention_days=365,
            cmek=True),
    _Bucket("acme-prod-backups", "US", True, "enforced", versioning=True, retention_days=30,
            logs=True, cmek=True),
    _Bucket("acme-terraform-state", "US", True, "enforced", versioning=True, logs=True),
    _Bucket("acme-customer-uploads", "US", True, "enforced", soft_delete_days=0, logs=True,
            cmek=True),
    _Bucket("acme-marketing-site", "US", False, "inherited", public_members=("allUsers",),
            soft_delete_days=0),
    _Bucket("acme-data-lake-raw", "US", True, "inherited",
            public_members=("allAuthenticatedUsers",), versioning=True, retention_days=30,
            logs=True, cmek=True),
    _Bucket("acme-ml-training-data", "US", False, "enforced"),
    _Bucket("acme-eu-customer-data", "EU", True, "enforced", versioning=True, soft_delete_days=14,
            logs=True, cmek=True),
    _Bucket("acme-ci-artifacts", "US", True, "enforced", retention_days=7, soft_delete_days=0,
            logs=True),
    _Bucket("acme-dev-scratch", "US", False, "inherited", soft_delete_days=0),
)


@dataclass(frozen=True)
class Estate:
    """What was seeded, and the verdict each check must reach: check id → {resource: status}."""

    endpoint_url: str
    project_id: str
    require_cmek: bool
    resources: int
    expected: dict[str, dict[str, str]]

    def credentials(self) -> dict[str, Any]:
        """Raw connection credentials reaching this estate (as a client would send them)."""
        return {"project_id": self.project_id, "endpoint_url": self.endpoint_url}

    def config(self) -> dict[str, Any]:
        """The connection configuration the expected verdicts assume."""
        return {"require_cmek": self.require_cmek}


def resource_id(bucket: str) -> str:
    return f"//storage.googleapis.com/projects/_/buckets/{bucket}"


def seed_estate(endpoint_url: str, project_id: str = "acme-prod", *,
                require_cmek: bool = False) -> Estate:
    """Create the acme buckets in the emulator at endpoint_url; return the expected verdicts."""
    client = storage.Client(project=project_id, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": endpoint_url.rstrip("/")})
    for spec in BUCKETS:
        _seed_bucket(client, spec)
    return Estate(endpoint_url=endpoint_url.rstrip("/"), project_id=project_id,
                  require_cmek=require_cmek, resources=len(BUCKETS),
                  expected=expected_verdicts(require_cmek))


def _seed_bucket(client: storage.Client, spec: _Bucket) -> None:
    bucket = client.create_bucket(spec.name, location=spec.location)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = spec.uniform_access
    bucket.iam_configuration.public_access_prevention = spec.prevention
    bucket.versioning_enabled = spec.versioning
    if spec.retention_days:
        bucket.retention_period = spec.retention_days * DAY
    bucket.soft_delete_policy.retention_duration_seconds = spec.soft_delete_days * DAY
    if spec.logs:
        bucket.enable_logging(AUDIT_LOG_BUCKET, object_prefix=f"{spec.name}/")
    if spec.cmek:
        bucket.default_kms_key_name = KMS_KEYS.format(
            location="europe" if spec.location == "EU" else "us", bucket=spec.name)
    bucket.patch()
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings.append({"role": "roles/storage.objectAdmin",
                            "members": {"serviceAccount:deployer@acme-prod.iam.gserviceaccount"
                                        ".com"}})
    if spec.public_members:
        policy.bindings.append({"role": "roles/storage.objectViewer",
                                "members": set(spec.public_members)})
    bucket.set_iam_policy(policy)


def expected_verdicts(require_cmek: bool = False) -> dict[str, dict[str, str]]:
    """Each check's verdict on each seeded bucket, read from the specification."""
    def verdict(ok: bool) -> str:
        return PASSING if ok else FAILING

    checks: dict[str, dict[str, str]] = {}
    for spec in BUCKETS:
        rid = resource_id(spec.name)
        by_check = {
            "gcp.storage.bucket_uniform_access": verdict(spec.uniform_access),
            "gcp.storage.bucket_public_access_prevention": verdict(spec.prevention == "enforced"),
            "gcp.storage.bucket_no_public_iam": verdict(not spec.public_members),
            "gcp.storage.bucket_versioning": verdict(spec.versioning),
            "gcp.storage.bucket_retention": verdict(bool(spec.retention_days
                                                         or spec.soft_delete_days)),
            "gcp.storage.bucket_access_logging": verdict(spec.logs),
            "gcp.storage.bucket_cmek": (PASSING if spec.cmek else FAILING if require_cmek
                                        else NOT_APPLICABLE),
        }
        for check_id, status in by_check.items():
            checks.setdefault(check_id, {})[rid] = status
    return checks
