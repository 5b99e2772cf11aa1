"""JSON bodies of the local GitHub server's settings endpoints, in GitHub's REST shapes: branch
protection, webhooks, deploy keys, commits and the workflow token's permissions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.github.kit.estate import Estate, Hook, Protection, Repo


def protection_json(url: str, rule: Protection) -> dict[str, Any]:
    """GET .../branches/{branch}/protection for a classic rule (off settings as GitHub shows
    them: `{"enabled": false}`, or absent for reviews and status checks)."""
    body: dict[str, Any] = {
        "url": url,
        "required_signatures": {"url": f"{url}/required_signatures",
                                "enabled": rule.signed_commits},
        "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": rule.enforce_admins},
        "required_linear_history": {"enabled": rule.linear_history},
        "allow_force_pushes": {"enabled": rule.force_pushes},
        "allow_deletions": {"enabled": False},
        "block_creations": {"enabled": False},
        "required_conversation_resolution": {"enabled": rule.conversation_resolution},
        "lock_branch": {"enabled": False},
        "allow_fork_syncing": {"enabled": False},
    }
    if rule.status_checks:
        body["required_status_checks"] = {
            "url": f"{url}/required_status_checks", "strict": True,
            "contexts": list(rule.status_checks),
            "contexts_url": f"{url}/required_status_checks/contexts",
            "checks": [{"context": c, "app_id": 15368} for c in rule.status_checks],
        }
    if rule.approvals > 0:
        body["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": rule.dismiss_stale, "require_code_owner_reviews": False,
            "required_approving_review_count": rule.approvals,
            "require_last_push_approval": False,
        }
    return body


def hook_json(estate: Estate, repo: Repo, index: int, hook: Hook) -> dict[str, Any]:
    """One repository webhook; a set secret is shown masked, as GitHub does."""
    hook_id = 410_000 + 100 * estate.repos.index(repo) + index
    url = f"{estate.base_url}/repos/{estate.organization.login}/{repo.name}/hooks/{hook_id}"
    config: dict[str, Any] = {"content_type": "json", "url": hook.url,
                              "insecure_ssl": "1" if hook.insecure_ssl else "0"}
    if hook.secret:
        config["secret"] = "********"  # noqa: S105 - GitHub's mask, not a secret
    return {
        "type": "Repository", "id": hook_id, "name": "web", "active": hook.active,
        "events": ["push", "pull_request"], "config": config,
        "updated_at": "2025-01-10T08:00:00Z", "created_at": "2023-04-01T09:00:00Z",
        "url": url, "test_url": f"{url}/test", "ping_url": f"{url}/pings",
        "deliveries_url": f"{url}/deliveries",
        "last_response": {"code": 200, "status": "active", "message": "OK"},
    }


def key_json(estate: Estate, repo: Repo, index: int, title: str,
             read_only: bool) -> dict[str, Any]:
    """One deploy key (GitHub lists the public key, never a private one)."""
    key_id = 820_000 + 100 * estate.repos.index(repo) + index
    return {
        "id": key_id, "key": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{key_id:014d}",
        "url": f"{estate.base_url}/repos/{estate.organization.login}/{repo.name}/keys/{key_id}",
        "title": title, "verified": True, "created_at": "2024-02-01T10:00:00Z",
        "read_only": read_only, "added_by": "octo-admin", "last_used": "2025-01-09T07:00:00Z",
        "enabled": True,
    }


def commit_json(estate: Estate, repo: Repo, login: str, days_ago: int) -> dict[str, Any]:
    """A commit authored by `login` `days_ago` days before today's noon (UTC): a date that
    stays the same across syncs, as a real commit's does."""
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    when = (noon - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sha = hashlib.sha1(f"{repo.name}/{login}/{days_ago}".encode(),
                       usedforsecurity=False).hexdigest()
    api = f"{estate.base_url}/repos/{estate.organization.login}/{repo.name}"
    person = {"name": login, "email": f"{login}@users.noreply.github.com", "date": when}
    user = {"login": login, "id": 5_100_000, "type": "User", "site_admin": False,
            "url": f"{estate.base_url}/users/{login}"}
    return {
        "sha": sha, "node_id": f"C_kwDO{sha[:12]}", "url": f"{api}/commits/{sha}",
        "html_url": f"https://github.com/{estate.organization.login}/{repo.name}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "commit": {"author": person, "committer": person, "message": "Update",
                   "tree": {"sha": sha, "url": f"{api}/git/trees/{sha}"},
                   "url": f"{api}/git/commits/{sha}", "comment_count": 0,
                   "verification": {"verified": False, "reason": "unsigned",
                                    "signature": None, "payload": None}},
        "author": user, "committer": user, "parents": [],
    }


def workflow_json(estate: Estate, repo: Repo | None = None) -> dict[str, Any]:
    """GET /orgs/{org}/actions/permissions/workflow, or a repository's (its own setting, else
    the organization's)."""
    default = ((repo.workflow_permissions if repo is not None else None)
               or estate.organization.default_workflow_permissions)
    return {"default_workflow_permissions": default, "can_approve_pull_request_reviews": False}
