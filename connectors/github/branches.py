"""Default-branch protection: code review, force pushes and whether admins are held to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

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

    def as_data(self) -> dict[str, object]:
        return {"required_approving_review_count": self.required_approving_reviews,
                "dismiss_stale_reviews": self.dismiss_stale_reviews,
                "allow_force_pushes": self.allow_force_pushes,
                "enforce_admins": self.enforce_admins}


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
    reviews = rule.required_pull_request_reviews
    return Protection(
        required_approving_reviews=int(reviews.required_approving_review_count or 0)
        if reviews is not None else 0,
        dismiss_stale_reviews=bool(reviews.dismiss_stale_reviews) if reviews is not None
        else False,
        allow_force_pushes=bool(rule.allow_force_pushes),
        enforce_admins=bool(rule.enforce_admins),
    )


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


@check(id="github.branch.reviews_required", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_default_branches,
       remediation="Protect the default branch (Settings > Branches > Add rule): 'Require a pull "
                   "request before merging' with at least one approval and 'Dismiss stale pull "
                   "request approvals when new commits are pushed'.")
def reviews_required(branches: list[DefaultBranch]) -> Iterator[Result]:
    """Changes to the default branch need an approving review, and new commits dismiss it."""
    for b in _judged(branches, "the branch protection"):
        if isinstance(b, Result):
            yield b
            continue
        p = b.protection
        if p is None:
            yield Result.of(b.repo.resource_id, passing=False, title=_unprotected(b),
                            data=b.data())
            continue
        missing = []
        if p.required_approving_reviews < 1:
            missing.append("no approving review is required")
        if not p.dismiss_stale_reviews:
            missing.append("stale approvals are not dismissed")
        title = (f"Default branch {b.branch} of {b.repo.full_name} requires "
                 f"{p.required_approving_reviews} approving review(s) and dismisses stale ones"
                 if not missing else
                 f"Default branch {b.branch} of {b.repo.full_name}: {' and '.join(missing)}")
        yield Result.of(b.repo.resource_id, passing=not missing, title=title, data=b.data())


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
