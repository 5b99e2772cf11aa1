"""The GitHub connector through the real PyGithub against the local GitHub server over HTTP."""

from __future__ import annotations

import json

import pytest

from connectors.base import InvalidFields, Status
from connectors.github import GithubConnector
from connectors.github.kit import ORGANIZATION, TOKEN, seed_estate
from tests.connectors.github.conftest import connector


def verdicts(outcomes):
    return {o.check.id: {r.resource_id: r.status.value for r in o.results} for o in outcomes}


def test_sync_of_the_emulated_estate_reaches_every_expected_verdict(github, github_api):
    assert len(github.repos) >= 12

    outcomes = list(connector(github.credentials(), github.config()).run_checks())

    assert [o.errors for o in outcomes] == [[] for _ in outcomes]
    assert not any(o.crashed for o in outcomes)
    got = verdicts(outcomes)
    assert sorted(got) == sorted(github.expected)
    for check_id, expected in github.expected.items():
        assert got[check_id] == expected, check_id
    assert {s for per_check in got.values() for s in per_check.values()} == {
        "passing", "failing", "not_applicable"}
    for outcome in outcomes:
        for result in outcome.results:
            json.dumps(result.data)
            assert result.title


def test_lists_are_paged_through_link_headers_and_each_repository_is_read_once(github,
                                                                               github_api):
    list(connector(github.credentials(), github.config()).run_checks())

    # 14 repositories in pages of five; infra-terraform's 7 collaborators in two pages
    assert len(github_api.hits(r"/orgs/acme-corp/repos")) == 3
    assert len(github_api.hits(r"/orgs/acme-corp/repos\?.*page=3")) == 1
    assert len(github_api.hits(r"/infra-terraform/collaborators")) == 2
    assert len(github_api.hits(r"/orgs/acme-corp$")) == 1
    # full repository reads: every repository but the archived one, once each
    assert len(github_api.hits(r"^GET /api/v3/repos/acme-corp/[^/?]+$")) == len(github.repos) - 1
    assert not github_api.hits(r"legacy-monolith/")  # archived: nothing beyond the listing


def test_the_outside_admin_on_the_second_page_is_found(github):
    outcomes = {o.check.id: o for o in connector(github.credentials()).run_checks()}
    result = next(r for r in outcomes["github.repo.outside_collaborator_admins"].results
                  if r.resource_id == "github:acme-corp/infra-terraform")
    assert result.status is Status.FAILING
    assert result.data["outside_admins"] == ["sre-vendor-7"]
    assert len(result.data["outside_collaborators"]) == 7


def test_without_an_allowlist_every_public_repository_fails(github_api):
    estate = seed_estate(github_api.base_url, allowed_public_repos=())
    github_api.serve(estate)
    [outcome] = connector(estate.credentials()).run_checks(
        [c for c in GithubConnector.checks if c.id == "github.repo.public_visibility_allowed"])
    got = {r.resource_id: r.status.value for r in outcome.results}
    assert got == estate.expected["github.repo.public_visibility_allowed"]
    assert got["github:acme-corp/docs-site"] == got["github:acme-corp/sdk-python"] == "failing"


def test_verify_names_the_organization_its_plan_and_repository_count(github):
    assert connector(github.credentials()).verify() == {
        "organization": ORGANIZATION, "plan": "enterprise", "repositories": len(github.repos)}


def test_github_connector_declares_its_catalog_metadata():
    assert (GithubConnector.id, GithubConnector.name, GithubConnector.category,
            GithubConnector.auth_type, GithubConnector.icon) == (
        "github", "GitHub", "devops", "oauth2", "github")
    assert [p.name for p in GithubConnector.config_params] == ["allowed_public_repos"]


@pytest.mark.parametrize("raw, field", [
    ({"organization": ORGANIZATION}, "token"),
    ({"token": TOKEN}, "organization"),
    ({"token": TOKEN, "organization": "not an org!"}, "organization"),
    ({"token": TOKEN, "organization": ORGANIZATION, "base_url": "ftp://ghe"}, "base_url"),
    ({"token": TOKEN + " x", "organization": ORGANIZATION}, "token"),
    ({"token": TOKEN, "organization": ORGANIZATION, "region": "eu"}, "region"),
    # what the OAuth callback stores, and what it must not be mixed with
    ({"access_token": TOKEN, "token": TOKEN, "organization": ORGANIZATION}, "token"),
    ({"token": TOKEN, "refresh_token": TOKEN, "organization": ORGANIZATION}, "token"),
    ({"token": TOKEN, "expires_at": 1, "organization": ORGANIZATION}, "token"),
    ({"access_token": "gho_short", "organization": ORGANIZATION}, "access_token"),
    ({"access_token": TOKEN + "\n", "organization": ORGANIZATION}, "access_token"),
    ({"access_token": TOKEN, "token_type": "mac", "organization": ORGANIZATION}, "token_type"),
    ({"access_token": TOKEN, "expires_at": -5, "organization": ORGANIZATION}, "expires_at"),
    ({"access_token": TOKEN, "scope": "repo;drop", "organization": ORGANIZATION}, "scope"),
    ({"access_token": TOKEN, "refresh_token_expires_in": 15897600,
      "organization": ORGANIZATION}, "refresh_token_expires_in"),
    ({"access_token": TOKEN, "token_type": "bearer"}, "organization"),
])
def test_invalid_credentials_name_the_field_and_never_echo_the_token(raw, field):
    with pytest.raises(InvalidFields) as refused:
        GithubConnector.parse_credentials(raw)
    assert field in [f["field"] for f in refused.value.details["fields"]]
    assert TOKEN not in str(refused.value) + json.dumps(refused.value.details)


def test_credentials_dump_reveals_the_token_only_for_the_vault():
    parsed = GithubConnector.parse_credentials(
        {"token": TOKEN, "organization": ORGANIZATION, "base_url": "https://ghe.example/api/v3/"})
    assert TOKEN not in repr(parsed) and TOKEN not in str(parsed)
    assert GithubConnector.dump_credentials(parsed) == {
        "token": TOKEN, "organization": ORGANIZATION, "base_url": "https://ghe.example/api/v3"}


def test_the_oauth_token_answer_with_the_organization_is_accepted_and_stored_as_given():
    answer = {"access_token": TOKEN, "token_type": "bearer", "scope": "admin:org,repo",
              "organization": ORGANIZATION}
    parsed = GithubConnector.parse_credentials(answer)
    assert parsed.secret == TOKEN and TOKEN not in repr(parsed)
    assert GithubConnector.dump_credentials(parsed) == answer
    expiring = {**answer, "scope": "", "refresh_token": "ghr_" + "r" * 76,
                "expires_at": 1_900_000_000}
    assert GithubConnector.dump_credentials(GithubConnector.parse_credentials(expiring)) == (
        expiring)
