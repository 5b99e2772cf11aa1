"""Custom integrations and configuration parameters (seed 003), for a scoped session.

A parameter belongs to a custom integration (referenced by its numeric id) or to a connected
catalog integration (referenced by its string id, e.g. "aws"). A change to a connection's
parameters records `config_changed_at` and requests a `config_change` sync; a change to a
custom integration's sets its `needs_restart` flag until the integration acknowledges it.
Secret values are sealed by the vault and never leave this module in clear except to the
connector that uses them (engine.connections.connection_parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.connections import connection_parameters, ensure_account, require_connection
from engine.endpoints import check_config_endpoints
from engine.errors import Conflict, InvalidInput, NotFound
from engine.integrations import needs_fresh_sync
from engine.models import Connection, ConnectionStatus, Trigger
from engine.models.integrations import ConfigParameter, CustomIntegration, IntegrationType
from engine.registry import get_connector
from engine.settings import Settings
from engine.sync import request_sync
from engine.tenancy import account_of
from engine.vault import vault

MASK = "********"
"""What answers show instead of a secret value; sending it back keeps the stored secret."""
SECRET_NAME = re.compile(r"secret|password|passwd|token|api[_-]?key|private[_-]?key|credential",
                         re.IGNORECASE)


# --- custom integrations ------------------------------------------------------------------


@dataclass(frozen=True)
class IntegrationFields:
    name: str
    short_name: str
    description: str | None
    integration_type: IntegrationType
    active: bool


def _short_name_taken(short_name: str) -> Conflict:
    return Conflict(f"an integration with shortName {short_name!r} already exists; "
                    "choose another shortName or update that one", code="short_name_taken")


def _flush_unique(session: Session, short_name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _short_name_taken(short_name) from None


def create_custom_integration(session: Session, fields: IntegrationFields) -> CustomIntegration:
    account_id = account_of(session)
    ensure_account(session, account_id)
    row = CustomIntegration(account_id=account_id, name=fields.name,
                            short_name=fields.short_name, description=fields.description,
                            integration_type=fields.integration_type, active=fields.active,
                            needs_restart=False)
    session.add(row)
    _flush_unique(session, fields.short_name)
    return row


def get_custom_integration(session: Session, integration_id: int) -> CustomIntegration:
    row = session.get(CustomIntegration, integration_id)
    if row is None:
        raise NotFound(f"no custom integration {integration_id}", code="integration_not_found")
    return row


def list_custom_integrations(session: Session) -> list[CustomIntegration]:
    return list(session.scalars(select(CustomIntegration).order_by(CustomIntegration.id)))


def update_custom_integration(session: Session, integration_id: int, fields: IntegrationFields,
                              restart_done: bool = False) -> CustomIntegration:
    """Replace the integration's fields; `restart_done` acknowledges a configuration change."""
    row = get_custom_integration(session, integration_id)
    row.name, row.short_name, row.description = fields.name, fields.short_name, fields.description
    row.integration_type, row.active = fields.integration_type, fields.active
    if restart_done:
        row.needs_restart = False
    row.updated_at = datetime.now(UTC)
    _flush_unique(session, fields.short_name)
    return row


def delete_custom_integration(session: Session, integration_id: int) -> None:
    """Delete the integration and its parameters."""
    row = get_custom_integration(session, integration_id)
    session.delete(row)
    session.flush()


# --- configuration parameters -------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """What a parameter configures: a connection or a custom integration."""

    connection: Connection | None = None
    custom: CustomIntegration | None = None

    @property
    def ref(self) -> int | str:
        if self.custom is not None:
            return self.custom.id
        assert self.connection is not None
        return self.connection.integration_id

    @property
    def name(self) -> str:
        if self.custom is not None:
            return self.custom.name
        assert self.connection is not None
        return get_connector(self.connection.integration_id).name


@dataclass(frozen=True)
class OwnerState:
    owner: Owner
    needs_restart: bool | None
    """None when nothing was ever changed on a custom integration (the seed's `module: null`)."""


def resolve_owner(session: Session, ref: int | str) -> Owner:
    if isinstance(ref, int):
        return Owner(custom=get_custom_integration(session, ref))
    return Owner(connection=require_connection(session, ref))


def owner_of(session: Session, param: ConfigParameter) -> Owner:
    if param.custom_integration_id is not None:
        return Owner(custom=get_custom_integration(session, param.custom_integration_id))
    assert param.connection_id is not None
    return Owner(connection=session.get_one(Connection, param.connection_id))


def owner_state(session: Session, owner: Owner) -> OwnerState:
    if owner.custom is not None:
        changed = owner.custom.config_changed_at is not None
        return OwnerState(owner, owner.custom.needs_restart if changed else None)
    assert owner.connection is not None
    return OwnerState(owner, needs_fresh_sync(session, owner.connection))


@dataclass(frozen=True)
class ParameterFields:
    name: str
    value: str
    description: str | None
    secret: bool | None
    """None: secret when the connector declares it so, or when the name says so."""


def _is_secret(owner: Owner, fields: ParameterFields) -> bool:
    if fields.secret is not None:
        return fields.secret
    if owner.connection is not None:
        declared = {p.name: p for p in get_connector(owner.connection.integration_id)
                    .config_params}
        if fields.name in declared:
            return declared[fields.name].secret
    return bool(SECRET_NAME.search(fields.name))


def _check_declared(owner: Owner, name: str) -> None:
    """A connection takes only the parameters its connector declares (and reads)."""
    if owner.connection is None:
        return
    cls = get_connector(owner.connection.integration_id)
    known = sorted(p.name for p in cls.config_params)
    if name not in known:
        listed = ", ".join(known) if known else "none"
        raise InvalidInput(f"{cls.id} has no configuration parameter {name!r} (it takes: "
                           f"{listed})", code="unknown_parameter",
                           fields=[{"field": "confName", "message": "not a parameter of "
                                    f"{cls.id}"}])


def _check_config(session: Session, owner: Owner, settings: Settings, *,
                  drop: str | None = None, put: tuple[str, str] | None = None) -> None:
    """Validate the connection's whole configuration as this change leaves it, against its
    connector's config_model: a bad value is 422 `invalid_config` now, not a failed sync.

    Call before changing any row (the read would flush them). A custom integration has no
    schema: its parameters are the integration's own business.
    """
    conn = owner.connection
    cls = get_connector(conn.integration_id) if conn is not None else None
    if conn is None or cls is None or cls.config_model is None:
        return
    params = connection_parameters(session, conn.id, vault(settings))
    if drop is not None:
        params.pop(drop, None)
    if put is not None:
        params[put[0]] = put[1]
    merged = {**conn.config, **params}
    cls.parse_config(merged)
    check_config_endpoints(cls, merged, settings)


def _set_value(param: ConfigParameter, value: str, secret: bool, settings: Settings) -> None:
    if secret:
        param.value, param.value_encrypted = None, vault(settings).seal({"value": value})
    else:
        param.value, param.value_encrypted = value, None
    param.is_secret = secret


def _current_value(param: ConfigParameter, settings: Settings) -> str:
    if param.value_encrypted is not None:
        value: str = vault(settings).open(param.value_encrypted)["value"]
        return value
    return param.value or ""


def mark_changed(session: Session, owner: Owner, now: datetime) -> None:
    """The owner's configuration changed: a connection re-syncs, a custom integration is
    flagged for restart."""
    if owner.custom is not None:
        owner.custom.needs_restart, owner.custom.config_changed_at = True, now
        return
    conn = owner.connection
    assert conn is not None
    conn.config_changed_at = now
    if conn.status in (ConnectionStatus.ACTIVE, ConnectionStatus.ERROR):
        request_sync(session, conn, Trigger.CONFIG_CHANGE)


def _duplicate(name: str) -> Conflict:
    return Conflict(f"a parameter named {name!r} already exists here; update it instead",
                    code="parameter_exists")


def _flush_param(session: Session, name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _duplicate(name) from None


def create_parameter(session: Session, ref: int | str, fields: ParameterFields,
                     settings: Settings) -> tuple[ConfigParameter, Owner]:
    owner = resolve_owner(session, ref)
    _check_declared(owner, fields.name)
    if fields.value == MASK:
        raise InvalidInput("confValue is the mask shown for secrets; send the real value",
                           code="invalid_request",
                           fields=[{"field": "confValue", "message": "the mask is not a value"}])
    _check_config(session, owner, settings, put=(fields.name, fields.value))
    param = ConfigParameter(
        account_id=account_of(session), name=fields.name, description=fields.description,
        connection_id=owner.connection.id if owner.connection else None,
        custom_integration_id=owner.custom.id if owner.custom else None)
    _set_value(param, fields.value, _is_secret(owner, fields), settings)
    session.add(param)
    _flush_param(session, fields.name)
    now = datetime.now(UTC)
    param.updated_at = now
    mark_changed(session, owner, now)
    return param, owner


def get_parameter(session: Session, param_id: int) -> ConfigParameter:
    param = session.get(ConfigParameter, param_id)
    if param is None:
        raise NotFound(f"no configuration parameter {param_id}", code="parameter_not_found")
    return param


def list_parameters(session: Session, ref: int | str) -> tuple[list[ConfigParameter], Owner]:
    owner = resolve_owner(session, ref)
    if owner.custom is not None:
        belongs = ConfigParameter.custom_integration_id == owner.custom.id
    else:
        assert owner.connection is not None
        belongs = ConfigParameter.connection_id == owner.connection.id
    stmt = select(ConfigParameter).where(belongs).order_by(ConfigParameter.name)
    return list(session.scalars(stmt)), owner


def update_parameter(session: Session, param_id: int, ref: int | str | None,
                     fields: ParameterFields, settings: Settings
                     ) -> tuple[ConfigParameter, Owner]:
    """Replace a parameter; only a change of name, value or secrecy counts as a change."""
    param = get_parameter(session, param_id)
    owner = owner_of(session, param)
    if ref is not None and ref != owner.ref:
        raise InvalidInput(f"parameter {param_id} belongs to integration {owner.ref}, not "
                           f"{ref}; a parameter cannot move", code="integration_mismatch",
                           fields=[{"field": "integration.id", "message": "not its owner"}])
    if fields.name != param.name:
        _check_declared(owner, fields.name)
    secret = _is_secret(owner, fields) if fields.secret is not None else param.is_secret
    keep_secret = fields.value == MASK
    if keep_secret and not param.is_secret:
        raise InvalidInput("confValue is the mask shown for secrets; send the real value",
                           code="invalid_request",
                           fields=[{"field": "confValue", "message": "the mask is not a value"}])
    if keep_secret and not secret:
        raise InvalidInput("send the value to make a secret parameter non-secret",
                           code="invalid_request",
                           fields=[{"field": "confValue", "message": "the mask is not a value"}])
    old_value = _current_value(param, settings)
    value = old_value if keep_secret else fields.value
    changed = (fields.name != param.name or value != old_value or secret != param.is_secret)
    if changed:
        _check_config(session, owner, settings, drop=param.name, put=(fields.name, value))
    param.name, param.description = fields.name, fields.description
    _set_value(param, value, secret, settings)
    _flush_param(session, fields.name)
    now = datetime.now(UTC)
    param.updated_at = now
    if changed:
        mark_changed(session, owner, now)
    return param, owner


def delete_parameter(session: Session, param_id: int, settings: Settings) -> Owner:
    param = get_parameter(session, param_id)
    owner = owner_of(session, param)
    _check_config(session, owner, settings, drop=param.name)
    session.delete(param)
    session.flush()
    mark_changed(session, owner, datetime.now(UTC))
    return owner


def shown_value(param: ConfigParameter) -> str:
    """A parameter's value as answers show it: secrets masked."""
    return MASK if param.is_secret else (param.value or "")
