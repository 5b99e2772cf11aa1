"""AWS IAM, who holds which policy: permissions through groups, the AWS Support role, the
CloudShell full-access policy, and expired server certificates.

CIS AWS Foundations Benchmark v3.0 1.15, 1.17, 1.19 and 1.22. The attachments come from one
paged GetAccountAuthorizationDetails read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector

SUPPORT_POLICY = "AWSSupportAccess"
CLOUDSHELL_POLICY = "AWSCloudShellFullAccess"


@dataclass(frozen=True)
class Principal:
    """An IAM user, group or role with the managed policies attached to it and its inline
    policies' names."""

    kind: str  # user, group, role
    name: str
    arn: str
    attached: list[str] = field(default_factory=list)  # managed policy ARNs
    inline: list[str] = field(default_factory=list)  # inline policy names
    groups: list[str] = field(default_factory=list)  # a user's groups


@dataclass(frozen=True)
class Authorization:
    """Every user, group and role of the account with its policies."""

    account_id: str
    root_arn: str
    partition: str
    principals: list[Principal] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Principal]:
        return [p for p in self.principals if p.kind == kind]

    def aws_policy_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::aws:policy/{name}"

    def holders(self, policy_arn: str, kinds: tuple[str, ...] = ("user", "group", "role"),
                ) -> list[Principal]:
        """The principals the managed policy is attached to."""
        return [p for p in self.principals if p.kind in kinds and policy_arn in p.attached]


_DETAIL_LISTS = (("user", "UserDetailList", "UserName", "UserPolicyList"),
                 ("group", "GroupDetailList", "GroupName", "GroupPolicyList"),
                 ("role", "RoleDetailList", "RoleName", "RolePolicyList"))


@collector()
def collect_authorization(session: AwsSession) -> Authorization:
    """Users, groups and roles with their attached and inline policies (one paged call)."""
    identity = session.identity()
    principals = []
    with session.service("iam") as iam:
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "Group", "Role"])
        for page in pages:
            for kind, key, name_key, inline_key in _DETAIL_LISTS:
                for item in page.get(key, []):
                    principals.append(Principal(
                        kind=kind, name=item[name_key], arn=item["Arn"],
                        attached=sorted(p["PolicyArn"]
                                        for p in item.get("AttachedManagedPolicies", [])),
                        inline=sorted(p["PolicyName"] for p in item.get(inline_key, [])),
                        groups=sorted(item.get("GroupList", [])),
                    ))
    return Authorization(account_id=identity.account_id, root_arn=identity.root_arn,
                         partition=identity.partition,
                         principals=sorted(principals, key=lambda p: p.arn))


@check(id="aws.iam.user_permissions_via_groups", severity=Severity.LOW,
       resource_type="aws.iam.user", needs=collect_authorization,
       benchmarks={"cis_aws": ["1.15"]},
       remediation="Move the user's policies to a group that matches the job (`aws iam "
                   "attach-group-policy`, `aws iam add-user-to-group`), then detach the "
                   "managed policies (`aws iam detach-user-policy`) and delete the inline ones "
                   "(`aws iam delete-user-policy`) from the user.")
def user_permissions_via_groups(authorization: Authorization) -> Iterator[Result]:
    """IAM users receive permissions only through groups, with no policy attached to them."""
    for u in authorization.of_kind("user"):
        direct = len(u.attached) + len(u.inline)
        title = (f"User {u.name} has {direct} polic{'y' if direct == 1 else 'ies'} of its own "
                 f"({', '.join([*(a.rsplit('/', 1)[-1] for a in u.attached), *u.inline])})"
                 if direct else f"User {u.name} has permissions only through groups")
        yield Result.of(u.arn, passing=not direct, title=title,
                        data={"user": u.name, "attached_policies": u.attached,
                              "inline_policies": u.inline, "groups": u.groups})


@check(id="aws.iam.support_role", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_authorization,
       benchmarks={"cis_aws": ["1.17"]},
       remediation="Create a role for incident handling with AWS Support and attach the "
                   "AWSSupportAccess managed policy, e.g. `aws iam create-role --role-name "
                   "aws-support --assume-role-policy-document file://trust.json` then `aws iam "
                   "attach-role-policy --role-name aws-support --policy-arn "
                   "arn:aws:iam::aws:policy/AWSSupportAccess`.")
def support_role(authorization: Authorization) -> Iterator[Result]:
    """A role with the AWSSupportAccess policy exists to manage incidents with AWS Support."""
    policy = authorization.aws_policy_arn(SUPPORT_POLICY)
    roles = [r.name for r in authorization.holders(policy, ("role",))]
    title = (f"Role {', '.join(roles)} can manage AWS Support cases" if roles
             else f"No role has the {SUPPORT_POLICY} policy")
    yield Result.of(authorization.root_arn, passing=bool(roles), title=title,
                    data={"account_id": authorization.account_id, "policy": policy,
                          "support_roles": roles})


@check(id="aws.iam.cloudshell_full_access_restricted", severity=Severity.MEDIUM,
       resource_type="aws.iam.policy", needs=collect_authorization,
       benchmarks={"cis_aws": ["1.22"]},
       remediation="Detach AWSCloudShellFullAccess from every user, group and role (`aws iam "
                   "detach-user-policy` / `detach-group-policy` / `detach-role-policy`); grant "
                   "CloudShell without file upload and download where people need it.")
def cloudshell_full_access_restricted(authorization: Authorization) -> Iterator[Result]:
    """Nobody holds AWSCloudShellFullAccess (file transfer in and out of CloudShell)."""
    policy = authorization.aws_policy_arn(CLOUDSHELL_POLICY)
    holders = authorization.holders(policy)
    title = (f"{CLOUDSHELL_POLICY} is attached to "
             + ", ".join(f"{p.kind} {p.name}" for p in holders) if holders
             else f"{CLOUDSHELL_POLICY} is attached to nobody")
    yield Result.of(policy, passing=not holders, title=title,
                    data={"account_id": authorization.account_id, "policy": policy,
                          "attached_to": [{"kind": p.kind, "name": p.name, "arn": p.arn}
                                          for p in holders]})


# --- server certificates -------------------------------------------------------------------

@dataclass(frozen=True)
class ServerCertificate:
    """One SSL/TLS certificate stored in IAM."""

    name: str
    arn: str
    expiration: str | None  # ISO 8601


@dataclass(frozen=True)
class ServerCertificates:
    """IAM's server certificates and the day they were read (midnight UTC: the snapshot of an
    unchanged account stays the same all day, so it is stored once a day, not every sync)."""

    collected_at: datetime
    certificates: list[ServerCertificate] = field(default_factory=list)


@collector()
def collect_server_certificates(session: AwsSession) -> ServerCertificates:
    """Every server certificate stored in IAM with its expiry."""
    certificates = []
    with session.service("iam") as iam:
        for page in iam.get_paginator("list_server_certificates").paginate():
            for meta in page["ServerCertificateMetadataList"]:
                expiration = meta.get("Expiration")
                certificates.append(ServerCertificate(
                    name=meta["ServerCertificateName"], arn=meta["Arn"],
                    expiration=(expiration.astimezone(UTC).isoformat()
                                if isinstance(expiration, datetime) else expiration)))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return ServerCertificates(collected_at=today,
                              certificates=sorted(certificates, key=lambda c: c.arn))


@check(id="aws.iam.expired_server_certificates", severity=Severity.MEDIUM,
       resource_type="aws.iam.server_certificate", needs=collect_server_certificates,
       benchmarks={"cis_aws": ["1.19"]},
       remediation="Delete expired certificates from IAM (`aws iam delete-server-certificate "
                   "--server-certificate-name NAME`) after moving any listener that still uses "
                   "one to a current certificate, preferably one issued by ACM.")
def expired_server_certificates(certificates: ServerCertificates) -> Iterator[Result]:
    """SSL/TLS certificates stored in IAM have not expired."""
    # Judged a day at a time: a certificate that expires during the day it was read counts as
    # expired (a day early rather than up to a day late).
    day_ends = certificates.collected_at + timedelta(days=1)
    for c in certificates.certificates:
        ends = datetime.fromisoformat(c.expiration) if c.expiration else None
        expired = ends is not None and ends < day_ends
        when = (c.expiration or "unknown")[:10]
        if ends is not None and ends < certificates.collected_at:
            title = f"Server certificate {c.name} expired on {when}"
        elif expired:
            title = f"Server certificate {c.name} expires today ({when})"
        else:
            title = f"Server certificate {c.name} is valid until {when}"
        yield Result.of(c.arn, passing=not expired, title=title,
                        data={"certificate": c.name, "expiration": c.expiration})


# --- identity federation ---------------------------------------------------------------------

@dataclass(frozen=True)
class IdentityProviders:
    """The account's SAML identity providers (IAM Identity Center makes one in each account)."""

    account_id: str
    root_arn: str
    saml_providers: list[str] = field(default_factory=list)  # ARNs


@collector()
def collect_identity_providers(session: AwsSession) -> IdentityProviders:
    """The account's SAML providers (ListSAMLProviders, one call)."""
    identity = session.identity()
    with session.service("iam") as iam:
        arns = sorted(p["Arn"] for p in iam.list_saml_providers().get("SAMLProviderList", []))
    return IdentityProviders(account_id=identity.account_id, root_arn=identity.root_arn,
                             saml_providers=arns)


@check(id="aws.iam.identity_federation", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_identity_providers,
       benchmarks={"cis_aws": ["1.21"]},
       remediation="Manage people centrally: connect the account to IAM Identity Center (or "
                   "your identity provider through a SAML provider, `aws iam "
                   "create-saml-provider --name IDP --saml-metadata-document file://idp.xml`) "
                   "and replace IAM users for people with federated roles.")
def identity_federation(providers: IdentityProviders) -> Iterator[Result]:
    """People reach the account through identity federation (a SAML identity provider)."""
    names = [arn.rsplit("/", 1)[-1] for arn in providers.saml_providers]
    title = (f"The account federates identities through SAML provider {', '.join(names)}"
             if names else "The account has no SAML identity provider")
    yield Result.of(providers.root_arn, passing=bool(names), title=title,
                    data={"account_id": providers.account_id,
                          "saml_providers": providers.saml_providers})
