"""CODEOWNERS: who must review changes to which files of a repository."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from github import GithubException

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.repos import Repository, archived, repositories
from connectors.github.session import REPO_CONTENTS, GithubSession

# Where GitHub looks for the file, in the order it looks (the first one found is used).
LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


@dataclass(frozen=True)
class Codeowners:
    """Where a repository's CODEOWNERS file is (None: it has none)."""

    repo: Repository
    path: str | None = None
    read_error: str | None = None


@collector()
def collect_codeowners(session: GithubSession) -> list[Codeowners]:
    """The CODEOWNERS file of every active repository, looked up where GitHub looks."""
    found = []
    for repo in repositories(session):
        if repo.archived:
            found.append(Codeowners(repo))
            continue
        try:
            found.append(Codeowners(repo, _locate(session, repo)))
        except PermissionMissing as exc:
            found.append(Codeowners(repo, read_error=exc.message))
    return found


def _locate(session: GithubSession, repo: Repository) -> str | None:
    for path in LOCATIONS:
        if session.call(partial(_is_file, session, repo, path), needs=REPO_CONTENTS,
                        what=f"{path} in {repo.full_name}"):
            return path
    return None


def _is_file(session: GithubSession, repo: Repository, path: str) -> bool:
    try:
        content = session.client().get_repo(repo.full_name).get_contents(path)
    except GithubException as exc:
        if exc.status == 404:  # no such file, or an empty repository
            return False
        raise
    return not isinstance(content, list) and content.type == "file"


@check(id="github.repo.codeowners_present", severity=Severity.LOW,
       resource_type="github.repository", needs=collect_codeowners,
       remediation="Add a CODEOWNERS file (in .github/, the root or docs/) naming the team that "
                   "owns each part of the code, and require code owner review in the default "
                   "branch's protection rule.")
def codeowners_present(repos: list[Codeowners]) -> Iterator[Result]:
    """Each active repository names its code owners in a CODEOWNERS file."""
    for c in repos:
        if c.repo.archived:
            yield archived(c.repo)
            continue
        data = {"repository": c.repo.full_name, "codeowners_path": c.path,
                "searched": list(LOCATIONS)}
        if c.read_error is not None:
            yield Result.error(c.repo.resource_id, f"Could not look for CODEOWNERS in "
                               f"{c.repo.full_name}: {c.read_error}",
                               {**data, "error": c.read_error})
            continue
        title = (f"Repository {c.repo.full_name} has code owners in {c.path}" if c.path
                 else f"Repository {c.repo.full_name} has no CODEOWNERS file")
        yield Result.of(c.repo.resource_id, passing=c.path is not None, title=title, data=data)
