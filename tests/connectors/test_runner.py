"""The collect/judge runner (connectors.runner) as a connector sees it: configuration reaches a
collector one way, validated; a collector or check that fails errors only what depends on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from connectors.base import (
    AuthType,
    Category,
    CheckOutcome,
    Connector,
    InvalidFields,
    Result,
    Severity,
    Status,
    check,
    collector,
)


class Limits(BaseModel):
    longest: int = Field(5, ge=1)


class Token(BaseModel):
    token: str


SEEN: list[Any] = []


@collector()
def collect_names(session: list[str]) -> list[str]:
    return list(session)


@collector()
def collect_longest(session: list[str], *, config: Limits) -> int:
    SEEN.append(config)
    return config.longest


@check(id="demo.name.short", severity=Severity.LOW, resource_type="demo.name",
       remediation="Shorten it.", needs=(collect_names, collect_longest))
def names_short(names: list[str], longest: int) -> Iterator[Result]:
    """Names are short."""
    for name in names:
        yield Result.of(name, passing=len(name) <= longest, title=name)


@check(id="demo.name.known", severity=Severity.LOW, resource_type="demo.name",
       remediation="Name it.", needs=collect_names)
def names_known(names: list[str]) -> Iterator[Result]:
    """Names are not empty."""
    for name in names:
        yield Result.of(name, passing=bool(name), title=name)


class Demo(Connector):
    id = "demo"
    name = "Demo"
    category = Category.DEVOPS
    auth_type = AuthType.API_KEY
    icon = "demo"
    credentials_model = Token
    config_model = Limits
    checks = (names_short, names_known)

    def session(self) -> list[str]:
        return ["ada", "grace", "margaret"]


def outcomes(config: dict[str, Any]) -> dict[str, CheckOutcome]:
    SEEN.clear()
    connector = Demo(Token(token="t"), config)
    return {o.check.id: o for o in connector.run_checks()}


def test_a_collector_declaring_config_gets_the_validated_model_instance():
    got = outcomes({"longest": "6"})

    assert SEEN == [Limits(longest=6)]
    assert {r.resource_id: r.status for r in got["demo.name.short"].results} == {
        "ada": Status.PASSING, "grace": Status.PASSING, "margaret": Status.FAILING}


def test_defaults_apply_when_the_connection_sets_nothing():
    outcomes({})
    assert SEEN == [Limits()]


def test_a_stored_config_that_no_longer_validates_errors_only_the_checks_that_read_it():
    got = outcomes({"longest": 0})

    short = got["demo.name.short"]
    assert [r.status for r in short.results] == [Status.ERROR]
    assert "demo connection config is invalid: longest" in short.errors[0]
    assert [r.status for r in got["demo.name.known"].results] == [Status.PASSING] * 3
    assert got["demo.name.known"].errors == []


def test_the_connector_names_the_failing_field_with_a_stable_code():
    with pytest.raises(InvalidFields) as refused:
        Demo(Token(token="t"), {"longest": 0}).validated_config()
    assert refused.value.code == "invalid_config"
    assert [f["field"] for f in refused.value.details["fields"]] == ["longest"]
