"""The hardening-guide collectors through the real PyGithub against the local GitHub server:
Link paging, GitHub's shapes (masked secrets, {"enabled": ...} settings) and what they read."""

from __future__ import annotations

from dataclasses import replace

from connectors.base import Status
from connectors.github import GithubConnector
from connectors.github.kit import seed_estate
from connectors.github.kit.estate import ORG
from tests.connectors.github.conftest import connector


def results_of(estate, check_id):
    [outcome] = connector(estate.credentials(), estate.config()).run_checks(
        [c for c in GithubConnector.checks if c.id == check_id])
    assert outcome.errors == []
    return {r.resource_id: r for r in outcome.results}


def test_the_writable_deploy_key_on_the_second_page_is_found(github, github_api):
    got = results_of(github, "github.repo.deploy_keys_read_only")
    infra = got["github:acme-corp/infra-terraform"]
    assert infra.status is Status.FAILING and "terraform-apply" in infra.title
    assert len(infra.data["deploy_keys"]) == 6
    assert len(github_api.hits(r"/infra-terraform/keys")) == 2  # pages of five
    assert not any("ssh-" in str(r.data) for r in got.values())  # no key material kept
    assert {k: r.status.value for k, r in got.items()} == github.expected[
        "github.repo.deploy_keys_read_only"]


def test_webhooks_are_judged_from_the_masked_secret_and_keep_no_query_string(github,
                                                                           github_api):
    secret = results_of(github, "github.repo.webhooks_have_secret")
    tls = results_of(github, "github.repo.webhooks_use_verified_tls")
    assert secret["github:acme-corp/web-frontend"].status is Status.FAILING
    assert tls["github:acme-corp/payments-service"].status is Status.FAILING  # plain http
    assert tls["github:acme-corp/infra-terraform"].status is Status.FAILING  # insecure_ssl 1
    gateway = secret["github:acme-corp/api-gateway"]
    assert gateway.status is Status.PASSING
    assert gateway.data["webhooks"][0]["url"] == "https://ci.acme.example/hooks/github"
    assert "ci-hook-token" not in str(secret) + str(tls)
    assert not github_api.hits(r"/(hooks|keys)/\d+")  # the listing is read, never each item


def test_branch_protection_settings_are_read_from_the_protection_answer(github):
    got = results_of(github, "github.branch.status_checks_required")
    gateway = got["github:acme-corp/api-gateway"].data
    assert gateway["required_status_checks"] == {"contexts": ["ci/test", "ci/lint"],
                                                 "strict": True}
    assert gateway["required_signatures"] and gateway["required_linear_history"]
    assert got["github:acme-corp/data-pipeline"].data["required_status_checks"] is None


def test_org_settings_and_the_workflow_token_are_read_for_either_verdict(github_api):
    for good in (False, True):
        org = replace(ORG, default_repository_permission="read" if good else "write",
                      members_can_create_public_repositories=not good,
                      default_workflow_permissions="read" if good else "write")
        estate = seed_estate(github_api.base_url, org=org)
        github_api.serve(estate)
        for check_id in ("github.org.base_permission_restricted",
                         "github.org.public_repo_creation_restricted",
                         "github.org.workflow_token_read_only"):
            [result] = results_of(estate, check_id).values()
            assert result.status is (Status.PASSING if good else Status.FAILING), check_id
            assert result.status.value == estate.expected[check_id]["github:acme-corp"]
    assert github_api.hits(r"/orgs/acme-corp/actions/permissions/workflow$")


def test_stale_collaborators_are_proxied_by_their_latest_commit(github, github_api):
    got = results_of(github, "github.repo.stale_outside_collaborators")
    assert got["github:acme-corp/payments-service"].status is Status.PASSING
    infra = got["github:acme-corp/infra-terraform"]
    assert infra.status is Status.FAILING and infra.data["stale"] == ["sre-vendor-4"]
    assert github_api.hits(r"/payments-service/commits\?author=contractor-dana&per_page=1")
    assert {k: r.status.value for k, r in got.items()} == github.expected[
        "github.repo.stale_outside_collaborators"]


def test_a_repository_narrowing_the_workflow_token_to_read_passes(github, github_api):
    got = results_of(github, "github.repo.workflow_token_read_only")
    assert got["github:acme-corp/api-gateway"].status is Status.PASSING
    assert got["github:acme-corp/web-frontend"].status is Status.FAILING  # the org's write
    assert github_api.hits(r"/repos/acme-corp/api-gateway/actions/permissions/workflow$")
    assert {k: r.status.value for k, r in got.items()} == github.expected[
        "github.repo.workflow_token_read_only"]
