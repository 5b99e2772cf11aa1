"""AWS Lambda: no function URL lets anyone on the internet invoke a function unauthenticated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from connectors.aws.session import AwsSession, error_code
from connectors.base import Result, Severity, check, collector

PUBLIC_AUTH_TYPE = "NONE"


@dataclass(frozen=True)
class Function:
    """One Lambda function and the function URLs of it and its aliases."""

    name: str
    arn: str
    region: str
    runtime: str | None
    urls: list[dict[str, Any]] = field(default_factory=list)


@collector(scoped=True)
def collect_functions(session: AwsSession, region: str) -> list[Function]:
    """Every Lambda function in the region with its function URLs."""
    with session.service("lambda", region) as client:
        listed = [f for page in client.get_paginator("list_functions").paginate()
                  for f in page["Functions"]]
    functions = session.fan_out(lambda f: _read_function(session, region, f), listed)
    return sorted(functions, key=lambda f: f.arn)


def _read_function(session: AwsSession, region: str, function: dict[str, Any]) -> Function:
    """The function's URL configs: the unqualified one and each alias's."""
    name = function["FunctionName"]
    with session.service("lambda", region) as client:
        aliases = [a["Name"] for page in client.get_paginator("list_aliases").paginate(
            FunctionName=name) for a in page["Aliases"]]
        urls: dict[str, dict[str, Any]] = {}
        for qualifier in (None, *aliases):
            config = _url_config(client, name, qualifier)
            if config is not None:
                urls.setdefault(config["FunctionUrl"], {
                    "FunctionUrl": config["FunctionUrl"], "AuthType": config.get("AuthType"),
                    "qualifier": qualifier, "Cors": config.get("Cors")})
    return Function(name=name, arn=function["FunctionArn"], region=region,
                    runtime=function.get("Runtime"),
                    urls=sorted(urls.values(), key=lambda u: str(u["FunctionUrl"])))


def _url_config(client: Any, name: str, qualifier: str | None) -> dict[str, Any] | None:
    try:
        if qualifier is None:
            return dict(client.get_function_url_config(FunctionName=name))
        return dict(client.get_function_url_config(FunctionName=name, Qualifier=qualifier))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


@check(id="aws.lambda.function_url_auth", severity=Severity.HIGH,
       resource_type="aws.lambda.function", needs=collect_functions,
       remediation="Require IAM authentication on the function URL (`aws lambda "
                   "update-function-url-config --function-name NAME --auth-type AWS_IAM`), or "
                   "delete it and put the function behind API Gateway with an authorizer.")
def function_url_auth(functions: list[Function]) -> Iterator[Result]:
    """Lambda function URLs require IAM authentication (no public AuthType NONE URLs)."""
    for f in functions:
        public = [u for u in f.urls if u.get("AuthType") == PUBLIC_AUTH_TYPE]
        label = f"Lambda function {f.name} ({f.region})"
        if public:
            title = f"{label} has a public function URL (AuthType NONE): {public[0]['FunctionUrl']}"
        elif f.urls:
            title = f"{label} requires IAM authentication on its function URL"
        else:
            title = f"{label} has no function URL"
        yield Result.of(f.arn, passing=not public, title=title,
                        data={"function": f.name, "region": f.region, "runtime": f.runtime,
                              "function_urls": f.urls})
