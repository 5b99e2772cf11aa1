"""Custom integrations and their configuration parameters (seed 003, field for field: `shortName`,
`integrationType`, `confName`, `confValue`, `confDescription`, `module.needsRestart`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.fields import Flag, text
from api.schemas.common import ConnectorId, DbId, QueryModel
from engine.configuration import OwnerState, shown_value
from engine.models.integrations import ConfigParameter, CustomIntegration, IntegrationType


class ModuleOut(BaseModel):
    needsRestart: bool


class CustomIntegrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = text(200, min_length=1)
    shortName: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                           description="Short identifier, unique in the account")
    description: str | None = text(4000, default=None)
    integrationType: IntegrationType
    active: Flag = True


class ModuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    needsRestart: Flag = Field(description="false acknowledges a configuration change")


class CustomIntegrationUpdate(CustomIntegrationIn):
    id: DbId
    module: ModuleIn | None = None


class CustomIntegrationPath(BaseModel):
    integration_id: DbId


class CustomIntegrationOut(BaseModel):
    id: int
    name: str
    shortName: str
    description: str | None
    integrationType: IntegrationType
    active: bool
    module: ModuleOut | None = Field(description="null until a parameter changes")


class CustomIntegrationList(BaseModel):
    success: bool = True
    integrations: list[CustomIntegrationOut]


class Deleted(BaseModel):
    success: bool = True
    message: str


OwnerRef = Annotated[DbId | ConnectorId, Field(
    description="A custom integration's numeric id, or a connected catalog integration's id")]


class IntegrationRef(BaseModel):
    id: OwnerRef


class ConfIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    integration: IntegrationRef
    confName: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
    confValue: str = text(8192)
    confDescription: str | None = text(2000, default=None)
    secret: Flag | None = Field(None, description="Write-only value, answered masked (default: "
                                "as the connector declares, or when the name says secret, "
                                "password, token, key or credential)")


class ConfUpdate(ConfIn):
    id: DbId
    integration: IntegrationRef | None = None  # type: ignore[assignment]


class ConfPath(BaseModel):
    conf_id: DbId


class ConfListQuery(QueryModel):
    integrationId: str = Field(pattern=r"^([1-9][0-9]{0,17}|[a-z][a-z0-9_]{1,63})$",
                               description="A custom integration id or a catalog integration id")

    @property
    def ref(self) -> int | str:
        return int(self.integrationId) if self.integrationId.isdigit() else self.integrationId


class IntegrationRefOut(BaseModel):
    id: int | str
    name: str
    connectionId: str | None = None
    module: ModuleOut | None


class ConfOut(BaseModel):
    id: int
    integration: IntegrationRefOut
    confName: str
    confValue: str = Field(description="`********` for a secret")
    confDescription: str | None
    secret: bool


class ConfList(BaseModel):
    success: bool = True
    integration: IntegrationRefOut
    confs: list[ConfOut]


class ConfDeleted(Deleted):
    integration: IntegrationRefOut


def module_out(needs_restart: bool | None) -> ModuleOut | None:
    return None if needs_restart is None else ModuleOut(needsRestart=needs_restart)


def custom_integration_out(row: CustomIntegration) -> CustomIntegrationOut:
    return CustomIntegrationOut(
        id=row.id, name=row.name, shortName=row.short_name, description=row.description,
        integrationType=row.integration_type, active=row.active,
        module=module_out(row.needs_restart if row.config_changed_at is not None else None))


def owner_out(state: OwnerState) -> IntegrationRefOut:
    conn = state.owner.connection
    return IntegrationRefOut(id=state.owner.ref, name=state.owner.name,
                             connectionId=conn.id if conn else None,
                             module=module_out(state.needs_restart))


def conf_out(param: ConfigParameter, owner: IntegrationRefOut) -> ConfOut:
    return ConfOut(id=param.id, integration=owner, confName=param.name,
                   confValue=shown_value(param), confDescription=param.description,
                   secret=param.is_secret)
