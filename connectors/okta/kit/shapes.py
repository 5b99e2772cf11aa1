"""The Okta API's JSON shapes the acme estate is written in: ids, timestamps, links, role
assignments, policies and rules (as the okta SDK's models accept them)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any


def okta_id(prefix: str, name: str) -> str:
    """A stable 20-character Okta-style id (`00u…` users, `00p…` policies, `0pr…` rules)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    number = int(digest, 16)
    tail = ""
    while len(tail) < 20 - len(prefix):
        number, index = divmod(number, len(alphabet))
        tail += alphabet[index]
    return prefix + tail



def ago(now: datetime, days_ago: int | None) -> str | None:
    if days_ago is None:
        return None
    stamp = now - timedelta(days=days_ago, hours=1)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def links(org_url: str, path: str) -> dict[str, Any]:
    return {"self": {"href": f"{org_url}{path}"}}



def role_json(user_id: str, role: str, assignment: str, now: datetime,
               org_url: str) -> dict[str, Any]:
    rid = okta_id("ra1", f"{user_id}:{role}")
    body: dict[str, Any] = {
        "id": rid, "label": role.replace("_", " ").title(), "type": role, "status": "ACTIVE",
        "created": ago(now, 100), "lastUpdated": ago(now, 50), "assignmentType": assignment,
        "_links": {"assignee": {"href": f"{org_url}/api/v1/users/{user_id}"}},
    }
    if role == "CUSTOM":
        body |= {"label": "Access reviewers", "role": okta_id("cr0", "reviewers"),
                 "resource-set": okta_id("iam", "reviewers")}
    return body


def policy_json(policy_type: str, name: str, status: str, system: bool, priority: int,
                 now: datetime, org_url: str, settings: dict[str, Any] | None = None,
                 conditions: dict[str, Any] | None = None) -> dict[str, Any]:
    prefix = "rst" if policy_type == "ACCESS_POLICY" else "00p"
    pid = okta_id(prefix, f"{policy_type}:{name}")
    body: dict[str, Any] = {
        "id": pid, "status": status, "name": name, "description": f"{name} ({policy_type})",
        "priority": priority, "system": system, "type": policy_type,
        "created": ago(now, 300), "lastUpdated": ago(now, 20),
        "_links": links(org_url, f"/api/v1/policies/{pid}"),
    }
    if conditions is not None:
        body["conditions"] = conditions
    if settings is not None:
        body["settings"] = settings
    return body


def rule_json(policy_id: str, rule_type: str, name: str, priority: int, status: str,
               actions: dict[str, Any], now: datetime, org_url: str,
               conditions: dict[str, Any] | None = None) -> dict[str, Any]:
    prefix = "rul" if rule_type == "ACCESS_POLICY" else "0pr"
    rid = okta_id(prefix, f"{policy_id}:{name}")
    return {
        "id": rid, "status": status, "name": name, "priority": priority,
        "system": name in ("Default Rule", "Catch-all Rule"), "type": rule_type,
        "created": ago(now, 300), "lastUpdated": ago(now, 20),
        "conditions": conditions, "actions": actions,
        "_links": links(org_url, f"/api/v1/policies/{policy_id}/rules/{rid}"),
    }


EVERYONE = {"people": {"groups": {"include": [okta_id("00g", "Everyone")]}}}
