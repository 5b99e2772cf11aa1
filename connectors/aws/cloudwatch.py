"""Amazon CloudWatch: the metric filters and alarms of the CIS monitoring section (4.1–4.15).

For each recommendation, a multi-region trail that is logging every management event delivers
to a CloudWatch Logs group; that group has a metric filter whose pattern holds every term the
benchmark's pattern names (in any order, any spacing, quoted or not); an alarm watches the
filter's metric; and the alarm notifies an SNS topic with at least one confirmed subscriber.
One collector reads all of it once; fifteen checks judge it, one per recommendation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.cloudtrail import TrailSetup, read_trail_setups
from connectors.aws.session import AwsSession
from connectors.base import Check, PermissionMissing, Result, Severity, check, collector

Term = tuple[str, str, str]  # (field, operator, value): operator "=", "!=" or "NOT EXISTS"


@dataclass(frozen=True)
class MetricFilter:
    """One metric filter of a log group and the metrics it publishes: (name, namespace)."""

    log_group: str
    region: str
    name: str
    pattern: str
    metrics: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Alarm:
    """One metric alarm and the actions it takes when it fires."""

    name: str
    region: str
    metric_name: str | None
    namespace: str | None
    actions: list[str] = field(default_factory=list)
    actions_enabled: bool = True


@dataclass(frozen=True)
class Monitoring:
    """The trails, their log groups' metric filters, the alarms of those regions and the
    confirmed subscribers of the SNS topics the alarms notify."""

    account_id: str
    root_arn: str
    trails: list[TrailSetup] = field(default_factory=list)
    filters: list[MetricFilter] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    subscribers: dict[str, int | None] = field(default_factory=dict)
    """Topic ARN → its confirmed subscriptions; None where the topic could not be read (another
    account's topic the credentials may not list)."""


def log_group_of(arn: str) -> tuple[str, str]:
    """(region, name) of a log group ARN `arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]`."""
    parts = arn.split(":")
    return parts[3], parts[6]


@collector()
def collect_monitoring(session: AwsSession) -> Monitoring:
    """Trails, their log groups' metric filters, alarms and SNS subscribers (read once)."""
    setups = read_trail_setups(session, session.home_region, shadows=True,
                               bucket_logging=False)
    groups = sorted({log_group_of(t.log_group_arn) for t in setups.trails if t.log_group_arn})
    filters: list[MetricFilter] = []
    for region, name in groups:
        with session.service("logs", region) as logs:
            for page in logs.get_paginator("describe_metric_filters").paginate(
                    logGroupName=name):
                filters.extend(MetricFilter(
                    log_group=name, region=region, name=f["filterName"],
                    pattern=f.get("filterPattern", ""),
                    metrics=[(m["metricName"], m.get("metricNamespace", ""))
                             for m in f.get("metricTransformations", [])])
                    for f in page["metricFilters"])
    alarms: list[Alarm] = []
    for region in sorted({r for r, _ in groups}):
        with session.service("cloudwatch", region) as cloudwatch:
            for page in cloudwatch.get_paginator("describe_alarms").paginate(
                    AlarmTypes=["MetricAlarm"]):
                alarms.extend(Alarm(
                    name=a["AlarmName"], region=region, metric_name=a.get("MetricName"),
                    namespace=a.get("Namespace"), actions=list(a.get("AlarmActions", [])),
                    actions_enabled=bool(a.get("ActionsEnabled", True)))
                    for a in page["MetricAlarms"])
    topics = sorted({action for a in alarms for action in a.actions
                     if action.split(":")[2:3] == ["sns"]})
    return Monitoring(account_id=setups.account_id, root_arn=setups.root_arn,
                      trails=setups.trails, filters=sorted(filters, key=lambda f: f.name),
                      alarms=sorted(alarms, key=lambda a: a.name),
                      subscribers={topic: _confirmed_subscribers(session, topic)
                                   for topic in topics})


def _confirmed_subscribers(session: AwsSession, topic: str) -> int | None:
    """The topic's confirmed subscriptions (a pending one has no ARN yet); None when denied."""
    try:
        with session.service("sns", topic.split(":")[3]) as sns:
            return sum(1 for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                           TopicArn=topic)
                       for s in page["Subscriptions"]
                       if str(s.get("SubscriptionArn", "")).startswith("arn:"))
    except PermissionMissing:
        return None


def _term_pattern(term: Term) -> re.Pattern[str]:
    name, operator, value = term
    selector = r"\$\." + re.escape(name)
    if operator == "NOT EXISTS":
        return re.compile(selector + r"\s+NOT\s+EXISTS", re.IGNORECASE)
    op = r"\s*!=\s*" if operator == "!=" else r"\s*(?<![!<>])=\s*"
    return re.compile(selector + op + r"\"?" + re.escape(value) + r"(?![\w.*-])\"?")


def pattern_has(pattern: str, terms: tuple[Term, ...]) -> list[Term]:
    """The terms the filter pattern misses (empty when it names them all)."""
    return [t for t in terms if not _term_pattern(t).search(pattern)]


@dataclass(frozen=True)
class Watch:
    """One recommendation: what its metric filter must match."""

    cis: str
    subject: str
    terms: tuple[Term, ...]


def _events(*names: str, source: str | None = None) -> tuple[Term, ...]:
    origin: tuple[Term, ...] = (("eventSource", "=", source),) if source else ()
    return origin + tuple(("eventName", "=", n) for n in names)


def trails_delivering(monitoring: Monitoring) -> list[TrailSetup]:
    """Multi-region trails that are logging every management event into CloudWatch Logs."""
    return [t for t in monitoring.trails if t.is_multi_region and t.is_logging
            and t.log_group_arn and t.records_all_management_events]


def judge_watch(watch: Watch, monitoring: Monitoring) -> Result:
    """Whether some delivering trail's log group has the filter, an alarm and a subscriber."""
    trails = trails_delivering(monitoring)
    groups = {log_group_of(t.log_group_arn or "") for t in trails}
    filters = [f for f in monitoring.filters if (f.region, f.log_group) in groups
               and not pattern_has(f.pattern, watch.terms)]
    findings: list[dict[str, Any]] = []
    for f in filters:
        alarms = [a for a in monitoring.alarms if a.region == f.region and any(
            a.metric_name == name and (not a.namespace or not ns or a.namespace == ns)
            for name, ns in f.metrics)]
        for a in alarms:
            topics = {t: monitoring.subscribers.get(t, 0) for t in a.actions
                      if t.split(":")[2:3] == ["sns"]}
            findings.append({"filter": f.name, "log_group": f.log_group, "region": f.region,
                             "pattern": f.pattern, "alarm": a.name,
                             "actions_enabled": a.actions_enabled, "sns_subscribers": topics})
        if not alarms:
            findings.append({"filter": f.name, "log_group": f.log_group, "region": f.region,
                             "pattern": f.pattern, "alarm": None})
    good = [x for x in findings if x["alarm"] and x["actions_enabled"]
            and any((n or 0) > 0 for n in x["sns_subscribers"].values())]
    if good:
        g = good[0]
        title = (f"Metric filter {g['filter']} on {g['log_group']} alarms on {watch.subject} "
                 f"through {g['alarm']} to a subscribed SNS topic")
    elif not trails:
        title = ("No multi-region trail logging every management event delivers to "
                 f"CloudWatch Logs, so {watch.subject} raise no alarm")
    elif not filters:
        title = (f"No metric filter for {watch.subject} on "
                 + ", ".join(sorted(name for _, name in groups)))
    elif not any(x["alarm"] for x in findings):
        title = f"Metric filter {filters[0].name} for {watch.subject} has no alarm"
    else:
        alarmed = next(x for x in findings if x["alarm"])
        title = (f"Alarm {alarmed['alarm']} on {watch.subject} notifies no SNS topic with a "
                 "confirmed subscriber")
    return Result.of(monitoring.root_arn, passing=bool(good), title=title, data={
        "account_id": monitoring.account_id,
        "required_terms": [" ".join(t) for t in watch.terms],
        "trails": [{"trail": t.name, "log_group_arn": t.log_group_arn} for t in trails],
        "matching_filters": findings})


def _watch_check(check_id: str, watch: Watch, severity: Severity = Severity.MEDIUM) -> Check:
    def judge(monitoring: Monitoring) -> Iterator[Result]:
        yield judge_watch(watch, monitoring)

    judge.__name__ = check_id.rsplit(".", 1)[-1]
    judge.__module__ = __name__
    return check(
        id=check_id, severity=severity, resource_type="aws.account", needs=collect_monitoring,
        benchmarks={"cis_aws": [watch.cis]},
        title=f"A CloudWatch metric filter and alarm with an SNS subscriber watch for "
              f"{watch.subject}.",
        remediation=(f"On the CloudWatch Logs group of a multi-region trail, create a metric "
                     f"filter for {watch.subject} (`aws logs put-metric-filter`, pattern "
                     f"as in CIS AWS {watch.cis}), an alarm on its metric (`aws cloudwatch "
                     f"put-metric-alarm --threshold 1 --comparison-operator "
                     f"GreaterThanOrEqualToThreshold --alarm-actions TOPIC_ARN`), and "
                     f"subscribe the people on call to the SNS topic."),
    )(judge)


WATCHES = {
    "unauthorized_api_calls_alarm": Watch("4.1", "unauthorized API calls", (
        ("errorCode", "=", "*UnauthorizedOperation"), ("errorCode", "=", "AccessDenied*"))),
    "console_signin_without_mfa_alarm": Watch("4.2", "console sign-ins without MFA", (
        ("eventName", "=", "ConsoleLogin"), ("additionalEventData.MFAUsed", "!=", "Yes"))),
    "root_usage_alarm": Watch("4.3", "uses of the root user", (
        ("userIdentity.type", "=", "Root"), ("userIdentity.invokedBy", "NOT EXISTS", ""),
        ("eventType", "!=", "AwsServiceEvent"))),
    "iam_policy_changes_alarm": Watch("4.4", "IAM policy changes", _events(
        "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
        "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
        "DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy",
        "DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy")),
    "cloudtrail_changes_alarm": Watch("4.5", "CloudTrail configuration changes", _events(
        "CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")),
    "console_auth_failures_alarm": Watch("4.6", "console authentication failures", (
        ("eventName", "=", "ConsoleLogin"), ("errorMessage", "=", "Failed authentication"))),
    "kms_key_deletion_alarm": Watch("4.7", "disabling or scheduled deletion of KMS keys",
                                    _events("DisableKey", "ScheduleKeyDeletion",
                                            source="kms.amazonaws.com")),
    "s3_bucket_policy_changes_alarm": Watch("4.8", "S3 bucket policy changes", _events(
        "PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle",
        "PutBucketReplication", "DeleteBucketPolicy", "DeleteBucketCors",
        "DeleteBucketLifecycle", "DeleteBucketReplication", source="s3.amazonaws.com")),
    "config_changes_alarm": Watch("4.9", "AWS Config configuration changes", _events(
        "StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
        "PutConfigurationRecorder", source="config.amazonaws.com")),
    "security_group_changes_alarm": Watch("4.10", "security group changes", _events(
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "CreateSecurityGroup",
        "DeleteSecurityGroup")),
    "nacl_changes_alarm": Watch("4.11", "network ACL changes", _events(
        "CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl",
        "DeleteNetworkAclEntry", "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation")),
    "network_gateway_changes_alarm": Watch("4.12", "network gateway changes", _events(
        "CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway",
        "CreateInternetGateway", "DeleteInternetGateway", "DetachInternetGateway")),
    "route_table_changes_alarm": Watch("4.13", "route table changes", _events(
        "CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation",
        "DeleteRouteTable", "DeleteRoute", "DisassociateRouteTable")),
    "vpc_changes_alarm": Watch("4.14", "VPC changes", _events(
        "CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
        "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection", "AttachClassicLinkVpc", "DetachClassicLinkVpc",
        "DisableVpcClassicLink", "EnableVpcClassicLink")),
    "organizations_changes_alarm": Watch("4.15", "AWS Organizations changes", _events(
        "AcceptHandshake", "AttachPolicy", "CancelHandshake", "CreateAccount",
        "CreateOrganization", "CreateOrganizationalUnit", "CreatePolicy", "DeclineHandshake",
        "DeleteOrganization", "DeleteOrganizationalUnit", "DeletePolicy", "EnableAllFeatures",
        "EnablePolicyType", "InviteAccountToOrganization", "LeaveOrganization", "DetachPolicy",
        "DisablePolicyType", "MoveAccount", "RemoveAccountFromOrganization",
        "UpdateOrganizationalUnit", "UpdatePolicy", source="organizations.amazonaws.com")),
}

unauthorized_api_calls_alarm = _watch_check(
    "aws.cloudwatch.unauthorized_api_calls_alarm", WATCHES["unauthorized_api_calls_alarm"])
console_signin_without_mfa_alarm = _watch_check(
    "aws.cloudwatch.console_signin_without_mfa_alarm",
    WATCHES["console_signin_without_mfa_alarm"])
root_usage_alarm = _watch_check(
    "aws.cloudwatch.root_usage_alarm", WATCHES["root_usage_alarm"], Severity.HIGH)
iam_policy_changes_alarm = _watch_check(
    "aws.cloudwatch.iam_policy_changes_alarm", WATCHES["iam_policy_changes_alarm"])
cloudtrail_changes_alarm = _watch_check(
    "aws.cloudwatch.cloudtrail_changes_alarm", WATCHES["cloudtrail_changes_alarm"])
console_auth_failures_alarm = _watch_check(
    "aws.cloudwatch.console_auth_failures_alarm", WATCHES["console_auth_failures_alarm"])
kms_key_deletion_alarm = _watch_check(
    "aws.cloudwatch.kms_key_deletion_alarm", WATCHES["kms_key_deletion_alarm"])
s3_bucket_policy_changes_alarm = _watch_check(
    "aws.cloudwatch.s3_bucket_policy_changes_alarm", WATCHES["s3_bucket_policy_changes_alarm"])
config_changes_alarm = _watch_check(
    "aws.cloudwatch.config_changes_alarm", WATCHES["config_changes_alarm"])
security_group_changes_alarm = _watch_check(
    "aws.cloudwatch.security_group_changes_alarm", WATCHES["security_group_changes_alarm"])
nacl_changes_alarm = _watch_check(
    "aws.cloudwatch.nacl_changes_alarm", WATCHES["nacl_changes_alarm"])
network_gateway_changes_alarm = _watch_check(
    "aws.cloudwatch.network_gateway_changes_alarm", WATCHES["network_gateway_changes_alarm"])
route_table_changes_alarm = _watch_check(
    "aws.cloudwatch.route_table_changes_alarm", WATCHES["route_table_changes_alarm"])
vpc_changes_alarm = _watch_check(
    "aws.cloudwatch.vpc_changes_alarm", WATCHES["vpc_changes_alarm"])
organizations_changes_alarm = _watch_check(
    "aws.cloudwatch.organizations_changes_alarm", WATCHES["organizations_changes_alarm"])

MONITORING_CHECKS = (
    unauthorized_api_calls_alarm, console_signin_without_mfa_alarm, root_usage_alarm,
    iam_policy_changes_alarm, cloudtrail_changes_alarm, console_auth_failures_alarm,
    kms_key_deletion_alarm, s3_bucket_policy_changes_alarm, config_changes_alarm,
    security_group_changes_alarm, nacl_changes_alarm, network_gateway_changes_alarm,
    route_table_changes_alarm, vpc_changes_alarm, organizations_changes_alarm,
)
