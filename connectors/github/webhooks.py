"""Repository webhooks: every delivery signed with a secret and sent over verified TLS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from github.Hook import Hook

from connectors.base import Result, Severity, check, collector
from connectors.github.repos import RepoItems, Repository, each_repository, unread
from connectors.github.session import REPO_ADMIN, GithubSession


@dataclass(frozen=True)
class Webhook:
    """One repository webhook as GET /repos/{o}/{r}/hooks shows it (the secret masked)."""

    id: int
    url: str  # scheme, host and path only: a query string may carry a token
    active: bool
    has_secret: bool  # GitHub shows a set secret as "********"
    insecure_ssl: bool  # config.insecure_ssl "1": certificates are not verified

    @property
    def uses_verified_tls(self) -> bool:
        return self.url.startswith("https://") and not self.insecure_ssl

    def as_data(self) -> dict[str, object]:
        return {"id": self.id, "url": self.url, "active": self.active,
                "secret_set": self.has_secret, "insecure_ssl": self.insecure_ssl}


@collector()
def collect_webhooks(session: GithubSession) -> list[RepoItems[Webhook]]:
    """The webhooks of every active repository (admins only)."""
    return each_repository(session, partial(_read_hooks, session))


def _read_hooks(session: GithubSession, repo: Repository) -> list[Webhook]:
    return session.each(lambda: session.client().get_repo(repo.full_name).get_hooks(), _webhook,
                        what=f"the webhooks of {repo.full_name}", needs=REPO_ADMIN)


def _webhook(hook: Hook) -> Webhook:
    config = dict(hook.config or {})
    url = urlsplit(str(config.get("url") or ""))
    host = url.netloc.rpartition("@")[2]  # never a user:password@ part
    return Webhook(id=int(hook.id), url=f"{url.scheme}://{host}{url.path}",
                   active=bool(hook.active), has_secret=bool(config.get("secret")),
                   insecure_ssl=str(config.get("insecure_ssl", "0")) not in ("0", ""))


def _judge(entries: list[RepoItems[Webhook]], ok: str, bad: str, *,
           holds: str) -> Iterator[Result]:
    for entry in entries:
        skipped = unread(entry, "the webhooks")
        if skipped is not None:
            yield skipped
            continue
        hooks = entry.items or ()
        failing = [h for h in hooks if not getattr(h, holds)]
        name = entry.repo.full_name
        if not hooks:
            title = f"Repository {name} has no webhooks"
        elif failing:
            title = f"Repository {name} has {len(failing)} webhook(s) {bad}: " + ", ".join(
                h.url for h in failing)
        else:
            title = f"Every webhook of repository {name} {ok}"
        yield Result.of(entry.repo.resource_id, passing=not failing, title=title,
                        data={"repository": name, "webhooks": [h.as_data() for h in hooks],
                              "failing": [h.id for h in failing]})


@check(id="github.repo.webhooks_have_secret", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_webhooks,
       remediation="Give every webhook a secret (Settings > Webhooks > Edit > Secret) and have "
                   "the receiver verify the X-Hub-Signature-256 header.")
def webhooks_have_secret(entries: list[RepoItems[Webhook]]) -> Iterator[Result]:
    """Every webhook signs its deliveries with a secret, so receivers can reject forgeries."""
    yield from _judge(entries, "signs its deliveries with a secret", "without a secret",
                      holds="has_secret")


@check(id="github.repo.webhooks_use_verified_tls", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_webhooks,
       remediation="Point every webhook at an https:// URL and keep 'Enable SSL verification' "
                   "on (Settings > Webhooks > Edit).")
def webhooks_use_verified_tls(entries: list[RepoItems[Webhook]]) -> Iterator[Result]:
    """Every webhook delivers over https with the receiver's certificate verified."""
    yield from _judge(entries, "delivers over https with certificate verification",
                      "over plain http or without certificate verification",
                      holds="uses_verified_tls")
