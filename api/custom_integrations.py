"""Custom integrations and configuration parameters (seed 003).

`/api/v1/custom-integrations` holds the integrations an account declares itself;
`/api/v1/integration-confs` holds the parameters of a custom integration (`integration.id`
numeric) or of a connected catalog integration (`integration.id` such as "aws"). Secret
values are write-only: answers show `********`.
"""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from api.auth import account_session, authenticate, settings
from api.schemas.common import ErrorBody, Reply
from api.schemas.custom_integrations import (
    ConfDeleted,
    ConfIn,
    ConfList,
    ConfListQuery,
    ConfOut,
    ConfPath,
    ConfUpdate,
    CustomIntegrationIn,
    CustomIntegrationList,
    CustomIntegrationOut,
    CustomIntegrationPath,
    CustomIntegrationUpdate,
    Deleted,
    conf_out,
    custom_integration_out,
    owner_out,
)
from engine import configuration as engine
from engine.configuration import IntegrationFields, ParameterFields

bp = APIBlueprint("custom_integrations", __name__, url_prefix="/api/v1",
                  abp_tags=[Tag(name="custom integrations")], abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 404: ErrorBody, 422: ErrorBody})
bp.before_request(authenticate)


def _fields(body: CustomIntegrationIn) -> IntegrationFields:
    return IntegrationFields(name=body.name, short_name=body.shortName,
                             description=body.description,
                             integration_type=body.integrationType, active=body.active)


@bp.post("/custom-integrations", responses={201: CustomIntegrationOut, 409: ErrorBody})
def create_custom_integration(body: CustomIntegrationIn) -> Reply:
    """Create an integration (its `shortName` is unique in the account)."""
    with account_session() as session:
        row = engine.create_custom_integration(session, _fields(body))
        return custom_integration_out(row).model_dump(), 201


@bp.get("/custom-integrations", responses={200: CustomIntegrationList})
def list_custom_integrations() -> Reply:
    """The account's custom integrations."""
    with account_session() as session:
        rows = engine.list_custom_integrations(session)
        return CustomIntegrationList(
            integrations=[custom_integration_out(r) for r in rows]).model_dump()


@bp.get("/custom-integrations/<integration_id>", responses={200: CustomIntegrationOut})
def get_custom_integration(path: CustomIntegrationPath) -> Reply:
    """One custom integration."""
    with account_session() as session:
        row = engine.get_custom_integration(session, path.integration_id)
        return custom_integration_out(row).model_dump()


@bp.put("/custom-integrations", responses={200: CustomIntegrationOut, 409: ErrorBody})
def update_custom_integration(body: CustomIntegrationUpdate) -> Reply:
    """Update the integration named by `id`; `module.needsRestart: false` acknowledges a
    configuration change."""
    with account_session() as session:
        row = engine.update_custom_integration(
            session, body.id, _fields(body),
            restart_done=body.module is not None and not body.module.needsRestart)
        return custom_integration_out(row).model_dump()


@bp.delete("/custom-integrations/<integration_id>", responses={200: Deleted})
def delete_custom_integration(path: CustomIntegrationPath) -> Reply:
    """Delete the integration and its configuration parameters."""
    with account_session() as session:
        engine.delete_custom_integration(session, path.integration_id)
    return Deleted(message=f"Integration {path.integration_id} deleted").model_dump()


def _param_fields(body: ConfIn) -> ParameterFields:
    return ParameterFields(name=body.confName, value=body.confValue,
                           description=body.confDescription, secret=body.secret)


@bp.post("/integration-confs", responses={201: ConfOut, 409: ErrorBody})
def create_conf(body: ConfIn) -> Reply:
    """Add a parameter; a connection re-syncs (`config_change`), a custom integration is
    flagged `needsRestart`."""
    with account_session() as session:
        param, owner = engine.create_parameter(session, body.integration.id,
                                               _param_fields(body), settings())
        return conf_out(param, owner_out(engine.owner_state(session, owner))).model_dump(), 201


@bp.get("/integration-confs", responses={200: ConfList})
def list_confs(query: ConfListQuery) -> Reply:
    """The parameters of one integration (secrets masked)."""
    with account_session() as session:
        params, owner = engine.list_parameters(session, query.ref)
        ref = owner_out(engine.owner_state(session, owner))
        return ConfList(integration=ref, confs=[conf_out(p, ref) for p in params]).model_dump()


@bp.get("/integration-confs/<conf_id>", responses={200: ConfOut})
def get_conf(path: ConfPath) -> Reply:
    """One parameter (a secret masked)."""
    with account_session() as session:
        param = engine.get_parameter(session, path.conf_id)
        owner = engine.owner_of(session, param)
        return conf_out(param, owner_out(engine.owner_state(session, owner))).model_dump()


@bp.put("/integration-confs", responses={200: ConfOut, 409: ErrorBody})
def update_conf(body: ConfUpdate) -> Reply:
    """Update the parameter named by `id`. Sending `********` as a secret's value keeps it.
    A changed name, value or secrecy marks the owner as needing a fresh sync or restart."""
    with account_session() as session:
        param, owner = engine.update_parameter(
            session, body.id, body.integration.id if body.integration else None,
            _param_fields(body), settings())
        return conf_out(param, owner_out(engine.owner_state(session, owner))).model_dump()


@bp.delete("/integration-confs/<conf_id>", responses={200: ConfDeleted})
def delete_conf(path: ConfPath) -> Reply:
    """Delete a parameter (a configuration change like any other)."""
    with account_session() as session:
        owner = engine.delete_parameter(session, path.conf_id, settings())
        ref = owner_out(engine.owner_state(session, owner))
    return ConfDeleted(message=f"Configuration {path.conf_id} deleted",
                       integration=ref).model_dump()
