"""The AWS connector through the real boto3 against moto's server over HTTP."""

from __future__ import annotations

import json
from contextlib import contextmanager

import boto3
import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError

from connectors.aws import AwsConnector
from connectors.aws.kit import ACCESS_KEY_ID, SECRET_ACCESS_KEY, seed_estate
from connectors.aws.session import ServiceNotServed, translate_client_error, translate_errors
from connectors.base import (
    AuthFailed,
    ConnectorError,
    InvalidFields,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
    Status,
    load_connectors,
)

REGIONS = ["us-east-1", "eu-west-1"]


def connect(raw):
    return AwsConnector(AwsConnector.parse_credentials(raw), {})


def verdicts(outcomes):
    return {o.check.id: {r.resource_id: r.status.value for r in o.results} for o in outcomes}


# --- (a) a sync of the seeded estate --------------------------------------------------------

def test_sync_of_seeded_estate_reaches_every_expected_verdict(aws_endpoint):
    estate = seed_estate(aws_endpoint)
    assert estate.resources >= 40

    outcomes = list(connect(estate.credentials()).run_checks())

    assert [o.errors for o in outcomes] == [[] for _ in outcomes]
    assert not any(o.crashed for o in outcomes)
    got = verdicts(outcomes)
    assert sorted(got) == sorted(estate.expected)
    for check_id, expected in estate.expected.items():
        assert got[check_id] == expected, check_id
    # each status appears, and every piece of evidence is plain JSON with a title
    assert {s for per_check in got.values() for s in per_check.values()} == {
        "passing", "failing", "not_applicable", "error"}
    # the one error: moto has no IAM Access Analyzer, and each region's result says so
    assert {check_id for check_id, per in got.items() if "error" in per.values()} == {
        "aws.accessanalyzer.enabled"}
    [analyzer] = [o for o in outcomes if o.check.id == "aws.accessanalyzer.enabled"]
    assert all("does not serve AWS accessanalyzer ListAnalyzers" in r.title
               for r in analyzer.results)
    for outcome in outcomes:
        for result in outcome.results:
            json.dumps(result.data)
            assert result.title


def evidence(outcomes):
    return {(o.check.id, r.resource_id): (r.status.value, r.title, json.dumps(r.data,
                                                                             sort_keys=True))
            for o in outcomes for r in o.results}


def test_every_enabled_region_is_read_with_its_own_clients(aws_endpoint):
    estate = seed_estate(aws_endpoint, regions=("us-east-1", "eu-west-1", "ap-southeast-2"))

    outcomes = list(connect(estate.credentials()).run_checks())

    assert [o.errors for o in outcomes] == [[] for _ in outcomes]
    got = verdicts(outcomes)
    for check_id, expected in estate.expected.items():
        assert got[check_id] == expected, check_id
    # the third region has no detector, no recorder and an unlogged default VPC
    third = f"aws:account:{estate.account_id}:region:ap-southeast-2"
    assert got["aws.guardduty.enabled"][third] == "failing"
    assert got["aws.config.recorder_enabled"][third] == "failing"
    assert any(":ap-southeast-2:" in arn and status == "failing"
               for arn, status in got["aws.ec2.vpc_flow_logs"].items())


def test_reads_fanned_out_in_parallel_give_the_evidence_of_reads_one_at_a_time(aws_endpoint):
    estate = seed_estate(aws_endpoint)
    sequential = connect(estate.credentials())
    sequential.max_parallel = 1
    parallel = connect(estate.credentials())
    assert parallel.max_parallel > 1

    one_at_a_time = evidence(sequential.run_checks())
    fanned_out = evidence(parallel.run_checks())

    assert fanned_out == one_at_a_time  # so a re-sync of an unchanged estate changes nothing
    assert len(fanned_out) == sum(len(v) for v in estate.expected.values())


def test_aws_connector_is_registered_under_its_entry_point():
    assert load_connectors()["aws"] is AwsConnector


# --- (b) verify -----------------------------------------------------------------------------

def test_verify_names_the_account_by_alias_with_the_configured_regions(aws_endpoint):
    boto3.client("iam", endpoint_url=aws_endpoint, region_name="us-east-1",
                 aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                 ).create_account_alias(AccountAlias="acme-prod")
    assert connect({"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
                    "regions": REGIONS, "endpoint_url": aws_endpoint}).verify() == {
        "accountId": "123456789012", "accountAlias": "acme-prod", "regions": REGIONS}


def test_verify_without_regions_lists_the_enabled_regions_and_falls_back_to_the_id(aws_endpoint):
    metadata = connect({"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
                        "endpoint_url": aws_endpoint}).verify()
    assert metadata["accountAlias"] == metadata["accountId"] == "123456789012"
    assert {"us-east-1", "eu-west-1"} <= set(metadata["regions"])
    assert "ap-east-1" not in metadata["regions"]  # an opt-in region the account has not enabled
    assert metadata["regions"] == sorted(metadata["regions"])


# --- (c) missing permissions, refused credentials, error translation ------------------------

@contextmanager
def iam_enforced(endpoint):
    """Make moto's server check signatures and IAM policies, as AWS does, within the block."""
    previous = requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0",
                             timeout=10).json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        yield
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=previous.encode(), timeout=10)


def create_auditor(endpoint, denied_actions):
    """An IAM user allowed everything except denied_actions; returns its access key."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
    iam.create_user(UserName="auditor")
    statements = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    if denied_actions:
        statements.append({"Effect": "Deny", "Action": denied_actions, "Resource": "*"})
    iam.put_user_policy(UserName="auditor", PolicyName="audit", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    return iam.create_access_key(UserName="auditor")["AccessKey"]


def test_denied_api_becomes_error_results_naming_the_permission_and_others_stand(aws_endpoint):
    estate = seed_estate(aws_endpoint)
    key = create_auditor(aws_endpoint, ["rds:DescribeDBInstances", "s3:GetBucketVersioning"])
    connector = connect({**estate.credentials(), "access_key_id": key["AccessKeyId"],
                         "secret_access_key": key["SecretAccessKey"]})

    with iam_enforced(aws_endpoint):
        outcomes = {o.check.id: o for o in connector.run_checks()}

    # the denied regional collector: one error result per region, and run errors naming it,
    # in every check that judges what it reads
    rds_checks = {c.id for c in AwsConnector.checks if c.id.startswith("aws.rds.")}
    assert len(rds_checks) == 4
    for check_id in rds_checks:
        db = outcomes[check_id]
        assert {r.resource_id: r.status for r in db.results} == {
            "scope:us-east-1": Status.ERROR, "scope:eu-west-1": Status.ERROR}
        assert all("missing permission rds:DescribeDBInstances" in r.title for r in db.results)
        assert len(db.errors) == 2 and all("rds:DescribeDBInstances" in e for e in db.errors)
    # a setting denied on buckets: that check errors per bucket, the other bucket checks stand
    versioning = outcomes["aws.s3.bucket_versioning"]
    assert {r.status for r in versioning.results} == {Status.ERROR}
    assert len(versioning.results) == len(estate.expected["aws.s3.bucket_versioning"])
    assert all("missing permission s3:GetBucketVersioning" in r.title
               for r in versioning.results)
    # everything else is judged as if nothing were denied (the auditor is one more user, with
    # no console password and one fresh access key in use)
    expected = {**estate.expected}
    auditor = f"arn:aws:iam::{estate.account_id}:user/auditor"
    for check_id, verdict in (("aws.iam.console_users_mfa", "passing"),
                              ("aws.iam.access_key_rotation", "passing"),
                              ("aws.iam.unused_credentials", "passing"),
                              ("aws.iam.single_active_access_key", "passing"),
                              ("aws.iam.no_initial_access_keys", "passing"),
                              ("aws.iam.console_password_unused_45_days", "passing"),
                              ("aws.iam.access_keys_unused_45_days", "passing"),
                              # its own inline policy, not a group's
                              ("aws.iam.user_permissions_via_groups", "failing")):
        expected[check_id] = {**expected[check_id], auditor: verdict}
    got = verdicts(outcomes.values())
    # moto 5.2's server rejects the SigV4 signature of every GuardDuty, Lambda, Security Hub,
    # EFS and Macie call once auth is on, so those checks are judged in the other tests only.
    unjudgeable = {"aws.guardduty.enabled", "aws.lambda.function_url_auth",
                   "aws.securityhub.enabled", "aws.efs.encryption_at_rest", "aws.macie.enabled"}
    for error in [e for c in ("aws.securityhub.enabled", "aws.efs.encryption_at_rest",
                              "aws.macie.enabled") for e in outcomes[c].errors]:
        assert "SignatureDoesNotMatch" in error or "signature" in error.lower(), error
    # MFA delete is read from the bucket's versioning, which is denied
    denied = {"aws.s3.bucket_versioning", "aws.s3.bucket_mfa_delete"}
    assert {r.status for r in outcomes["aws.s3.bucket_mfa_delete"].results} == {Status.ERROR}
    for check_id in set(expected) - rds_checks - unjudgeable - denied:
        assert got[check_id] == expected[check_id], check_id
        assert outcomes[check_id].errors == []


def test_the_account_public_access_block_is_read_through_s3_control(aws_endpoint):
    # (moto's S3 Control enforces no IAM policy, so a denied read is tested on plain data)
    estate = seed_estate(aws_endpoint)
    wanted = {c.id: c for c in AwsConnector.checks}
    [outcome] = connect(estate.credentials()).run_checks(
        [wanted["aws.s3.account_public_access_block"]])
    [result] = outcome.results
    assert result.data["public_access_block"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False}
    assert "BlockPublicPolicy, RestrictPublicBuckets off" in result.title


def test_a_wrong_secret_is_refused_with_auth_failed_that_never_shows_it(aws_endpoint):
    key = create_auditor(aws_endpoint, [])
    wrong_secret = "not-the-secret-" + key["SecretAccessKey"][:12]
    connector = connect({"access_key_id": key["AccessKeyId"], "secret_access_key": wrong_secret,
                         "regions": REGIONS, "endpoint_url": aws_endpoint})

    with iam_enforced(aws_endpoint):
        with pytest.raises(AuthFailed) as verified:
            connector.verify()
        with pytest.raises(AuthFailed):
            list(connector.run_checks())

    assert "secret_access_key" in verified.value.message
    for text in (str(verified.value), repr(verified.value.details)):
        assert wrong_secret not in text and key["SecretAccessKey"] not in text


def test_an_unknown_access_key_is_refused_with_auth_failed(aws_endpoint):
    connector = connect({"access_key_id": "AKIAUNKNOWNKEY000000", "regions": REGIONS,
                         "secret_access_key": SECRET_ACCESS_KEY, "endpoint_url": aws_endpoint})
    with iam_enforced(aws_endpoint), pytest.raises(AuthFailed) as refused:
        connector.verify()
    assert refused.value.message == ("AWS rejected the access key: check access_key_id and "
                                      "secret_access_key")


def client_error(code, operation, status=400):
    return ClientError({"Error": {"Code": code, "Message": "AWS says no"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize(("code", "service", "operation", "status", "kind", "words"), [
    ("InvalidClientTokenId", "sts", "GetCallerIdentity", 403, AuthFailed, "access key"),
    ("UnrecognizedClientException", "iam", "ListUsers", 400, AuthFailed, "access key"),
    ("SignatureDoesNotMatch", "s3", "ListBuckets", 403, AuthFailed, "secret_access_key"),
    ("ExpiredToken", "sts", "GetCallerIdentity", 403, AuthFailed, "session token has expired"),
    ("AccessDenied", "s3", "GetBucketEncryption", 403, PermissionMissing,
     "missing permission s3:GetEncryptionConfiguration"),
    ("AccessDeniedException", "cloudtrail", "DescribeTrails", 400, PermissionMissing,
     "missing permission cloudtrail:DescribeTrails"),
    ("UnauthorizedOperation", "ec2", "DescribeSecurityGroups", 403, PermissionMissing,
     "missing permission ec2:DescribeSecurityGroups"),
    ("AccessDenied", "elbv2", "DescribeListeners", 403, PermissionMissing,
     "missing permission elasticloadbalancing:DescribeListeners"),
    ("Throttling", "iam", "ListUsers", 400, RateLimited, "throttled iam:ListUsers"),
    ("RequestLimitExceeded", "ec2", "DescribeRegions", 503, RateLimited, "throttled"),
    ("InternalError", "s3", "ListBuckets", 500, ProviderUnavailable, "unavailable"),
    ("Whatever", "rds", "DescribeDBInstances", 502, ProviderUnavailable, "unavailable"),
    ("UnknownOperationException", "accessanalyzer", "ListAnalyzers", 400, ServiceNotServed,
     "does not serve access-analyzer:ListAnalyzers"),
])
def test_aws_error_codes_become_typed_connector_errors(code, service, operation, status, kind,
                                                       words):
    error = translate_client_error(client_error(code, operation, status), service)
    assert type(error) is kind
    assert words in error.message
    assert error.details["aws_code"] == code


def test_an_unknown_aws_error_is_a_plain_connector_error_and_not_retried():
    error = translate_client_error(client_error("InvalidParameterValue", "ListUsers"), "iam")
    assert type(error) is ConnectorError and not error.retryable
    assert "iam:ListUsers failed: InvalidParameterValue" in error.message


def test_an_unreachable_endpoint_is_provider_unavailable():
    with pytest.raises(ProviderUnavailable) as unavailable:
        with translate_errors("s3"):
            raise EndpointConnectionError(endpoint_url="https://s3.example.invalid")
    assert unavailable.value.retryable


# --- (d) credentials validation -------------------------------------------------------------

def rejected_fields(raw):
    with pytest.raises(InvalidFields) as invalid:
        AwsConnector.parse_credentials(raw)
    error = invalid.value
    for secret in (raw.get("secret_access_key"), raw.get("session_token")):
        if secret:
            assert secret not in str(error)
            assert secret not in json.dumps(error.details)
    return {f["field"] for f in error.details["fields"]}


def test_malformed_access_key_id_is_rejected_without_echoing_the_secret():
    assert rejected_fields({"access_key_id": "akia-not-a-key-id",
                            "secret_access_key": SECRET_ACCESS_KEY}) == {"access_key_id"}


def test_missing_secret_is_rejected():
    assert rejected_fields({"access_key_id": ACCESS_KEY_ID}) == {"secret_access_key"}


def test_too_short_secret_is_rejected_without_echoing_it():
    assert rejected_fields({"access_key_id": ACCESS_KEY_ID,
                            "secret_access_key": "short-secret-xyz"}) == {"secret_access_key"}


def test_temporary_key_without_session_token_is_rejected():
    assert rejected_fields({"access_key_id": "ASIAIOSFODNN7EXAMPLE",
                            "secret_access_key": SECRET_ACCESS_KEY}) == {"session_token"}


def test_bad_regions_endpoint_and_unknown_fields_are_rejected_by_name():
    fields = rejected_fields({"access_key_id": ACCESS_KEY_ID,
                              "secret_access_key": SECRET_ACCESS_KEY,
                              "regions": ["us-east-1", "Mars"], "endpoint_url": "ftp://x",
                              "profile": "default"})
    assert fields == {"regions.1", "endpoint_url", "profile"}


def test_valid_credentials_parse_and_never_print_the_secret():
    credentials = AwsConnector.parse_credentials({
        "access_key_id": "ASIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET_ACCESS_KEY,
        "session_token": "FwoGZXIvYXdzEXAMPLETOKEN", "regions": ["eu-west-1", "eu-west-1"],
        "endpoint_url": "http://127.0.0.1:5000/"})
    assert credentials.regions == ["eu-west-1"]
    assert credentials.endpoint_url == "http://127.0.0.1:5000"
    for text in (str(credentials), repr(credentials)):
        assert SECRET_ACCESS_KEY not in text and "EXAMPLETOKEN" not in text


def test_only_an_operation_the_emulator_lacks_is_not_served(aws_endpoint):
    session = connect({"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
                       "regions": REGIONS, "endpoint_url": aws_endpoint}).session()
    with pytest.raises(ServiceNotServed, match="accessanalyzer ListAnalyzers"):
        with session.service("accessanalyzer") as client:
            client.list_analyzers()
    # a missing resource is still the provider's own answer, whatever its shape
    with pytest.raises(ConnectorError) as missing:
        with session.service("s3") as client:
            client.head_bucket(Bucket="acme-no-such-bucket")
    assert type(missing.value) is ConnectorError and missing.value.details["aws_code"] == "404"
    with pytest.raises(ConnectorError) as contact:
        with session.service("account") as client:
            client.get_alternate_contact(AlternateContactType="SECURITY")
    assert contact.value.details["aws_code"] == "ResourceNotFoundException"
