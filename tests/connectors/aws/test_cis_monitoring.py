"""The CIS AWS v3.0 monitoring checks (4.1–4.15) as pure functions on plain snapshots."""

from __future__ import annotations

import pytest

from connectors.aws import cloudwatch
from connectors.aws.cloudtrail import TrailSetup
from connectors.aws.cloudwatch import Alarm, MetricFilter, Monitoring, pattern_has
from connectors.base import Status

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def only(results):
    [result] = results
    return result


def trail(name, **settings):
    base = {"home_region": "us-east-1", "is_multi_region": True, "is_logging": True,
            "s3_bucket": "trail-bucket", "log_group_arn": None}
    return TrailSetup(name=name, arn=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{name}",
                      **{**base, **settings})


# --- CloudWatch: the monitoring section's metric filters and alarms -------------------------

GROUP_ARN = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:cloudtrail:*"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
CIS_PATTERNS = {
    "unauthorized_api_calls_alarm": '{ ($.errorCode = "*UnauthorizedOperation") || '
                                    '($.errorCode = "AccessDenied*") && '
                                    '($.sourceIPAddress!="delivery.logs.amazonaws.com") }',
    "root_usage_alarm": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
                        '&& $.eventType != "AwsServiceEvent" }',
    "console_signin_without_mfa_alarm": '{ ($.eventName = "ConsoleLogin") && '
                                        '($.additionalEventData.MFAUsed != "Yes") }',
    "console_auth_failures_alarm": '{ ($.eventName = ConsoleLogin) && '
                                   '($.errorMessage = "Failed authentication") }',
    "kms_key_deletion_alarm": '{($.eventSource = kms.amazonaws.com) && '
                              '(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }',
}


def cis_pattern(key):
    if key in CIS_PATTERNS:
        return CIS_PATTERNS[key]
    terms = cloudwatch.WATCHES[key].terms
    return "{ " + " || ".join(f"($.{f} {op} {v})" for f, op, v in reversed(terms)) + " }"


def monitoring(key, *, trail_settings=None, alarm=True, subscribers=1, pattern=None):
    filters = [MetricFilter(log_group="cloudtrail", region="us-east-1", name="f",
                            pattern=pattern or cis_pattern(key), metrics=[("M", "CIS")])]
    alarms = [Alarm(name="a", region="us-east-1", metric_name="M", namespace="CIS",
                    actions=[TOPIC])] if alarm else []
    return Monitoring(account_id=ACCOUNT, root_arn=ROOT,
                      trails=[trail("main", log_group_arn=GROUP_ARN, **(trail_settings or {}))],
                      filters=filters, alarms=alarms, subscribers={TOPIC: subscribers})


WATCH_CHECKS = {chk.id.rsplit(".", 1)[-1]: chk for chk in cloudwatch.MONITORING_CHECKS}


def test_there_is_one_monitoring_check_per_recommendation_4_1_to_4_15():
    assert sorted((c.benchmarks["cis_aws"][0] for c in cloudwatch.MONITORING_CHECKS),
                  key=lambda n: int(n.split(".")[1])) == [f"4.{n}" for n in range(1, 16)]
    assert set(WATCH_CHECKS) == set(cloudwatch.WATCHES)


@pytest.mark.parametrize("key", sorted(cloudwatch.WATCHES))
def test_each_monitoring_check_passes_with_the_benchmark_filter_alarm_and_subscriber(key):
    result = only(WATCH_CHECKS[key].judge(monitoring(key)))
    assert (result.resource_id, result.status) == (ROOT, Status.PASSING), result.title


@pytest.mark.parametrize("key", sorted(cloudwatch.WATCHES))
def test_each_monitoring_check_fails_when_its_filter_misses_a_term(key):
    terms = cloudwatch.WATCHES[key].terms
    pattern = cis_pattern(key)
    name, _, value = terms[-1]
    broken = pattern.replace(value, "Nothing") if value else pattern.replace("NOT EXISTS", "")
    assert pattern_has(broken, terms), broken
    result = only(WATCH_CHECKS[key].judge(monitoring(key, pattern=broken)))
    assert result.status is Status.FAILING and "No metric filter" in result.title


def test_a_monitoring_check_names_each_missing_link():
    key = "unauthorized_api_calls_alarm"
    chk = WATCH_CHECKS[key]
    no_alarm = only(chk.judge(monitoring(key, alarm=False)))
    nobody = only(chk.judge(monitoring(key, subscribers=0)))
    unreadable = only(chk.judge(monitoring(key, subscribers=None)))  # another account's topic
    single_region = only(chk.judge(monitoring(key, trail_settings={"is_multi_region": False})))
    writes_only = only(chk.judge(monitoring(key, trail_settings={"event_selectors": [
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]})))
    assert no_alarm.status is Status.FAILING and "has no alarm" in no_alarm.title
    for result in (nobody, unreadable):
        assert result.status is Status.FAILING and "no SNS topic" in result.title
    for result in (single_region, writes_only):
        assert result.status is Status.FAILING and "No multi-region trail" in result.title


def test_event_names_match_exactly_so_create_route_table_is_not_create_route():
    terms = (("eventName", "=", "CreateRoute"),)
    assert pattern_has("{ ($.eventName = CreateRouteTable) }", terms) == list(terms)
    assert pattern_has('{ ($.eventName = "CreateRoute") }', terms) == []
    assert pattern_has("{ ($.eventName != CreateRoute) }", terms) == list(terms)
