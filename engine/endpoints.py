"""The custom endpoint gate as the engine applies it: the SDK decides (connectors.endpoints),
the engine turns a refusal into a 422 at connect, refuses to open a connector on stored
endpoints the policy now refuses, and hands its policy to the connectors it opens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from connectors.base import Connector, ConnectorError
from connectors.endpoints import LOCKED, EndpointPolicy, endpoint_fields
from engine.errors import InvalidInput
from engine.settings import Settings

__all__ = ["check_config_endpoints", "check_endpoint_policy", "check_stored_endpoints",
           "endpoint_fields", "endpoint_policy"]

_OPEN = EndpointPolicy(allow_custom=True)


def endpoint_policy(settings: Settings) -> EndpointPolicy:
    """This deployment's endpoint policy (EVIDENCE_ALLOW_CUSTOM_ENDPOINTS)."""
    return _OPEN if settings.allow_custom_endpoints else LOCKED


def check_endpoint_policy(model: type[BaseModel], values: Mapping[str, Any],
                          settings: Settings, *, section: str = "credentials") -> None:
    """Refuse credentials (or, with section="config", configuration parameters) that point the
    engine at a host this deployment does not allow: 422 invalid_credentials / invalid_config,
    naming each field, before anything is written."""
    refused = endpoint_policy(settings).refusals(model, values)
    if refused:
        raise InvalidInput("; ".join(f"{section}.{r.field}: {r.message}" for r in refused),
                           code="invalid_config" if section == "config"
                           else "invalid_credentials",
                           fields=[{"field": r.field, "message": r.message} for r in refused])


def check_config_endpoints(cls: type[Connector], values: Mapping[str, Any],
                           settings: Settings) -> None:
    """The gate over a connection's configuration parameters (422 invalid_config)."""
    if cls.config_model is not None:
        check_endpoint_policy(cls.config_model, values, settings, section="config")


def check_stored_endpoints(cls: type[Connector], credentials: BaseModel,
                           config: Mapping[str, Any], settings: Settings) -> None:
    """Refuse to open a connector on stored credentials or parameters the deployment's policy
    now refuses (saved while EVIDENCE_ALLOW_CUSTOM_ENDPOINTS was on): a ConnectorError, so the
    verify or the run fails saying why, and no provider SDK is pointed at the endpoint."""
    policy = endpoint_policy(settings)
    refused = [("credentials", r) for r in policy.refusals(cls.credentials_model,
                                                           dict(credentials))]
    if cls.config_model is not None:
        refused += [("config", r) for r in policy.refusals(cls.config_model, config)]
    if refused:
        raise ConnectorError("; ".join(f"{section}.{r.field}: {r.message}"
                                       for section, r in refused), code="endpoint_refused")
