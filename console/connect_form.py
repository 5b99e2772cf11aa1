"""The connect form, generated from a connector's credentials model and config parameters.

Each pydantic field becomes one labelled input (its description is the help text); a
`SecretStr` is a password input whose value is never written back into the page. Submitted
values are turned back into the raw mapping the JSON API would receive, so the engine's
`connect` validates them exactly as it validates an API call.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import HttpUrl, SecretStr
from pydantic.fields import FieldInfo

from connectors.base import Connector

Kind = Literal["text", "password", "secret_text", "url", "number", "bool", "list"]
Section = Literal["credentials", "config", "oauth"]
OAUTH_TOKEN_FIELDS = frozenset({"access_token", "refresh_token", "token_type", "expires_at",
                                "scope"})
"""What the OAuth callback stores itself: never typed into the form."""
WORDS = {"id": "ID", "url": "URL", "api": "API", "json": "JSON", "cmek": "CMEK"}


@dataclass(frozen=True)
class FormField:
    section: Section
    key: str
    label: str
    help: str
    kind: Kind
    required: bool
    value: str = ""
    """What the person typed, shown again after a refusal (always empty for a secret)."""
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def dom_id(self) -> str:
        return f"field-{self.section}-{self.key}"

    @property
    def secret(self) -> bool:
        return self.kind in ("password", "secret_text")


@dataclass(frozen=True)
class ConnectForm:
    fields: list[FormField]
    frequency: str = "daily"
    problem: str | None = None
    """A refusal that names no field of the form."""
    errors: list[FormField] = field(default_factory=list)

    def section(self, section: Section) -> list[FormField]:
        return [f for f in self.fields if f.section == section]


def label_for(key: str) -> str:
    words = [WORDS.get(w, w) for w in key.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _bare(annotation: Any) -> Any:
    """The type under Optional[...] and Annotated[...]."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else str
        else:
            return annotation


def _kind(info: FieldInfo) -> Kind:
    bare = _bare(info.annotation)
    origin = get_origin(bare)
    if bare is SecretStr:
        desc = info.description or ""
        return "secret_text" if ("PEM" in desc or "JSON" in desc) else "password"
    if bare is bool:
        return "bool"
    if bare is int:
        return "number"
    if origin in (list, tuple, set) or bare in (list, tuple, set):
        return "list"
    if isinstance(bare, type) and issubclass(bare, HttpUrl):
        return "url"
    return "text"


def _field(section: Section, key: str, info: FieldInfo, help_text: str | None = None,
           required: bool | None = None) -> FormField:
    return FormField(section, key, label_for(key), help_text or info.description or "",
                     _kind(info), info.is_required() if required is None else required)


def blank_form(cls: type[Connector]) -> ConnectForm:
    """The empty form for a connector: its credentials, then its non-secret parameters (secret
    parameters are set through /api/v1/integration-confs, which seals them)."""
    skip = OAUTH_TOKEN_FIELDS if cls.oauth is not None else frozenset()
    fields = [_field("credentials", key, info)
              for key, info in cls.credentials_model.model_fields.items() if key not in skip]
    model = cls.config_model
    for param in cls.config_params:
        if param.secret:
            continue
        info = model.model_fields.get(param.name) if model is not None else None
        fields.append(_field("config", param.name, info or FieldInfo(annotation=str),
                             param.description, required=False))
    return ConnectForm(fields)


def oauth_fields(cls: type[Connector]) -> list[FormField]:
    """The parameters the OAuth button sends with the authorization request (GitHub's
    organization and Enterprise URL)."""
    declared = cls.oauth.params if cls.oauth is not None else ()
    return [_field("oauth", key, cls.credentials_model.model_fields[key])
            for key in declared if key in cls.credentials_model.model_fields]


def _value(kind: Kind, text: str) -> Any:
    if kind == "list":
        return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]
    if kind == "bool":
        return True
    return text if kind in ("password", "secret_text") else text.strip()


def read_form(form: ConnectForm,
              posted: Mapping[str, str]) -> tuple[ConnectForm, dict[str, dict[str, Any]]]:
    """The form as submitted (secrets blanked) and the raw values it gives, by section."""
    raw: dict[str, dict[str, Any]] = {"credentials": {}, "config": {}, "oauth": {}}
    shown = []
    for f in form.fields:
        text = posted.get(f.name, "")
        if f.kind == "bool":
            text = "true" if text else ""
        if text.strip():
            raw[f.section][f.key] = _value(f.kind, text)
        shown.append(replace(f, value="" if f.secret else text))
    return replace(form, fields=shown, frequency=posted.get("sync_frequency", "daily")), raw


PLAIN_WORDS = (
    ("String should match pattern", "This is not in the expected format: check it against "
                                    "the description above."),
    ("Field required", "Required."),
    ("URL input should be a string or URL", "Must be a URL, e.g. https://example.com."),
)


def plain(message: str) -> str:
    """A validation message in words a person acts on (pydantic's own for the rest)."""
    for start, words in PLAIN_WORDS:
        if message.startswith(start):
            return words
    return message


def with_errors(form: ConnectForm, section: Section, problems: Sequence[Mapping[str, Any]],
                message: str) -> ConnectForm:
    """The form with each refusal beside its field; one naming no field is the form's own."""
    by_key: dict[str, str] = {}
    for refused in problems:
        key = str(refused.get("field", "")).split(".")[0]
        by_key.setdefault(key, plain(str(refused.get("message", "is not valid"))))
    fields = [replace(f, error=by_key.get(f.key)) if f.section == section else f
              for f in form.fields]
    named = {f.key for f in fields if f.section == section and f.error}
    stray = [f"{label_for(k)}: {m}" if k else m for k, m in by_key.items() if k not in named]
    problem = "; ".join(stray) if stray else (None if named else message)
    return replace(form, fields=fields, problem=problem,
                   errors=[f for f in fields if f.error])
