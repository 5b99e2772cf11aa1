"""AWS Account Management: a security contact registered for the account (CIS AWS v3.0 1.2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from connectors.aws.session import AwsSession, error_code
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class SecurityContact:
    """The account's SECURITY alternate contact (GetAlternateContact); None when unset."""

    account_id: str
    root_arn: str
    contact: dict[str, str] | None


@collector()
def collect_security_contact(session: AwsSession) -> SecurityContact:
    """The SECURITY alternate contact; ResourceNotFoundException means none is registered."""
    identity = session.identity()
    with session.service("account") as client:
        try:
            found = client.get_alternate_contact(AlternateContactType="SECURITY")
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            found = {}
    contact = found.get("AlternateContact")
    return SecurityContact(
        account_id=identity.account_id, root_arn=identity.root_arn,
        contact=None if contact is None else {
            key: str(contact.get(key) or "") for key in ("Name", "Title", "EmailAddress",
                                                         "PhoneNumber")})


@check(id="aws.account.security_contact", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_security_contact,
       benchmarks={"cis_aws": ["1.2"]},
       remediation="Register a security contact (Account > Alternate contacts > Security), "
                   "ideally a team mailbox and phone line, e.g. `aws account "
                   "put-alternate-contact --alternate-contact-type SECURITY --name NAME "
                   "--title TITLE --email-address security@example.com --phone-number "
                   "+15555550100`.")
def security_contact(found: SecurityContact) -> Iterator[Result]:
    """The account has a security contact AWS can reach about security issues."""
    c = found.contact
    complete = bool(c and c["EmailAddress"] and c["PhoneNumber"] and c["Name"])
    if c is None:
        title = "The account has no security contact registered"
    elif complete:
        title = f"The account's security contact is {c['Name']} <{c['EmailAddress']}>"
    else:
        title = "The account's security contact lacks a name, email address or phone number"
    yield Result.of(found.root_arn, passing=complete, title=title,
                    data={"account_id": found.account_id, "security_contact": c})
