"""What every surface of the API shares: the error body, the reply type, query models, paging
and id types, and the `org_id` path of the seed 002 routes."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Response
from pydantic import BaseModel, Field

from api.fields import text

Reply = dict[str, Any] | tuple[dict[str, Any], int] | Response
"""What a view returns: a JSON body, or a body and a status (evaluated by flask-openapi3)."""


def json_reply(body: BaseModel, status: int = 200) -> Response:
    """A response model serialized by pydantic itself (its Rust encoder: for large pages,
    several times cheaper than a dict through Flask's json)."""
    return Response(body.model_dump_json(), status=status, mimetype="application/json")


def dump(model: BaseModel) -> dict[str, Any]:
    """A response model as a JSON-ready dict (dates as ISO 8601 strings)."""
    return model.model_dump(mode="json")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """Every error the API answers: a stable `code` and a message a person can act on."""

    success: bool = False
    error: ErrorDetail


MAX_ID = 2**63 - 1
ConnectorId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$",
                                   description="A catalog integration id, e.g. `aws`")]
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class QueryModel(BaseModel):
    """A query-string model: flask-openapi3 asks for its JSON schema on every request, so the
    default one is computed once per class."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:
            return super().model_json_schema(*args, **kwargs)
        cached: dict[str, Any] | None = cls.__dict__.get("_default_json_schema")
        if cached is None:
            cached = super().model_json_schema()
            setattr(cls, "_default_json_schema", cached)  # noqa: B010
        return cached


ORG_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


class OrgPath(BaseModel):
    """`/orgs/{org_id}/…`: the caller's own account (else 403 not_a_member)."""

    org_id: str = text(64, min_length=1, pattern=ORG_ID_PATTERN)
