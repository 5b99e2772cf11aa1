"""Default-branch protection: code review, status checks, signed commits, linear history,
conversation resolution, force pushes and whether admins are held to it (one property a check)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from github import GithubException

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.repos import Repository, archived, repositories
from connectors.github.session import REPO_ADMIN, GithubSession


@dataclass(frozen=True)
class Protection:
    """The classic branch protection rule of one branch."""

    required_approving_reviews: int  # 0 when pull request reviews are not required
    dismiss_stale_reviews: bool
    allow_force_pushes: bool
    enforce_admins: bool
    status_checks: tuple[str, ...] | None = None  # required contexts; None: not required
    strict_status_checks: bool = False  # the branch must be up to date before merging
    required_signatures: bool = False
    required_linear_history: bool = False
    required_conversation_resolution: bool = False

    def as_data(self) -> dict[str, object]:
        return {"required_approving_review_count": self.required_approving_reviews,
                "dismiss_stale_reviews": self.dismiss_stale_reviews,
                "allow_force_pushes": self.allow_force_pushes,
                "enforce_admins": self.enforce_admins,
                "required_status_checks": None if self.status_checks is None else {
                    "contexts": list(self.status_checks), "strict": self.strict_status_checks},
                "required_signatures": self.required_signatures,
                "required_linear_history": self.required_linear_history,
                "required_conversation_resolution": self.required_conversation_resolution}


@dataclass(frozen=True)
class DefaultBranch:
    """A repository's default branch and its protection (None: the branch is not protected)."""

    repo: Repository
    branch: str | None
    protection: Protection | None = None
    read_error: str | None = None

    def data(self) -> dict[str, object]:
        return {"repository": self.repo.full_name, "branch": self.branch,
                "protected": self.protection is not None,
                **(self.protection.as_data() if self.protection else {})}


@collector()
def collect_default_branches(session: GithubSession) -> list[DefaultBranch]:
    """The default branch protection of every active repository."""
    found = []
    for repo in repositories(session):
        if repo.archived or not repo.default_branch:
            found.append(DefaultBranch(repo, repo.default_branch))
            continue
        try:
            protection = session.call(
                partial(_read_protection, session, repo), needs=REPO_ADMIN,
                what=f"the protection of branch {repo.default_branch} of {repo.full_name}")
        except PermissionMissing as exc:
            found.append(DefaultBranch(repo, repo.default_branch, read_error=exc.message))
            continue
        found.append(DefaultBranch(repo, repo.default_branch, protection))
    return found


def _read_protection(session: GithubSession, repo: Repository) -> Protection | None:
    """The branch's classic protection; GitHub answers 404 for a branch that has none."""
    assert repo.default_branch is not None
    try:
        branch = session.client().get_repo(repo.full_name).get_branch(repo.default_branch)
        if not branch.protected:
            return None
        rule = branch.get_protection()
    except GithubException as exc:
        if exc.status == 404:  # "Branch not protected", or an empty repository's missing branch
            return None
        raise
    return protection_of(dict(rule.raw_data))


def protection_of(raw: dict[str, Any]) -> Protection:
    """A Protection from GET .../branches/{branch}/protection's answer (settings off are absent
    or `{"enabled": false}`)."""
    reviews = raw.get("required_pull_request_reviews") or {}
    checks = raw.get("required_status_checks")
    contexts: tuple[str, ...] | None = None
    if isinstance(checks, dict):
        named = [str(c.get("context")) for c in checks.get("checks") or []
                 if isinstance(c, dict) and c.get("context")]
        contexts = tuple(dict.fromkeys([*map(str, checks.get("contexts") or []), *named]))
    return Protection(
        required_approving_reviews=int(reviews.get("required_approving_review_count") or 0),
        dismiss_stale_reviews=bool(reviews.get("dismiss_stale_reviews")),
        allow_force_pushes=_enabled(raw, "allow_force_pushes"),
        enforce_admins=_enabled(raw, "enforce_admins"),
        status_checks=contexts,
        strict_status_checks=bool(isinstance(checks, dict) and checks.get("strict")),
        required_signatures=_enabled(raw, "required_signatures"),
        required_linear_history=_enabled(raw, "required_linear_history"),
        required_conversation_resolution=_enabled(raw, "required_conversation_resolution"),
    )


def _enabled(raw: dict[str, Any], setting: str) -> bool:
    value = raw.get(setting)
    return bool(value.get("enabled")) if isinstance(value, dict) else bool(value)


def _judged(branches: list[DefaultBranch], what: str) -> Iterator[DefaultBranch | Result]:
    """Archived repositories and unreadable protections as results; the rest to be judged."""
    for b in branches:
        if b.repo.archived:
            yield archived(b.repo)
        elif b.read_error is not None:
            yield Result.error(b.repo.resource_id, f"Could not read {what} of "
                               f"{b.repo.full_name}: {b.read_error}",
                               {**b.data(), "error": b.read_error})
        else:
            yield b


def _unprotected(b: DefaultBranch) -> str:
    if b.branch is None:
        return f"Repository {b.repo.full_name} has no default branch"
    return f"Default branch {b.branch} of {b.repo.full_name} is not protected"


def _judge_rule(branches: list[DefaultBranch], holds: Callable[[Protection], bool],
                kept: str, broken: str) -> Iterator[Result]:
    """One result per repository on one property of its default branch's rule: `kept` or
    `broken` completes "Default branch <b> of <repo> ..."; an unprotected branch fails."""
    for b in _judged(branches, "the branch protection"):
        if isinstance(b, Result):
            yield b
            continue
        p = b.protection
        passing = p is not None and holds(p)
        title = (_unprotected(b) if p is None else
                 f"Default branch {b.branch} of {b.repo.full_name} {kept if passing else broken}")
        yield Result.of(b.repo.resource_id, passing=passing, title=title, data=b.data())


REVIEWS_REQUIRED = "github.branch.reviews_required"


@check(id="github.branch.approving_review_required", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_default_branches,
       replaces=(REVIEWS_REQUIRED,),
       remediation="Protect the default branch (Settings > Branches > Add rule): 'Require a pull "
                   "request before merging' with at least one required approval.")
def approving_review_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Changes to the default branch need at least one approving review."""
    yield from _judge_rule(branches, lambda p: p.required_approving_reviews >= 1,
                           "requires an approving review before merging",
                           "requires no approving review")


@check(id="github.branch.stale_reviews_dismissed", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_default_branches,
       replaces=(REVIEWS_REQUIRED,),
       remediation="In the default branch's protection rule (Settings > Branches), require "
                   "approvals and turn on 'Dismiss stale pull request approvals when new "
                   "commits are pushed'.")
def stale_reviews_dismissed(branches: list[DefaultBranch]) -> Iterator[Result]:
    """New commits pushed to a pull request dismiss its earlier approvals."""
    yield from _judge_rule(
        branches, lambda p: p.required_approving_reviews >= 1 and p.dismiss_stale_reviews,
        "dismisses stale approvals when new commits are pushed",
        "keeps approvals after new commits are pushed (or requires none)")


@check(id=REVIEWS_REQUIRED, severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="Deprecated alias, kept for one release: see "
                   "github.branch.approving_review_required and "
                   "github.branch.stale_reviews_dismissed.")
def reviews_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Deprecated alias (one release): an approving review and stale-approval dismissal."""
    yield from _judge_rule(
        branches, lambda p: p.required_approving_reviews >= 1 and p.dismiss_stale_reviews,
        "requires an approving review and dismisses stale ones",
        "does not require an approving review that new commits dismiss")


@check(id="github.branch.status_checks_required", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="In the default branch's protection rule (Settings > Branches), turn on "
                   "'Require status checks to pass before merging' and select the CI checks "
                   "(and 'Require branches to be up to date before merging').")
def status_checks_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Named status checks (CI) must pass before a change merges into the default branch."""
    yield from _judge_rule(branches, lambda p: bool(p.status_checks),
                           "requires status checks to pass before merging",
                           "requires no status check to pass before merging")


@check(id="github.branch.signed_commits_required", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="In the default branch's protection rule (Settings > Branches), turn on "
                   "'Require signed commits'.")
def signed_commits_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Commits pushed to the default branch must carry a verified signature."""
    yield from _judge_rule(branches, lambda p: p.required_signatures,
                           "requires signed commits", "accepts unsigned commits")


@check(id="github.branch.linear_history_required", severity=Severity.LOW,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="In the default branch's protection rule (Settings > Branches), turn on "
                   "'Require linear history' (squash or rebase merges only).")
def linear_history_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """The default branch keeps a linear history: no merge commits."""
    yield from _judge_rule(branches, lambda p: p.required_linear_history,
                           "requires a linear history", "accepts merge commits")


@check(id="github.branch.conversation_resolution_required", severity=Severity.LOW,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="In the default branch's protection rule (Settings > Branches), turn on "
                   "'Require conversation resolution before merging'.")
def conversation_resolution_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Every review conversation is resolved before a change merges into the default branch."""
    yield from _judge_rule(branches, lambda p: p.required_conversation_resolution,
                           "requires conversations to be resolved before merging",
                           "lets changes merge with unresolved conversations")


@check(id="github.branch.force_pushes_blocked", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="Protect the default branch (Settings > Branches) and leave 'Allow force "
                   "pushes' off, so its history cannot be rewritten.")
def force_pushes_blocked(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Nobody can force-push to (rewrite the history of) the default branch."""
    for b in _judged(branches, "the branch protection"):
        if isinstance(b, Result):
            yield b
            continue
        p = b.protection
        if p is None:
            title = _unprotected(b) + ", so anyone who can push may force-push"
        elif p.allow_force_pushes:
            title = f"Default branch {b.branch} of {b.repo.full_name} allows force pushes"
        else:
            title = f"Default branch {b.branch} of {b.repo.full_name} blocks force pushes"
        yield Result.of(b.repo.resource_id, passing=p is not None and not p.allow_force_pushes,
                        title=title, data=b.data())


@check(id="github.branch.admins_enforced", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="In the default branch's protection rule (Settings > Branches), turn on "
                   "'Do not allow bypassing the above settings' (enforce for administrators).")
def admins_enforced(branches: list[DefaultBranch]) -> Iterator[Result]:
    """The default branch's protection binds repository administrators too."""
    for b in _judged(branches, "the branch protection"):
        if isinstance(b, Result):
            yield b
            continue
        p = b.protection
        if p is None:
            title = _unprotected(b)
        elif p.enforce_admins:
            title = (f"Default branch {b.branch} of {b.repo.full_name} enforces its protection "
                     "on administrators")
        else:
            title = (f"Administrators may bypass the protection of default branch {b.branch} of "
                     f"{b.repo.full_name}")
        yield Result.of(b.repo.resource_id, passing=p is not None and p.enforce_admins,
                        title=title, data=b.data())
