"""The OpenAPI 3.1 document is generated from the pydantic models, complete, browsable at
/docs, and says what a request may carry; the API keeps to it (schemathesis over every
operation, with every kind of token: tests/api/test_schemathesis.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel


def test_the_document_is_openapi_3_1_and_declares_every_operation(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    ours = {p: item for p, item in doc["paths"].items()
            if p.startswith(("/api/v1/integrations", "/api/v1/custom-integrations",
                             "/api/v1/integration-confs"))}
    assert len([op for item in ours.values() for op in item]) == 19
    for path, item in ours.items():
        for method, op in item.items():
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok, (method, path)
            for code in ok:
                assert op["responses"][code]["content"]["application/json"]["schema"], (
                    method, path, code)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
            if method in ("post", "put") and not path.endswith("/sync") and not path.endswith(
                    "/disconnect"):
                assert op["requestBody"]["content"]["application/json"]["schema"], (
                    method, path)
            if path != "/api/v1/integrations/callback":
                assert op["security"] == [{"bearer": []}], (method, path)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "ValidationErrorModel" not in doc["components"]["schemas"]


def test_docs_are_browsable(client):
    assert client.get("/docs").headers["Location"].endswith("/docs/swagger")
    page = client.get("/docs/swagger/")
    page = page if page.status_code == 200 else client.get("/docs/swagger")
    assert page.status_code == 200 and b"swagger" in page.data.lower()
    assert client.get("/docs/openapi.json").get_json()["openapi"].startswith("3.1")


@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/api/v1/nothing-here", 404, "not_found"),
    ("PATCH", "/api/v1/integrations", 405, "method_not_allowed"),
    ("PUT", "/api/v1/integrations/aws/sync", 405, "method_not_allowed"),
    ("DELETE", "/api/v1/custom-integrations", 405, "method_not_allowed"),
])
def test_unknown_routes_and_methods_answer_json(client, auth, method, path, status, code):
    resp = client.open(path, method=method, headers=auth)
    assert resp.status_code == status
    assert resp.is_json and resp.get_json()["error"]["code"] == code
    if status == 405:
        assert resp.headers["Allow"]


# --- what a request may carry (issue #15 item 6) ------------------------------------------

def request_strings(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string schema a request can carry (parameters and JSON bodies), with where."""
    schemas = doc["components"]["schemas"]

    def walk(where: str, schema: dict[str, Any], seen: frozenset[str]) -> Iterator[
            tuple[str, dict[str, Any]]]:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                yield from walk(where, schemas[name], seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(schema.get(key, [])):
                yield from walk(f"{where}|{i}", sub, seen)
        if schema.get("type") == "string":
            yield where, schema
        for name, sub in schema.get("properties", {}).items():
            yield from walk(f"{where}.{name}", sub, seen)
        if isinstance(schema.get("items"), dict):
            yield from walk(f"{where}[]", schema["items"], seen)

    for path, item in doc["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                yield from walk(f"{method} {path} {p['in']}:{p['name']}", p["schema"],
                                frozenset())
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                yield from walk(f"{method} {path} body", body["schema"], frozenset())


def test_every_request_string_is_bounded_and_refuses_nul(client):
    """The one rule for text that reaches Postgres, checked on the document: every string a
    request carries has a length bound (maxLength, or an anchored pattern without unbounded
    repetition) and a pattern that refuses NUL (a pattern also refuses a lone surrogate:
    pydantic-core matches it in Rust)."""
    doc = client.get("/openapi.json").get_json()
    loose = []
    for where, schema in request_strings(doc):
        if "enum" in schema or "const" in schema or schema.get("format") in (
                "date-time", "date"):
            continue
        pattern = schema.get("pattern")
        bounded = "maxLength" in schema or (pattern is not None and bounded_pattern(pattern))
        if not bounded or pattern is None or re.search(pattern, "a\x00b"):
            loose.append(where)
    assert not loose, loose


def bounded_pattern(pattern: str) -> bool:
    """An anchored pattern without unbounded repetition (`*`, `+`, `{n,}`) bounds length."""
    return (pattern.startswith("^") and pattern.endswith("$")
            and not re.search(r"(?<!\\)[*+]|\{\d+,\}", pattern))


def test_request_booleans_and_pages_are_bounded(client):
    doc = client.get("/openapi.json").get_json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                schema = p["schema"]
                if p["name"] in ("offset", "limit"):
                    assert schema.get("maximum", 2**63) < 2**63 and schema.get(
                        "minimum") is not None, (method, path, p["name"])


def test_every_api_model_has_its_own_name():
    """The document keys schemas by class name: two models of one name document one shape
    for both (GET /orgs/{org}/evidence once showed the auditor's PushedOut)."""
    import api  # noqa: F401 - every blueprint imported

    def subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    names: dict[str, set[str]] = {}
    for model in subclasses(BaseModel):
        if model.__module__.startswith("api."):
            names.setdefault(model.__name__, set()).add(model.__module__)
    assert {n: m for n, m in names.items() if len(m) > 1} == {}


def test_pushed_evidence_list_is_documented_as_served(client, auth, settings):
    """GET /orgs/{org}/evidence answers what the document says, field for field."""
    from jsonschema import Draft202012Validator

    from tests.audits.conftest import push_evidence

    push_evidence(settings, control_id="CC6.1", content=b"access review")
    doc = client.get("/openapi.json").get_json()
    op = doc["paths"]["/api/v1/orgs/{org_id}/evidence"]["get"]
    schema = {**op["responses"]["200"]["content"]["application/json"]["schema"],
              "components": doc["components"]}
    ref = schema.pop("$ref")
    schema["allOf"] = [{"$ref": ref}]
    body = client.get("/api/v1/orgs/acme/evidence", headers=auth).get_json()
    assert body["total"] == 1
    Draft202012Validator(schema).validate(body)
    item = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["evidence"]
    documented = doc["components"]["schemas"][item["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(documented["properties"]) == set(body["evidence"][0])


# --- one naming rule for fields (docs/DEVELOPING.md, "Naming API fields") -----------------

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

SEED_FIXED: dict[str, set[str]] = {
    # Seed 000 (integrations), field for field.
    "IntegrationOut": {"authType", "lastSync"},
    "ConnectOut": {"connectionId"},
    "SyncAccepted": {"evidenceCount"},
    "SyncResult": {"evidenceCount"},
    "ControlsOut": {"controlMappings", "controlResults"},
    "ControlMappingOut": {"controlId", "frameworkId", "controlName"},
    "ControlResultOut": {"controlId", "frameworkId", "controlName"},
    "OAuthUrlOut": {"authUrl"},
    # Seed 003 (custom integrations and their parameters), field for field; ModuleIn takes
    # back the seed's `module` object.
    "CustomIntegrationIn": {"shortName", "integrationType"},
    "CustomIntegrationUpdate": {"shortName", "integrationType"},
    "CustomIntegrationOut": {"shortName", "integrationType"},
    "ModuleOut": {"needsRestart"},
    "ModuleIn": {"needsRestart"},
    "ConfIn": {"confName", "confValue", "confDescription"},
    "ConfUpdate": {"confName", "confValue", "confDescription"},
    "ConfOut": {"confName", "confValue", "confDescription"},
}

EXCEPTIONS: dict[str, set[str]] = {
    # camelCase that no seed fixes: fields added beside a seed's camelCase ones before the rule
    # was written. They are public API and stay; nothing new joins this list.
    "IntegrationOut": {"evidenceCount"},  # the seed's list says "evidence count", no field
    "OAuthUrlOut": {"expiresAt"},
    "DisconnectOut": {"connectionId", "cancelledRuns", "evidenceKept", "credentialsRevoked"},
    "RunOut": {"connectionId", "evidenceCount", "changedCount", "queuedAt", "startedAt",
               "finishedAt"},
    # The seed gives GET …/status no response shape; `syncFrequency` even answers what the
    # seed's connect request names `sync_frequency`.
    "StatusOut": {"integrationId", "connectionId", "statusMessage", "syncFrequency",
                  "lastSync", "nextSync", "connectedAt", "disconnectedAt", "needsRestart",
                  "syncHistory"},
    "IntegrationRefOut": {"connectionId"},  # seed 003's integration object has id and name
    "query parameter of GET /api/v1/integration-confs": {"integrationId"},
}


def field_names(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, name) for every property of every schema and every operation parameter."""
    for schema_name, schema in doc["components"]["schemas"].items():
        for name in schema.get("properties", {}):
            yield schema_name, name
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                yield f"{p['in']} parameter of {method.upper()} {path}", p["name"]


def test_every_field_is_snake_case_unless_a_seed_fixes_it(client):
    """Seed shapes where a seed fixes them, snake_case everywhere else: a new camelCase field
    fails here unless its seed names it (then it goes in SEED_FIXED, with the seed)."""
    doc = client.get("/openapi.json").get_json()
    found = list(field_names(doc))
    outside = sorted(f"{where}.{name}" for where, name in found
                     if not SNAKE_CASE.match(name)
                     and name not in SEED_FIXED.get(where, set()) | EXCEPTIONS.get(where, set()))
    assert not outside, outside
    listed = {(where, name) for table in (SEED_FIXED, EXCEPTIONS)
              for where, names in table.items() for name in names}
    assert listed - set(found) == set(), "the lists name fields the document no longer has"
