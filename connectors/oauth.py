"""OAuth 2.0 as the connector SDK describes it: how a provider grants access, the token answer
stored as credentials, and the hook that revokes a grant on disconnect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, SecretStr

from connectors.endpoints import LOCKED, EndpointPolicy

__all__ = ["OAuthClientCredentials", "OAuthSpec", "OAuthToken", "RevokeGrant"]


@dataclass(frozen=True)
class OAuthClientCredentials:
    """This deployment's OAuth client at a provider (EVIDENCE_OAUTH_CLIENTS), as a connector's
    `OAuthSpec.revoke` hook receives it."""

    client_id: str
    client_secret: SecretStr
    endpoints: EndpointPolicy = LOCKED
    """Where the hook may connect (the deployment's EVIDENCE_ALLOW_CUSTOM_ENDPOINTS): open its
    HTTP client through connectors.egress with it."""


RevokeGrant = Callable[[OAuthClientCredentials, BaseModel], bool]
"""Revoke a connection's grant at the provider: True when the provider confirmed it, False
when there is nothing of ours to revoke (a token the account made itself). A failure raises a
ConnectorError whose message names no secret; the engine logs it and still disconnects."""


@dataclass(frozen=True)
class OAuthSpec:
    """How a provider grants access by OAuth 2.0 (authorization code, PKCE S256 by default).

    The callback stores the provider's token answer as the connection's credentials, so a
    connector with an OAuthSpec uses `OAuthToken` (or a model accepting its fields) as its
    credentials_model. The client id and secret are deployment settings
    (EVIDENCE_OAUTH_CLIENTS), which may also override these URLs (an Okta org, GitHub
    Enterprise).
    """

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    revoke_url: str | None = None
    """An RFC 7009 revocation endpoint, used on disconnect when there is no `revoke` hook."""
    params: tuple[str, ...] = ()
    """Credentials fields the account gives with GET .../oauth-url (query parameters, e.g.
    GitHub's `organization`): validated there, kept sealed with the state, stored with the
    tokens."""
    revoke: RevokeGrant | None = None
    """How a provider without RFC 7009 revokes a grant on disconnect (GitHub's DELETE
    /applications/{client_id}/grant), given the client and the parsed credentials."""


class OAuthToken(BaseModel):
    """Credentials obtained through OAuth: what the token endpoint answered."""

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    token_type: str = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_at: int | None = None
    scope: str | None = None
