"""The hardening-guide checks (issue #13) as pure functions on plain snapshots: a passing and a
failing resource each, and the configuration each judged in its result data."""

from __future__ import annotations

import pytest

from connectors.base import Status
from connectors.github import GithubConnector
from connectors.github.actions import (
    RepoWorkflowPermissions,
    WorkflowPermissions,
    repo_workflow_token_read_only,
    workflow_token_read_only,
)
from connectors.github.branches import (
    REVIEWS_REQUIRED,
    DefaultBranch,
    Protection,
    approving_review_required,
    conversation_resolution_required,
    linear_history_required,
    protection_of,
    reviews_required,
    signed_commits_required,
    stale_reviews_dismissed,
    status_checks_required,
)
from connectors.github.collaborators import (
    Activity,
    CollaboratorActivity,
    stale_outside_collaborators,
)
from connectors.github.deploy_keys import DeployKey, deploy_keys_read_only
from connectors.github.org import (
    Organization,
    base_permission_restricted,
    public_repo_creation_restricted,
)
from connectors.github.repos import RepoItems, Repository, secret_scanning_push_protection_enabled
from connectors.github.webhooks import Webhook, webhooks_have_secret, webhooks_use_verified_tls

SETTINGS_CHECKS = {
    approving_review_required, stale_reviews_dismissed, status_checks_required,
    signed_commits_required, linear_history_required, conversation_resolution_required,
    secret_scanning_push_protection_enabled, workflow_token_read_only,
    repo_workflow_token_read_only,
    base_permission_restricted, public_repo_creation_restricted, deploy_keys_read_only,
    webhooks_have_secret, webhooks_use_verified_tls, stale_outside_collaborators,
}
P, F, E, NA = Status.PASSING, Status.FAILING, Status.ERROR, Status.NOT_APPLICABLE


def repo(name: str, *, archived: bool = False, security: dict[str, str] | None = None,
         read_error: str | None = None) -> Repository:
    return Repository(full_name=f"acme/{name}", name=name, visibility="private",
                      archived=archived, fork=False, default_branch="main",
                      security_and_analysis=security, read_error=read_error)


def verdicts(results) -> dict[str, Status]:
    return {r.resource_id: r.status for r in results}


def branch(name: str, protection: Protection | None, **kwargs) -> DefaultBranch:
    return DefaultBranch(repo(name, archived=kwargs.get("archived", False)), "main", protection,
                         kwargs.get("error"))


NONE = Protection(0, False, False, False)
ALL = Protection(2, True, False, True, status_checks=("ci/test",), strict_status_checks=True,
                 required_signatures=True, required_linear_history=True,
                 required_conversation_resolution=True)


@pytest.mark.parametrize("chk", [approving_review_required, stale_reviews_dismissed,
                                 status_checks_required, signed_commits_required,
                                 linear_history_required, conversation_resolution_required])
def test_each_protection_property_passes_when_set_and_fails_when_off_or_unprotected(chk):
    branches = [branch("on", ALL), branch("off", NONE), branch("bare", None),
                branch("old", None, archived=True), branch("denied", None, error="403")]
    results = chk.judge(branches)
    assert verdicts(results) == {"github:acme/on": P, "github:acme/off": F, "github:acme/bare": F,
                                 "github:acme/old": NA, "github:acme/denied": E}
    on = results[0].data
    assert on["required_status_checks"] == {"contexts": ["ci/test"], "strict": True}
    assert on["required_signatures"] is on["required_linear_history"] is True


def test_the_review_split_judges_one_property_each_and_the_alias_keeps_the_old_verdict():
    approvals_only = branch("approvals", Protection(1, False, False, False))
    stale_only = branch("stale", Protection(0, True, False, False))
    got = {chk.id: verdicts(chk.judge([approvals_only, stale_only, branch("both", ALL)]))
           for chk in (approving_review_required, stale_reviews_dismissed, reviews_required)}
    assert got == {
        "github.branch.approving_review_required": {
            "github:acme/approvals": P, "github:acme/stale": F, "github:acme/both": P},
        # dismissal means nothing without required approvals
        "github.branch.stale_reviews_dismissed": {
            "github:acme/approvals": F, "github:acme/stale": F, "github:acme/both": P},
        REVIEWS_REQUIRED: {"github:acme/approvals": F, "github:acme/stale": F,
                           "github:acme/both": P}}
    assert approving_review_required.replaces == stale_reviews_dismissed.replaces == (
        REVIEWS_REQUIRED,)
    assert REVIEWS_REQUIRED in {c.id for c in GithubConnector.checks}  # alias, one release


def test_protection_is_read_from_githubs_answer_with_off_settings_absent_or_disabled():
    raw = {"required_status_checks": {"strict": False, "contexts": ["ci"],
                                      "checks": [{"context": "ci"}, {"context": "lint"}]},
           "required_signatures": {"enabled": True}, "enforce_admins": {"enabled": False},
           "required_linear_history": {"enabled": False}, "allow_force_pushes": {"enabled": True}}
    got = protection_of(raw)
    assert got.status_checks == ("ci", "lint") and got.required_signatures
    assert not got.required_linear_history and got.allow_force_pushes
    assert got.required_approving_reviews == 0 and not got.required_conversation_resolution
    assert protection_of({}).status_checks is None


def test_push_protection_passes_when_enabled_and_fails_when_disabled_or_unreadable():
    repos = [repo("on", security={"secret_scanning": "enabled",
                                  "secret_scanning_push_protection": "enabled"}),
             repo("off", security={"secret_scanning": "enabled",
                                   "secret_scanning_push_protection": "disabled"}),
             repo("hidden"), repo("old", archived=True)]
    got = secret_scanning_push_protection_enabled.judge(repos)
    assert verdicts(got) == {"github:acme/on": P, "github:acme/off": F, "github:acme/hidden": E,
                             "github:acme/old": NA}
    assert got[1].data["secret_scanning_push_protection"] == "disabled"


@pytest.mark.parametrize("permission, status", [("read", P), ("none", P), ("write", F),
                                                ("admin", F), (None, E)])
def test_base_permission_passes_only_for_read_or_none(permission, status):
    org = Organization("acme", None, None, None, None, True,
                       default_repository_permission=permission)
    [result] = base_permission_restricted.judge(org)
    assert result.status is status
    assert result.data["default_repository_permission"] == permission


@pytest.mark.parametrize("allowed, status", [(False, P), (True, F), (None, E)])
def test_public_repo_creation_passes_only_when_members_cannot(allowed, status):
    org = Organization("acme", None, None, None, None, True,
                       members_can_create_public_repositories=allowed)
    [result] = public_repo_creation_restricted.judge(org)
    assert result.status is status
    assert result.data["members_can_create_public_repositories"] is allowed


@pytest.mark.parametrize("default, status", [("read", P), ("write", F)])
def test_workflow_token_passes_only_when_read_only_by_default(default, status):
    [result] = workflow_token_read_only.judge(WorkflowPermissions("acme", default, False))
    assert result.status is status and result.data["default_workflow_permissions"] == default


def test_repo_workflow_token_passes_only_when_read_only_by_default():
    got = repo_workflow_token_read_only.judge([
        RepoWorkflowPermissions(repo("read"), "read"), RepoWorkflowPermissions(repo("w"), "write"),
        RepoWorkflowPermissions(repo("denied"), None, "403"),
        RepoWorkflowPermissions(repo("old", archived=True), None)])
    assert verdicts(got) == {"github:acme/read": P, "github:acme/w": F, "github:acme/denied": E,
                             "github:acme/old": NA}
    assert got[1].data["default_workflow_permissions"] == "write"


def keys(name: str, *items: DeployKey, error: str | None = None) -> RepoItems[DeployKey]:
    return RepoItems(repo(name), None if error else tuple(items), error)


def test_deploy_keys_fail_when_any_can_write():
    reader = DeployKey(1, "ci", True, "2024-01-01T00:00:00+00:00", None)
    writer = DeployKey(2, "release", False, None, None)
    entries = [keys("none"), keys("readers", reader), keys("writer", reader, writer),
               keys("denied", error="403"), RepoItems(repo("old", archived=True), None)]
    got = deploy_keys_read_only.judge(entries)
    assert verdicts(got) == {"github:acme/none": P, "github:acme/readers": P,
                             "github:acme/writer": F, "github:acme/denied": E,
                             "github:acme/old": NA}
    assert got[2].data["write_access"] == [2] and "release" in got[2].title


def hooks(name: str, *items: Webhook) -> RepoItems[Webhook]:
    return RepoItems(repo(name), tuple(items))


SIGNED = Webhook(1, "https://ci.example/hook", True, True, False)
UNSIGNED = Webhook(2, "https://ci.example/hook", True, False, False)
PLAIN = Webhook(3, "http://ci.example/hook", True, True, False)
UNVERIFIED = Webhook(4, "https://ci.example/hook", True, True, True)


def test_webhooks_fail_without_a_secret():
    got = webhooks_have_secret.judge([hooks("none"), hooks("signed", SIGNED, PLAIN),
                                      hooks("unsigned", SIGNED, UNSIGNED)])
    assert verdicts(got) == {"github:acme/none": P, "github:acme/signed": P,
                             "github:acme/unsigned": F}
    assert got[2].data["failing"] == [2]


def test_webhooks_fail_over_plain_http_or_without_certificate_verification():
    got = webhooks_use_verified_tls.judge([hooks("tls", SIGNED, UNSIGNED), hooks("http", PLAIN),
                                           hooks("insecure", UNVERIFIED)])
    assert verdicts(got) == {"github:acme/tls": P, "github:acme/http": F,
                             "github:acme/insecure": F}


READ_AT = "2025-06-01T00:00:00+00:00"


def activity(name: str, *people: Activity) -> CollaboratorActivity:
    return CollaboratorActivity(repo(name), READ_AT, tuple(people))


def test_stale_outside_collaborators_fail_without_a_commit_in_ninety_days():
    recent = Activity("dana", "write", "2025-05-20T10:00:00Z")
    old = Activity("lee", "admin", "2024-12-01T10:00:00Z")
    never = Activity("kim", "read", None)
    entries = [activity("none"), activity("active", recent), activity("old", recent, old),
               activity("never", never),
               CollaboratorActivity(repo("denied"), READ_AT, None, "403"),
               CollaboratorActivity(repo("gone", archived=True), READ_AT, None)]
    got = stale_outside_collaborators.judge(entries)
    assert verdicts(got) == {"github:acme/none": P, "github:acme/active": P,
                             "github:acme/old": F, "github:acme/never": F,
                             "github:acme/denied": E, "github:acme/gone": NA}
    assert got[2].data["stale"] == ["lee"]
    assert "read_at" not in got[2].data  # the clock is no evidence: re-syncs stay unchanged
