"""A realistic emulated GitHub organization for the kit (tests and demos), with expected verdicts.

`seed_estate` describes the organization of a small company ("acme-corp"): fourteen repositories
with mixed settings, an archived one, an empty one, outside collaborators, webhooks and deploy
keys across pages. A local
server answering GitHub's REST shapes serves it (the kit's server.py). The
verdicts every check must reach are derived here from the specification, not from the
connector, so a test compares two independent readings of the same estate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connectors.base import Status

ORGANIZATION = "acme-corp"
TOKEN = "ghp_EmulatedAcmeCorpAuditToken0000000001"  # noqa: S105 - the emulator's throwaway token
PASSING, FAILING, NOT_APPLICABLE = (Status.PASSING.value, Status.FAILING.value,
                                    Status.NOT_APPLICABLE.value)
CODEOWNERS_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


@dataclass(frozen=True)
class Protection:
    """A classic branch protection rule."""

    approvals: int  # 0: pull request reviews are not required at all
    dismiss_stale: bool
    force_pushes: bool
    enforce_admins: bool
    status_checks: tuple[str, ...] = ()  # required contexts; (): status checks not required
    signed_commits: bool = False
    linear_history: bool = False
    conversation_resolution: bool = False


@dataclass(frozen=True)
class Hook:
    """A repository webhook: where it delivers, whether it has a secret, TLS verification."""

    url: str
    secret: bool = True
    insecure_ssl: bool = False
    active: bool = True

    @property
    def verified_tls(self) -> bool:
        return self.url.startswith("https://") and not self.insecure_ssl


@dataclass(frozen=True)
class Repo:
    """One repository of the estate and every setting the checks judge."""

    name: str
    visibility: str = "private"  # public, private, internal
    archived: bool = False
    default_branch: str = "main"
    empty: bool = False  # no commits yet, so the default branch does not exist
    protection: Protection | None = None
    ruleset_only: bool = False  # GitHub says "protected" (a ruleset), but no classic rule (404)
    secret_scanning: bool = False
    push_protection: bool = False
    dependabot_alerts: bool = False
    security_updates: str = "off"  # on, paused, off
    outside_collaborators: tuple[tuple[str, str], ...] = ()  # (login, role)
    last_commits: tuple[tuple[str, int], ...] = ()  # (login, days ago): latest commit by them
    codeowners: str | None = None  # path of the CODEOWNERS file
    hooks: tuple[Hook, ...] = ()
    deploy_keys: tuple[tuple[str, bool], ...] = ()  # (title, read_only)
    workflow_permissions: str | None = None  # read, write; None: the organization's default

    def is_collaborator_stale(self, login: str) -> bool:
        days = dict(self.last_commits).get(login)
        return days is None or days > STALE_DAYS


@dataclass(frozen=True)
class Org:
    login: str
    name: str
    plan: str
    two_factor_required: bool
    enabled_repositories: str  # all, none, selected
    allowed_actions: str  # all, local_only, selected
    default_repository_permission: str = "read"  # none, read, write, admin
    members_can_create_public_repositories: bool = False
    default_workflow_permissions: str = "read"  # read, write


STALE_DAYS = 90  # an outside collaborator without a commit for longer is stale
STRICT = Protection(approvals=2, dismiss_stale=True, force_pushes=False, enforce_admins=True,
                    status_checks=("ci/test", "ci/lint"), signed_commits=True,
                    linear_history=True, conversation_resolution=True)


def _secured(name: str, **settings: Any) -> Repo:
    """A repository with secret scanning, Dependabot alerts and security updates on."""
    return Repo(name, secret_scanning=True, dependabot_alerts=True, security_updates="on",
                **settings)


ORG = Org(login=ORGANIZATION, name="Acme Corp", plan="enterprise", two_factor_required=True,
          enabled_repositories="all", allowed_actions="all",
          default_repository_permission="read", members_can_create_public_repositories=True,
          default_workflow_permissions="write")

REPOS = (
    _secured("api-gateway", protection=STRICT, push_protection=True, workflow_permissions="read",
             codeowners=".github/CODEOWNERS", deploy_keys=(("ci-readonly", True),),
             hooks=(Hook("https://ci.acme.example/hooks/github?token=ci-hook-token"),)),
    Repo("payments-service", protection=Protection(1, True, False, False, ("ci/test",),
                                                   conversation_resolution=True),
         secret_scanning=True, dependabot_alerts=True, security_updates="paused",
         outside_collaborators=(("contractor-dana", "write"),),
         last_commits=(("contractor-dana", 12),), codeowners="CODEOWNERS",
         deploy_keys=(("release-bot", False),),
         hooks=(Hook("http://legacy-ci.acme.example/hook"),)),
    Repo("web-frontend", protection=Protection(1, False, True, False, linear_history=True),
         dependabot_alerts=True, outside_collaborators=(("agency-lee", "admin"),),
         last_commits=(("agency-lee", 200),), codeowners="docs/CODEOWNERS",
         hooks=(Hook("https://deploy.vendor.example/github", secret=False),
                Hook("https://chat.acme.example/notify"))),
    Repo("mobile-app", secret_scanning=True, codeowners="src/CODEOWNERS"),
    # Seven outside collaborators: the admin is on the second page of five.
    _secured("infra-terraform", protection=STRICT, codeowners=".github/CODEOWNERS",
             outside_collaborators=tuple((f"sre-vendor-{i}", "read") for i in range(1, 7))
             + (("sre-vendor-7", "admin"),),
             last_commits=tuple((f"sre-vendor-{i}", 5) for i in range(1, 8) if i != 4),
             hooks=(Hook("https://atlantis.acme.example/events", insecure_ssl=True),),
             # Six deploy keys: the one that can write is on the second page of five.
             deploy_keys=tuple((f"runner-{i}", True) for i in range(1, 6))
             + (("terraform-apply", False),)),
    _secured("data-pipeline", visibility="internal",
             protection=Protection(0, False, False, True)),
    _secured("docs-site", visibility="public", protection=Protection(1, True, False, True),
             codeowners="CODEOWNERS"),
    _secured("sdk-python", visibility="public",
             protection=Protection(1, True, False, False, signed_commits=True),
             push_protection=True, outside_collaborators=(("oss-maintainer", "maintain"),),
             last_commits=(("oss-maintainer", 3),), codeowners=".github/CODEOWNERS",
             hooks=(Hook("https://readthedocs.example/api/v2/webhook/sdk-python/1/"),)),
    Repo("legacy-monolith", archived=True, default_branch="master",
         outside_collaborators=(("old-contractor", "admin"),)),
    Repo("ml-experiments", ruleset_only=True, outside_collaborators=(("phd-intern", "triage"),)),
    Repo("internal-tools", visibility="internal", protection=Protection(1, True, False, True),
         dependabot_alerts=True, security_updates="on",
         outside_collaborators=(("freelancer-kim", "admin"), ("auditor-ext", "read"))),
    _secured("design-system", default_branch="develop",
             protection=Protection(1, True, True, True, ("build",), linear_history=True),
             codeowners=".github/CODEOWNERS"),
    Repo("empty-sandbox", empty=True),
    _secured("security-policies", codeowners="CODEOWNERS", workflow_permissions="read"),
)

# docs-site is open source on purpose; sdk-python was made public by mistake.
ALLOWED_PUBLIC_REPOS = ("docs-site",)


@dataclass(frozen=True)
class Estate:
    """What the local server serves, and the verdict each check must reach on each resource."""

    base_url: str
    organization: Org
    repos: tuple[Repo, ...]
    token: str
    allowed_public_repos: tuple[str, ...]
    expected: dict[str, dict[str, str]]

    def credentials(self) -> dict[str, Any]:
        """Raw connection credentials reaching this estate (as a client would send them)."""
        return {"token": self.token, "organization": self.organization.login,
                "base_url": self.base_url}

    def config(self) -> dict[str, Any]:
        """The connection's configuration parameters the expected verdicts assume."""
        return {"allowed_public_repos": list(self.allowed_public_repos)}

    @property
    def resources(self) -> int:
        return 1 + len(self.repos)


def seed_estate(base_url: str, *, allowed_public_repos: Iterable[str] = ALLOWED_PUBLIC_REPOS,
                org: Org = ORG, repos: tuple[Repo, ...] = REPOS) -> Estate:
    """The acme-corp estate for a server at base_url, with the verdicts every check must reach."""
    allowed = tuple(allowed_public_repos)
    return Estate(base_url=base_url.rstrip("/"), organization=org, repos=repos, token=TOKEN,
                  allowed_public_repos=allowed, expected=expected_verdicts(org, repos, allowed))


def expected_verdicts(org: Org, repos: Iterable[Repo],
                      allowed_public: Iterable[str]) -> dict[str, dict[str, str]]:
    """check id -> {resource id: status}, read straight from the specification."""
    org_id = f"github:{org.login}"
    restricted = org.enabled_repositories == "none" or org.allowed_actions != "all"
    expected: dict[str, dict[str, str]] = {
        "github.org.two_factor_required": {org_id: _verdict(org.two_factor_required)},
        "github.org.actions_allowed_restricted": {org_id: _verdict(restricted)},
        "github.org.base_permission_restricted":
            {org_id: _verdict(org.default_repository_permission in ("none", "read"))},
        "github.org.public_repo_creation_restricted":
            {org_id: _verdict(not org.members_can_create_public_repositories)},
        "github.org.workflow_token_read_only":
            {org_id: _verdict(org.default_workflow_permissions == "read")},
    }
    allowed = set(allowed_public)
    for repo in repos:
        rid = f"github:{org.login}/{repo.name}"
        rule = None if repo.empty or repo.ruleset_only else repo.protection
        verdicts = {
            "github.repo.public_visibility_allowed":
                repo.visibility != "public" or repo.name in allowed,
            "github.repo.secret_scanning_enabled": repo.secret_scanning,
            "github.repo.secret_scanning_push_protection_enabled": repo.push_protection,
            "github.branch.approving_review_required": rule is not None and rule.approvals >= 1,
            "github.branch.stale_reviews_dismissed":
                rule is not None and rule.approvals >= 1 and rule.dismiss_stale,
            "github.branch.reviews_required":
                rule is not None and rule.approvals >= 1 and rule.dismiss_stale,
            "github.branch.status_checks_required":
                rule is not None and bool(rule.status_checks),
            "github.branch.signed_commits_required": rule is not None and rule.signed_commits,
            "github.branch.linear_history_required": rule is not None and rule.linear_history,
            "github.branch.conversation_resolution_required":
                rule is not None and rule.conversation_resolution,
            "github.branch.force_pushes_blocked": rule is not None and not rule.force_pushes,
            "github.branch.admins_enforced": rule is not None and rule.enforce_admins,
            "github.repo.dependabot_alerts_enabled": repo.dependabot_alerts,
            "github.repo.dependabot_security_updates_enabled": repo.security_updates == "on",
            "github.repo.outside_collaborator_admins":
                all(role != "admin" for _, role in repo.outside_collaborators),
            "github.repo.stale_outside_collaborators":
                not any(repo.is_collaborator_stale(login)
                        for login, _ in repo.outside_collaborators),
            "github.repo.deploy_keys_read_only": all(ro for _, ro in repo.deploy_keys),
            "github.repo.workflow_token_read_only":
                (repo.workflow_permissions or org.default_workflow_permissions) == "read",
            "github.repo.webhooks_have_secret": all(h.secret for h in repo.hooks),
            "github.repo.webhooks_use_verified_tls": all(h.verified_tls for h in repo.hooks),
            "github.repo.codeowners_present": repo.codeowners in CODEOWNERS_LOCATIONS,
        }
        for check_id, passing in verdicts.items():
            expected.setdefault(check_id, {})[rid] = (
                NOT_APPLICABLE if repo.archived else _verdict(passing))
    return expected


def _verdict(passing: bool) -> str:
    return PASSING if passing else FAILING
