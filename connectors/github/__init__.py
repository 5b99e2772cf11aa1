"""GitHub: the GitHub connector (github.com or GitHub Enterprise Server) and its checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from connectors.base import AuthType, Category, ConfigParam, Connector, OAuthSpec, RetryPolicy
from connectors.github import (
    actions,
    branches,
    codeowners,
    collaborators,
    dependabot,
    deploy_keys,
    org,
    repos,
    webhooks,
)
from connectors.github.config import ALLOWED_PUBLIC_REPOS, GithubConfig
from connectors.github.grant import revoke_grant
from connectors.github.session import GithubCredentials, GithubSession

__all__ = ["GithubConnector", "GithubCredentials", "GithubSession", "RetryPolicy"]


class GithubConnector(Connector):
    """One GitHub organization, read through an owner's token: a personal access token, or an
    OAuth app (or GitHub App) user token obtained through GET .../oauth-url."""

    id = "github"
    control_mappings = Path(__file__).with_name("mappings.yaml")
    name = "GitHub"
    category = Category.DEVOPS
    auth_type = AuthType.OAUTH2
    icon = "github"
    description = ("Audits a GitHub organization: two-factor requirement, base permission, "
                   "public repository creation, the Actions policy and workflow token, and for "
                   "every repository default-branch protection (reviews, status checks, signed "
                   "commits, linear history, conversations, force pushes, admins), secret "
                   "scanning and push protection, Dependabot, deploy keys, webhooks, outside "
                   "collaborators, public visibility and CODEOWNERS.")
    credentials_model = GithubCredentials
    # github.com's endpoints; GitHub Enterprise Server's (https://HOST/login/oauth/...) are set
    # in EVIDENCE_OAUTH_CLIENTS. GitHub takes PKCE (S256) and answers the token request in JSON
    # only when asked with `Accept: application/json`, which authlib sends. GitHub has no RFC
    # 7009 endpoint: disconnect deletes the grant with DELETE /applications/{client_id}/grant.
    # admin:org (which includes read:org) is the only classic scope that shows an
    # organization's two-factor requirement and Actions policy; the connector only reads.
    oauth = OAuthSpec(authorize_url="https://github.com/login/oauth/authorize",
                      token_url="https://github.com/login/oauth/access_token",  # noqa: S106
                      scopes=("repo", "admin:org"), pkce=True,
                      params=("organization", "base_url"), revoke=revoke_grant)
    config_model = GithubConfig
    config_params = (
        ConfigParam(ALLOWED_PUBLIC_REPOS,
                    "Repositories meant to be public (names or owner/name, a list or a "
                    "comma-separated string); other public repositories fail "
                    "github.repo.public_visibility_allowed.", default=[]),
    )
    checks = (
        org.two_factor_required,
        org.base_permission_restricted,
        org.public_repo_creation_restricted,
        actions.actions_allowed_restricted,
        actions.workflow_token_read_only,
        actions.repo_workflow_token_read_only,
        repos.public_visibility_allowed,
        repos.secret_scanning_enabled,
        repos.secret_scanning_push_protection_enabled,
        branches.approving_review_required,
        branches.stale_reviews_dismissed,
        branches.reviews_required,  # deprecated alias of the two above, for one release
        branches.status_checks_required,
        branches.signed_commits_required,
        branches.linear_history_required,
        branches.conversation_resolution_required,
        branches.force_pushes_blocked,
        branches.admins_enforced,
        dependabot.dependabot_alerts_enabled,
        dependabot.dependabot_security_updates_enabled,
        deploy_keys.deploy_keys_read_only,
        webhooks.webhooks_have_secret,
        webhooks.webhooks_use_verified_tls,
        collaborators.outside_collaborator_admins,
        collaborators.stale_outside_collaborators,
        codeowners.codeowners_present,
    )
    # GitHub asks integrators not to make many requests at once (secondary rate limits).
    max_parallel = 3

    @classmethod
    def dump_credentials(cls, credentials: BaseModel) -> dict[str, Any]:
        """Only the fields given (a token, or the OAuth answer), so the vault holds no nulls."""
        return {k: v for k, v in super().dump_credentials(credentials).items() if v is not None}

    def session(self) -> GithubSession:
        return GithubSession(cast(GithubCredentials, self.credentials), self.retry_policy,
                             endpoints=self.endpoints, store=self.conditional_cache)

    def finish_run(self, session: GithubSession) -> None:
        """Save the ETagged answers this run stored, so the next run in any worker sends
        If-None-Match (connectors.github.etags)."""
        session.save_etags()

    def verify(self) -> dict[str, Any]:
        """Prove the token with GET /orgs/{org}; name the organization, its plan and size."""
        found = org.organization(self.session())
        metadata: dict[str, Any] = {"organization": found.login, "plan": found.plan}
        if found.public_repos is not None and found.private_repos is not None:
            metadata["repositories"] = found.public_repos + found.private_repos
        return metadata
