"""Every GitHub check as a pure function on plain snapshots: a passing and a failing resource."""

from __future__ import annotations

import json

import pytest

from connectors.base import Result, Status
from connectors.github import GithubConnector
from connectors.github.actions import ActionsPermissions, actions_allowed_restricted
from connectors.github.branches import (
    DefaultBranch,
    Protection,
    admins_enforced,
    force_pushes_blocked,
    reviews_required,
)
from connectors.github.codeowners import Codeowners, codeowners_present
from connectors.github.collaborators import (
    Collaborator,
    OutsideCollaborators,
    outside_collaborator_admins,
)
from connectors.github.dependabot import (
    DependabotSettings,
    dependabot_alerts_enabled,
    dependabot_security_updates_enabled,
)
from connectors.github.org import Organization, two_factor_required
from connectors.github.repos import (
    Repository,
    allowlist,
    public_visibility_allowed,
    secret_scanning_enabled,
)
from tests.connectors.github.test_settings_checks import SETTINGS_CHECKS


def repo(name: str, *, visibility: str = "private", archived: bool = False,
         security: dict[str, str] | None = None, read_error: str | None = None) -> Repository:
    return Repository(full_name=f"acme/{name}", name=name, visibility=visibility,
                      archived=archived, fork=False, default_branch="main",
                      security_and_analysis=security, read_error=read_error)


def verdicts(results) -> dict[str, Status]:
    results = list(results)
    for r in results:
        assert isinstance(r, Result) and r.title
        json.dumps(r.data)  # evidence is plain JSON
    return {r.resource_id: r.status for r in results}


P, F, E, NA = Status.PASSING, Status.FAILING, Status.ERROR, Status.NOT_APPLICABLE


def test_every_declared_check_is_tested_here_or_in_test_settings_checks():
    tested = {two_factor_required, actions_allowed_restricted, public_visibility_allowed,
              secret_scanning_enabled, reviews_required, force_pushes_blocked, admins_enforced,
              dependabot_alerts_enabled, dependabot_security_updates_enabled,
              outside_collaborator_admins, codeowners_present, *SETTINGS_CHECKS}
    assert set(GithubConnector.checks) == tested
    assert len({c.id for c in GithubConnector.checks if not c.remediation.startswith(
        "Deprecated")}) >= 22


def org(two_factor: bool | None) -> Organization:
    return Organization(login="acme", name="Acme", plan="team", public_repos=1, private_repos=2,
                        two_factor_required=two_factor)


def test_two_factor_passes_when_required_and_fails_when_not():
    assert verdicts(two_factor_required.judge(org(True))) == {"github:acme": P}
    assert verdicts(two_factor_required.judge(org(False))) == {"github:acme": F}


def test_two_factor_hidden_from_a_non_owner_token_is_an_error_naming_admin_org():
    [result] = two_factor_required.judge(org(None))
    assert result.status is E and "admin:org" in result.title


@pytest.mark.parametrize("enabled, allowed, status", [
    ("all", "selected", P), ("all", "local_only", P), ("none", None, P),
    ("all", "all", F), ("selected", "all", F), ("all", None, F),
])
def test_actions_pass_only_when_allowed_actions_are_restricted(enabled, allowed, status):
    policy = ActionsPermissions("acme", enabled_repositories=enabled, allowed_actions=allowed)
    assert verdicts(actions_allowed_restricted.judge(policy)) == {"github:acme": status}


def test_public_repositories_fail_unless_allowed_and_archived_are_not_applicable():
    repos = [repo("api"), repo("portal", visibility="internal"),
             repo("docs", visibility="public"), repo("sdk", visibility="public"),
             repo("old", visibility="public", archived=True)]
    got = verdicts(public_visibility_allowed.judge(repos, allowlist(["docs"])))
    assert got == {"github:acme/api": P, "github:acme/portal": P, "github:acme/docs": P,
                   "github:acme/sdk": F, "github:acme/old": NA}


def test_allowlist_accepts_names_or_full_names_in_a_list_or_a_string():
    assert allowlist("docs, acme/SDK\nsite") == {"docs", "acme/sdk", "site"}
    assert allowlist(None) == frozenset() and allowlist([]) == frozenset()
    public = [repo("sdk", visibility="public")]
    assert verdicts(public_visibility_allowed.judge(public, allowlist("acme/sdk"))) == {
        "github:acme/sdk": P}


def test_secret_scanning_passes_when_enabled_and_fails_when_disabled():
    repos = [repo("on", security={"secret_scanning": "enabled"}),
             repo("off", security={"secret_scanning": "disabled"}),
             repo("absent", security={}), repo("old", archived=True)]
    assert verdicts(secret_scanning_enabled.judge(repos)) == {
        "github:acme/on": P, "github:acme/off": F, "github:acme/absent": F,
        "github:acme/old": NA}


def test_secret_scanning_unreadable_settings_are_errors_naming_the_permission():
    got = list(secret_scanning_enabled.judge([repo("hidden"), repo("denied", read_error="no")]))
    assert [r.status for r in got] == [E, E]
    assert "Administration: read" in got[0].title and got[1].title.endswith(": no")


def branch(name: str, protection: Protection | None, *, archived: bool = False,
           error: str | None = None) -> DefaultBranch:
    return DefaultBranch(repo(name, archived=archived), "main", protection, error)


GOOD = Protection(required_approving_reviews=2, dismiss_stale_reviews=True,
                  allow_force_pushes=False, enforce_admins=True)


def test_reviews_required_needs_an_approval_and_stale_review_dismissal():
    branches = [branch("good", GOOD), branch("none", None),
                branch("zero", Protection(0, True, False, True)),
                branch("stale", Protection(1, False, False, True)),
                branch("old", None, archived=True), branch("denied", None, error="403")]
    assert verdicts(reviews_required.judge(branches)) == {
        "github:acme/good": P, "github:acme/none": F, "github:acme/zero": F,
        "github:acme/stale": F, "github:acme/old": NA, "github:acme/denied": E}


def test_force_pushes_blocked_fails_when_allowed_or_unprotected():
    branches = [branch("good", GOOD), branch("none", None),
                branch("force", Protection(1, True, True, True))]
    assert verdicts(force_pushes_blocked.judge(branches)) == {
        "github:acme/good": P, "github:acme/none": F, "github:acme/force": F}


def test_admins_enforced_fails_when_admins_may_bypass_or_unprotected():
    branches = [branch("good", GOOD), branch("none", None),
                branch("bypass", Protection(1, True, False, False))]
    assert verdicts(admins_enforced.judge(branches)) == {
        "github:acme/good": P, "github:acme/none": F, "github:acme/bypass": F}


def dependabot(name: str, alerts: bool | None, updates: bool | None, paused: bool = False,
               **kwargs) -> DependabotSettings:
    return DependabotSettings(repo(name, archived=kwargs.pop("archived", False)), alerts,
                              updates, paused, **kwargs)


def test_dependabot_alerts_pass_when_enabled_and_fail_when_disabled():
    repos = [dependabot("on", True, True), dependabot("off", False, False),
             dependabot("old", None, None, archived=True),
             dependabot("denied", None, True, read_errors={"vulnerability_alerts": "403"})]
    assert verdicts(dependabot_alerts_enabled.judge(repos)) == {
        "github:acme/on": P, "github:acme/off": F, "github:acme/old": NA,
        "github:acme/denied": E}


def test_dependabot_security_updates_fail_when_disabled_or_paused():
    repos = [dependabot("on", True, True), dependabot("off", True, False),
             dependabot("paused", True, True, paused=True),
             dependabot("denied", True, None, read_errors={"automated_security_fixes": "403"})]
    assert verdicts(dependabot_security_updates_enabled.judge(repos)) == {
        "github:acme/on": P, "github:acme/off": F, "github:acme/paused": F,
        "github:acme/denied": E}


def test_outside_collaborators_fail_only_with_admin_rights():
    repos = [OutsideCollaborators(repo("none"), ()),
             OutsideCollaborators(repo("writer"), (Collaborator("dana", "write", False),)),
             OutsideCollaborators(repo("admin"), (Collaborator("dana", "read", False),
                                                  Collaborator("lee", "admin", True))),
             OutsideCollaborators(repo("old", archived=True), None),
             OutsideCollaborators(repo("denied"), None, "403")]
    got = list(outside_collaborator_admins.judge(repos))
    assert verdicts(got) == {"github:acme/none": P, "github:acme/writer": P,
                             "github:acme/admin": F, "github:acme/old": NA,
                             "github:acme/denied": E}
    failing = next(r for r in got if r.status is F)
    assert "lee" in failing.title and failing.data["outside_admins"] == ["lee"]


def test_codeowners_pass_when_found_and_fail_when_missing():
    repos = [Codeowners(repo("root"), "CODEOWNERS"), Codeowners(repo("missing")),
             Codeowners(repo("old", archived=True)), Codeowners(repo("denied"), None, "403")]
    assert verdicts(codeowners_present.judge(repos)) == {
        "github:acme/root": P, "github:acme/missing": F, "github:acme/old": NA,
        "github:acme/denied": E}
