"""Amazon Web Services: the AWS connector and the checks it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

from connectors.aws import (
    accessanalyzer,
    account,
    cloudtrail,
    cloudwatch,
    config,
    ec2,
    efs,
    elb,
    guardduty,
    iam,
    iam_access,
    iam_credentials,
    iam_password,
    iam_root,
    kms,
    lambda_,
    macie,
    rds,
    s3,
    securityhub,
    vpc,
)
from connectors.aws.session import AwsCredentials, AwsSession
from connectors.base import AuthType, Category, Connector, PermissionMissing

__all__ = ["AwsConfig", "AwsConnector", "AwsCredentials", "AwsSession"]


class AwsConfig(BaseModel):
    """AWS takes no configuration parameters (regions are part of the credentials): any key is
    refused, 422 `invalid_config`, before anything is stored."""

    model_config = ConfigDict(extra="forbid")


class AwsConnector(Connector):
    """One AWS account, read through a read-only access key (SecurityAudit is enough)."""

    id = "aws"
    control_mappings = Path(__file__).with_name("mappings.yaml")
    name = "Amazon Web Services"
    category = Category.CLOUD
    auth_type = AuthType.API_KEY
    icon = "aws"
    description = ("Audits an AWS account in every enabled region: S3 bucket encryption, "
                   "public access, versioning and TLS; IAM MFA, password policy, access keys "
                   "and admin policies; CloudTrail, GuardDuty, AWS Config and KMS rotation; "
                   "EBS encryption, security groups, VPC flow logs and IMDSv2; RDS encryption, "
                   "exposure and backups; load balancer TLS and Lambda function URLs; and the "
                   "CIS AWS Foundations Benchmark v3.0, one property a check: the root user, "
                   "the password policy, policies through groups, Access Analyzer, the "
                   "security contact, identity federation, instance profiles, account-level "
                   "S3 Block Public Access, Macie, EFS encryption, CloudTrail data events, the "
                   "monitoring alarms, Security Hub, network ACLs, security groups per address "
                   "family and VPC peering routes.")
    credentials_model = AwsCredentials
    config_model = AwsConfig
    checks = (
        s3.bucket_default_encryption,
        s3.bucket_public_access_block,
        s3.bucket_versioning,
        iam.root_account_mfa,
        iam.console_users_mfa,
        iam_password.password_policy_strength,  # deprecated alias of the seven, one release
        cloudtrail.multi_region_trail,
        ec2.ebs_encryption_by_default,
        ec2.security_group_admin_ports,  # deprecated alias of the ipv4/ipv6 pair, one release
        rds.storage_encrypted,
        s3.bucket_tls_only,
        iam.access_key_rotation,
        iam.unused_credentials,
        iam.single_active_access_key,
        iam.no_full_admin_policies,
        cloudtrail.log_file_validation,
        cloudtrail.kms_encryption,
        guardduty.guardduty_enabled,
        config.recorder_enabled,
        kms.key_rotation,
        ec2.vpc_flow_logs,
        ec2.instance_imdsv2,
        rds.not_publicly_accessible,
        rds.automated_backups,
        rds.auto_minor_version_upgrade,
        elb.https_listeners,
        lambda_.function_url_auth,
        # CIS AWS Foundations Benchmark v3.0 (each declares its recommendation number)
        iam_root.no_root_access_keys,
        iam_root.root_hardware_mfa,
        iam_root.root_not_used,
        iam_access.user_permissions_via_groups,
        iam_access.support_role,
        iam_access.expired_server_certificates,
        iam_access.cloudshell_full_access_restricted,
        iam_credentials.no_initial_access_keys,
        iam_credentials.console_password_unused_45_days,
        iam_credentials.access_keys_unused_45_days,
        s3.account_public_access_block,
        s3.bucket_mfa_delete,
        efs.encryption_at_rest,
        cloudtrail.bucket_access_logging,
        cloudtrail.s3_object_write_logging,
        cloudtrail.s3_object_read_logging,
        *cloudwatch.MONITORING_CHECKS,
        securityhub.securityhub_enabled,
        ec2.network_acl_admin_ports,
        ec2.default_security_group_restricted,
        # one property a check (issue #13): the password policy and admin ports, split
        *iam_password.PASSWORD_CHECKS,
        ec2.security_group_admin_ports_ipv4,
        ec2.security_group_admin_ports_ipv6,
        accessanalyzer.access_analyzer_enabled,
        account.security_contact,
        ec2.instance_profile_attached,
        iam_access.identity_federation,
        macie.macie_enabled,
        vpc.vpc_peering_least_access,
    )
    max_parallel = 8

    def session(self) -> AwsSession:
        """Clients for the account; per-resource reads fan out up to max_parallel at once."""
        return AwsSession(cast(AwsCredentials, self.credentials), parallelism=self.max_parallel)

    def verify(self) -> dict[str, Any]:
        """Prove the key with STS GetCallerIdentity; name the account and its regions."""
        session = self.session()
        identity = session.identity()
        try:
            with session.service("iam") as client:
                aliases = client.list_account_aliases().get("AccountAliases", [])
        except PermissionMissing:
            aliases = []  # the alias is only a label: without iam:ListAccountAliases, use the id
        return {
            "accountId": identity.account_id,
            "accountAlias": aliases[0] if aliases else identity.account_id,
            "regions": self.scopes(session),
        }

    def scopes(self, session: AwsSession) -> list[str]:
        """The configured regions, else every region enabled for the account."""
        if session.credentials.regions:
            return list(session.credentials.regions)
        with session.service("ec2", session.home_region) as client:
            regions = client.describe_regions()["Regions"]
        return sorted(r["RegionName"] for r in regions
                      if r.get("OptInStatus") != "not-opted-in")
