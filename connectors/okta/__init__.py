"""Okta: the Okta connector and the checks it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from connectors.base import AuthType, Category, ConfigParam, Connector, RetryPolicy
from connectors.okta import admins, factors, passwords, policies, users
from connectors.okta.session import OktaApi, OktaCredentials, OktaSession, OktaSettings, Scope

__all__ = ["OktaConnector", "OktaCredentials", "OktaSession", "OktaSettings"]


def _param(name: str, description: str) -> ConfigParam:
    return ConfigParam(name, description, default=OktaSettings.model_fields[name].default)


class OktaConnector(Connector):
    """One Okta org, read with an API token or an OAuth 2.0 service app (read-only scopes)."""

    id = "okta"
    control_mappings = Path(__file__).with_name("mappings.yaml")
    name = "Okta"
    category = Category.IDENTITY
    auth_type = AuthType.API_KEY  # or, as the alternative credential form, an OAuth service app
    icon = "okta"
    description = ("Audits an Okta org: every active user's enrolled second factor "
                   "(phishing-resistant ones apart), global session rules and authentication "
                   "policies requiring MFA, authenticator enrollment, password length, "
                   "complexity, history and lockout, global session lifetime, inactive and "
                   "stuck users, and the number of super administrators.")
    credentials_model = OktaCredentials
    config_model = OktaSettings
    config_params = (
        _param("max_super_admins", "Most users that may hold Super Administrator."),
        _param("inactive_days", "Days without sign-in after which an active user fails."),
        _param("stuck_after_days",
               "Days a user may stay staged, pending, locked out or suspended."),
        _param("max_session_lifetime_minutes", "Longest allowed global session, in minutes."),
        _param("max_session_idle_minutes", "Longest allowed idle global session, in minutes."),
        _param("min_password_length", "Shortest password a password policy may allow."),
        _param("min_password_history", "Fewest previous passwords a policy must refuse again."),
        _param("max_lockout_attempts", "Most failed sign-ins before a policy locks the account."),
        _param("require_phishing_resistant_mfa",
               "Whether every active user must have a phishing-resistant factor (WebAuthn, "
               "U2F or FastPass); off: users without one are not applicable."),
    )
    checks = (
        policies.mfa_required,
        policies.mfa_enrollment,
        policies.signon_requires_mfa,
        passwords.password_min_length,
        passwords.password_complexity,
        passwords.password_history,
        passwords.password_lockout,
        policies.password_strength,  # deprecated alias of the four above, for one release
        policies.session_lifetime,
        factors.mfa_enrolled,
        factors.phishing_resistant_mfa,
        factors.mfa_for_everyone,
        users.inactive_users,
        users.stuck_users,
        admins.super_admin_count,
    )
    max_parallel = 4  # Okta's concurrent-request limit is per org and shared with its admins
    retry_policy = RetryPolicy(max_wait=60.0)
    """Okta's rate-limit windows are a minute long: a 429 waits for X-Rate-Limit-Reset."""

    def session(self) -> OktaSession:
        return OktaSession(cast(OktaCredentials, self.credentials), self.retry_policy,
                           endpoints=self.endpoints)

    def verify(self) -> dict[str, Any]:
        """Prove the credentials by listing one user; name the org and the auth mode."""
        session = self.session()

        async def one_user(api: OktaApi) -> None:
            await api.call("list users", Scope.USERS_READ,
                           lambda: api.client.list_users(limit=1))

        session.read(one_user)
        return {"orgUrl": session.org_url, "authMode": session.credentials.auth_mode.value}
