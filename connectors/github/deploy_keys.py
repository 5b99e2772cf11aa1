"""Deploy keys: SSH keys that reach one repository without a person behind them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from github.RepositoryKey import RepositoryKey

from connectors.base import Result, Severity, check, collector
from connectors.github.repos import RepoItems, Repository, each_repository, unread
from connectors.github.session import REPO_ADMIN, GithubSession


@dataclass(frozen=True)
class DeployKey:
    """One deploy key as GET /repos/{o}/{r}/keys shows it (the public key left out)."""

    id: int
    title: str
    read_only: bool
    created_at: str | None
    last_used: str | None

    def as_data(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "read_only": self.read_only,
                "created_at": self.created_at, "last_used": self.last_used}


@collector()
def collect_deploy_keys(session: GithubSession) -> list[RepoItems[DeployKey]]:
    """The deploy keys of every active repository (admins only)."""
    return each_repository(session, partial(_read_keys, session))


def _read_keys(session: GithubSession, repo: Repository) -> list[DeployKey]:
    return session.each(lambda: session.client().get_repo(repo.full_name).get_keys(), _key,
                        what=f"the deploy keys of {repo.full_name}", needs=REPO_ADMIN)


def _key(key: RepositoryKey) -> DeployKey:
    # attributes, not raw_data: the listing holds them all, and raw_data would fetch each key
    return DeployKey(id=int(key.id), title=str(key.title or ""), read_only=bool(key.read_only),
                     created_at=_iso(key.created_at), last_used=_iso(key.last_used))


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


@check(id="github.repo.deploy_keys_read_only", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_deploy_keys,
       remediation="Replace deploy keys that can write with read-only ones (Settings > Deploy "
                   "keys: untick 'Allow write access'); a job that must push uses a GitHub "
                   "App's short-lived token instead.")
def deploy_keys_read_only(entries: list[RepoItems[DeployKey]]) -> Iterator[Result]:
    """No deploy key can push to the repository."""
    for entry in entries:
        skipped = unread(entry, "the deploy keys")
        if skipped is not None:
            yield skipped
            continue
        keys = entry.items or ()
        writers = [k for k in keys if not k.read_only]
        name = entry.repo.full_name
        if not keys:
            title = f"Repository {name} has no deploy keys"
        elif writers:
            title = (f"Repository {name} has {len(writers)} deploy key(s) that can push: "
                     + ", ".join(k.title or str(k.id) for k in writers))
        else:
            title = f"Every deploy key of repository {name} is read-only"
        yield Result.of(entry.repo.resource_id, passing=not writers, title=title,
                        data={"repository": name, "deploy_keys": [k.as_data() for k in keys],
                              "write_access": [k.id for k in writers]})
