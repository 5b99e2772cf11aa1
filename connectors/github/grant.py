"""GitHub: revoking the OAuth app's grant when a connection is disconnected.

GitHub does not implement RFC 7009. An OAuth app (or GitHub App) deletes a user's grant with
DELETE /applications/{client_id}/grant on the API host, authenticated by HTTP Basic with the
app's client id and secret and naming the token in a JSON body; GitHub answers 204, or 422 for
a token that is not (or no longer) valid. Deleting the grant deletes every token the app holds
for that user. A personal access token is the account's own, so it is never revoked here.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import quote

import requests
from pydantic import BaseModel

from connectors.base import ConnectorError, OAuthClientCredentials, ProviderUnavailable
from connectors.egress import requests_session
from connectors.github.session import API_URL, TIMEOUT_SECONDS, USER_AGENT, GithubCredentials

__all__ = ["grant_url", "revoke_grant"]

API_VERSION = "2022-11-28"


def grant_url(credentials: GithubCredentials, client_id: str) -> str:
    """The grant of `client_id` on the connection's API host (api.github.com or GHE's)."""
    return f"{credentials.base_url or API_URL}/applications/{quote(client_id, safe='')}/grant"


def revoke_grant(client: OAuthClientCredentials, credentials: BaseModel) -> bool:
    """Delete the OAuth grant behind the connection's access token (OAuthSpec.revoke).

    True when GitHub confirmed it (204); False for a personal access token, which is left
    alone. Any other answer raises a ConnectorError whose message names neither the token nor
    the client secret.
    """
    creds = cast(GithubCredentials, credentials)
    if creds.access_token is None:
        return False
    host = creds.base_url or API_URL
    try:
        with requests_session(client.endpoints) as http:  # base_url is the tenant's
            resp = http.delete(
                grant_url(creds, client.client_id),
                auth=(client.client_id, client.client_secret.get_secret_value()),
                json={"access_token": creds.access_token.get_secret_value()},
                headers={"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT,
                         "X-GitHub-Api-Version": API_VERSION},
                timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"could not reach GitHub at {host} to revoke the OAuth grant: "
                                  f"{exc.__class__.__name__}") from None
    status = resp.status_code
    if status == 204:
        return True
    if status == 422:
        raise ConnectorError("GitHub did not revoke the OAuth grant (HTTP 422): the token was "
                             "already revoked or has expired", github_status=status)
    if status in (401, 404):
        raise ConnectorError(f"GitHub did not revoke the OAuth grant (HTTP {status}): {host} "
                             "did not accept the app's client id and secret; check "
                             "EVIDENCE_OAUTH_CLIENTS", github_status=status)
    if status >= 500:
        raise ProviderUnavailable(f"GitHub is unavailable to revoke the OAuth grant "
                                  f"(HTTP {status})", github_status=status)
    raise ConnectorError(f"GitHub did not revoke the OAuth grant (HTTP {status})",
                         github_status=status)
