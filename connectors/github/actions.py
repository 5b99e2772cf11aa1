"""GitHub Actions: which actions the organization's workflows may run, and what the workflows'
GITHUB_TOKEN may do by default."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.org import organization
from connectors.github.repos import Repository, archived, repositories, unread_setting
from connectors.github.session import ORG_ADMIN, REPO_ADMIN, GithubSession

_ALLOWED = {"local_only": "only actions defined in the organization's own repositories",
            "selected": "only GitHub's, verified creators' or listed actions"}


@dataclass(frozen=True)
class ActionsPermissions:
    """GET /orgs/{org}/actions/permissions: which repositories may run which actions."""

    organization: str
    enabled_repositories: str  # all, none, selected
    allowed_actions: str | None  # all, local_only, selected; absent when Actions is off

    @property
    def resource_id(self) -> str:
        return f"github:{self.organization}"


@collector()
def collect_actions_permissions(session: GithubSession) -> ActionsPermissions:
    """The organization's GitHub Actions policy."""
    login = organization(session).login

    def read() -> dict[str, Any]:
        # PyGithub has no wrapper for this endpoint; its requester still does auth and paging.
        _, data = session.client().requester.requestJsonAndCheck(
            "GET", f"/orgs/{login}/actions/permissions")
        return dict(data or {})

    data = session.call(read, what=f"the GitHub Actions policy of {login}", needs=ORG_ADMIN)
    return ActionsPermissions(organization=login,
                              enabled_repositories=str(data.get("enabled_repositories", "all")),
                              allowed_actions=data.get("allowed_actions"))


@check(id="github.org.actions_allowed_restricted", severity=Severity.MEDIUM,
       resource_type="github.organization", needs=collect_actions_permissions,
       remediation="Restrict which actions workflows may use (Organization settings > Actions > "
                   "General > Policies: 'Allow <org> actions and reusable workflows' or 'Allow "
                   "<org>, and select non-<org>, actions', listing the third-party actions you "
                   "trust, pinned to a commit SHA).")
def actions_allowed_restricted(policy: ActionsPermissions) -> Iterator[Result]:
    """GitHub Actions workflows may run only allowed actions, not any action at all."""
    data = {"organization": policy.organization,
            "enabled_repositories": policy.enabled_repositories,
            "allowed_actions": policy.allowed_actions}
    if policy.enabled_repositories == "none":
        yield Result.of(policy.resource_id, passing=True, data=data,
                        title=f"GitHub Actions is disabled in {policy.organization}")
        return
    allowed = policy.allowed_actions or "all"
    if allowed == "all":
        title = f"Workflows in {policy.organization} may run any action from any repository"
    else:
        title = (f"Workflows in {policy.organization} may run "
                 f"{_ALLOWED.get(allowed, allowed)}")
    yield Result.of(policy.resource_id, passing=allowed != "all", title=title, data=data)


@dataclass(frozen=True)
class WorkflowPermissions:
    """GET /orgs/{org}/actions/permissions/workflow: the GITHUB_TOKEN's default permission."""

    organization: str
    default_workflow_permissions: str  # read, write
    can_approve_pull_request_reviews: bool

    @property
    def resource_id(self) -> str:
        return f"github:{self.organization}"


@collector()
def collect_workflow_permissions(session: GithubSession) -> WorkflowPermissions:
    """The default permissions of the organization's workflow token."""
    login = organization(session).login

    def read() -> dict[str, Any]:
        _, data = session.client().requester.requestJsonAndCheck(
            "GET", f"/orgs/{login}/actions/permissions/workflow")
        return dict(data or {})

    data = session.call(read, what=f"the default workflow permissions of {login}",
                        needs=ORG_ADMIN)
    return WorkflowPermissions(
        organization=login,
        default_workflow_permissions=str(data.get("default_workflow_permissions", "write")),
        can_approve_pull_request_reviews=bool(data.get("can_approve_pull_request_reviews")))


@check(id="github.org.workflow_token_read_only", severity=Severity.HIGH,
       resource_type="github.organization", needs=collect_workflow_permissions,
       remediation="Make the workflow token read-only by default (Organization settings > "
                   "Actions > General > Workflow permissions: 'Read repository contents and "
                   "packages permissions') and grant more per job with `permissions:`.")
def workflow_token_read_only(policy: WorkflowPermissions) -> Iterator[Result]:
    """Workflows' GITHUB_TOKEN is read-only unless a workflow asks for more."""
    data = {"organization": policy.organization,
            "default_workflow_permissions": policy.default_workflow_permissions,
            "can_approve_pull_request_reviews": policy.can_approve_pull_request_reviews}
    read_only = policy.default_workflow_permissions == "read"
    title = (f"Workflows in {policy.organization} get a read-only GITHUB_TOKEN by default"
             if read_only else f"Workflows in {policy.organization} get a GITHUB_TOKEN with "
             f"{policy.default_workflow_permissions} access to the repository by default")
    yield Result.of(policy.resource_id, passing=read_only, title=title, data=data)


@dataclass(frozen=True)
class RepoWorkflowPermissions:
    """GET /repos/{o}/{r}/actions/permissions/workflow: one repository's workflow token default
    (a repository may narrow the organization's write default to read, never widen a read)."""

    repo: Repository
    default_workflow_permissions: str | None
    read_error: str | None = None


@collector()
def collect_repo_workflow_permissions(session: GithubSession) -> list[RepoWorkflowPermissions]:
    """The default workflow token permission of every active repository."""
    found = []
    for repo in repositories(session):
        if repo.archived:
            found.append(RepoWorkflowPermissions(repo, None))
            continue

        def read(name: str = repo.full_name) -> dict[str, Any]:
            _, data = session.client().requester.requestJsonAndCheck(
                "GET", f"/repos/{name}/actions/permissions/workflow")
            return dict(data or {})

        try:
            data = session.call(read, needs=REPO_ADMIN,
                                what=f"the default workflow permissions of {repo.full_name}")
        except PermissionMissing as exc:
            found.append(RepoWorkflowPermissions(repo, None, exc.message))
            continue
        found.append(RepoWorkflowPermissions(
            repo, str(data.get("default_workflow_permissions", "write"))))
    return found


@check(id="github.repo.workflow_token_read_only", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_repo_workflow_permissions,
       remediation="Make the workflow token read-only by default for the repository (Settings > "
                   "Actions > General > Workflow permissions: 'Read repository contents and "
                   "packages permissions'), or once for all in the organization's settings.")
def repo_workflow_token_read_only(repos: list[RepoWorkflowPermissions]) -> Iterator[Result]:
    """The repository's workflows get a read-only GITHUB_TOKEN unless a workflow asks for more."""
    for entry in repos:
        repo = entry.repo
        if repo.archived:
            yield archived(repo)
            continue
        if entry.default_workflow_permissions is None:
            yield unread_setting(repo, "the default workflow permissions of", entry.read_error)
            continue
        default = entry.default_workflow_permissions
        title = (f"Workflows in {repo.full_name} get a read-only GITHUB_TOKEN by default"
                 if default == "read" else f"Workflows in {repo.full_name} get a GITHUB_TOKEN "
                 f"with {default} access to the repository by default")
        yield Result.of(repo.resource_id, passing=default == "read", title=title,
                        data={"repository": repo.full_name,
                              "default_workflow_permissions": default})
