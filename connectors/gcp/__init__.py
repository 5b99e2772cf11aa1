"""Google Cloud: the Google Cloud connector and the checks it runs."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, ClassVar, cast

from google.cloud import storage as gcs

from connectors.base import AuthType, Category, ConfigParam, Connector, RetryPolicy
from connectors.gcp import storage
from connectors.gcp.session import TIMEOUT, GcpCredentials, GcpSession

__all__ = ["GcpConnector", "GcpCredentials", "GcpSession", "RetryPolicy"]


class GcpConnector(Connector):
    """One Google Cloud project, read through a service account key (Security Reviewer)."""

    id = "gcp"
    control_mappings = Path(__file__).with_name("mappings.yaml")
    name = "Google Cloud"
    category = Category.CLOUD
    auth_type = AuthType.SERVICE_ACCOUNT
    icon = "gcp"
    description = ("Audits a Google Cloud project's Cloud Storage buckets: uniform bucket-level "
                   "access, public access prevention, public IAM bindings, versioning, "
                   "retention and soft delete, access logging and customer-managed keys.")
    credentials_model = GcpCredentials
    config_model = storage.StorageConfig
    config_params = (
        ConfigParam("require_cmek", "Require a customer-managed Cloud KMS key on every bucket: "
                    "buckets without one fail gcp.storage.bucket_cmek (when off, they are "
                    "not applicable).", default=False),
    )
    checks = (
        storage.bucket_uniform_access,
        storage.bucket_public_access_prevention,
        storage.bucket_no_public_iam,
        storage.bucket_versioning,
        storage.bucket_retention,
        storage.bucket_access_logging,
        storage.bucket_cmek,
    )
    # Google's guidance for Cloud Storage: back off from one second.
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(initial_wait=1.0)

    def session(self) -> GcpSession:
        return GcpSession(cast(GcpCredentials, self.credentials), retry=self.retry_policy,
                          endpoints=self.endpoints)

    def verify(self) -> dict[str, Any]:
        """Prove the credentials by listing one bucket; name the project and the principal."""
        session = self.session()
        session.call("buckets.list", "storage.buckets.list",
                     partial(_first_bucket, project=session.project_id))
        return {"projectId": session.project_id, "serviceAccount": session.principal}


def _first_bucket(client: gcs.Client, *, project: str) -> list[gcs.Bucket]:
    return list(client.list_buckets(project=project, max_results=1, retry=None,
                                    timeout=TIMEOUT))
