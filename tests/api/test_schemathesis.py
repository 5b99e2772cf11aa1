"""Schemathesis over every operation of the app's own /openapi.json, with every kind of token
(the account's JWT, an auditor's token, an API key of each scope) and real ids in the paths,
so deep paths are reached: no 5xx (but a 503 the operation documents for a feature left
unconfigured), no undocumented status, no answer outside its declared schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from engine.connections import ensure_account
from engine.db import _sender, session_factory, set_job_sender
from engine.evidence import Item, store_check_results
from engine.models import Connection, ConnectionStatus
from engine.models.audit import AuditorInvitation
from engine.settings import Settings
from engine.tokens import mint
from tests.audits.conftest import accepted_auditor, push_evidence

ACCOUNT = "acme"
BUCKET = "evidence-schemathesis"
SCOPES = ("read:evidence", "write:evidence", "read:*", "write:*")
EXAMPLES = 5
"""Examples per operation, mode and token: about a thousand requests in all."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def no_unplanned_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, but a 503 the operation documents (a feature this server is not configured
    for, such as OAuth without a client)."""
    if response.status_code < 500:
        return None
    documented = str(response.status_code) in case.operation.definition.raw["responses"]
    if response.status_code == 503 and documented:
        return None
    raise AssertionError(f"{case.operation.label} answered {response.status_code}: "
                         f"{response.text[:300]}")


CHECKS = [no_unplanned_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@dataclass
class World:
    """An account with something behind every id: tokens of every kind, and the real ids."""

    app: Any
    customer: dict[str, str]
    auditor: dict[str, str]
    keys: dict[str, dict[str, str]]
    ids: dict[str, str]

    def path_ids(self, path: str) -> dict[str, str]:
        ids = dict(self.ids)
        if path.startswith("/api/v1/custom-integrations"):
            ids["integration_id"] = ids["custom_integration_id"]
        return ids

    def tokens_for(self, path: str) -> list[dict[str, str]]:
        if path.startswith("/api/v1/auditor/"):
            return [self.auditor]
        if path.startswith("/api/v1/orgs/{org_id}/evidence"):
            return [self.customer, *self.keys.values()]
        return [self.customer]


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    return resp.get_json()


@pytest.fixture
def world(settings: Settings, db: None, moto_endpoint: str) -> Iterator[World]:
    from cli.wiring import api_app

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    cfg = settings.model_copy(update={
        "storage_endpoint_url": moto_endpoint, "storage_bucket": BUCKET,
        "storage_access_key_id": "testing",
        "storage_secret_access_key": SecretStr("testing-secret"),
        "rate_limit": "100000/minute", "auth_rate_limit": "100000/minute"})
    app = api_app(cfg)
    saved = list(_sender)
    set_job_sender(lambda job: None)  # connect and sync jobs are dropped, never run
    client = app.test_client()
    customer = bearer(mint(cfg, ACCOUNT))

    with session_factory(cfg)() as s, s.begin():
        ensure_account(s, ACCOUNT)
        conn = Connection(account_id=ACCOUNT, integration_id="aws",
                          status=ConnectionStatus.ACTIVE)
        s.add(conn)
        s.flush()
        store_check_results(s, account_id=ACCOUNT, connection_id=conn.id,
                            check_id="aws.s3.bucket_versioning",
                            items=[Item.of("arn:aws:s3:::logs", "aws.s3.bucket", "passing",
                                           "logs keeps versions", {"ok": True})],
                            run_id=None, now=conn.created_at)
    pushed = push_evidence(cfg, control_id="CC6.1", content=b"quarterly access review")
    custom = ok(client.post("/api/v1/custom-integrations", headers=customer, json={
        "name": "Syslog", "shortName": "syslog", "integrationType": "FORWARDER"}), 201)
    conf = ok(client.post("/api/v1/integration-confs", headers=customer, json={
        "integration": {"id": custom["id"]}, "confName": "host", "confValue": "10.0.0.1"}),
        201)
    keys = {scope: bearer(ok(client.post(f"/api/v1/orgs/{ACCOUNT}/api-keys", headers=customer,
                                         json={"name": scope, "scopes": [scope]}), 201)["key"])
            for scope in SCOPES}
    victim_key = ok(client.post(f"/api/v1/orgs/{ACCOUNT}/api-keys", headers=customer,
                                json={"name": "victim", "scopes": ["read:*"]}), 201)["id"]
    audit = ok(client.post("/api/v1/audits", headers=customer, json={
        "framework_id": "soc2", "type": "type_ii", "title": "Annual",
        "period_start": "2026-01-01", "period_end": "2026-07-01"}), 201)["data"]
    auditor = accepted_auditor(cfg, audit["id"])
    accepted_auditor(cfg, audit["id"], "victim@firm.example")
    with session_factory(cfg)() as s:
        victim_auditor = s.scalars(select(AuditorInvitation.id).where(
            AuditorInvitation.email == "victim@firm.example")).one()
    request = ok(client.post("/api/v1/auditor/evidence-requests", headers=auditor, json={
        "control_id": "CC6.1", "description": "The access review"}), 201)["data"]
    finding = ok(client.post("/api/v1/auditor/findings", headers=auditor, json={
        "control_id": "CC6.1", "severity": "minor", "title": "t", "description": "d"}),
        201)["data"]
    evidence = ok(client.get("/api/v1/integrations/aws/evidence", headers=customer))
    assert evidence["total"] == 1

    yield World(app=app, customer=customer, auditor=auditor, keys=keys, ids={
        "org_id": ACCOUNT, "integration_id": "aws", "custom_integration_id": str(custom["id"]),
        "conf_id": str(conf["id"]), "evidence_id": pushed.id, "key_id": victim_key,
        "audit_id": audit["id"], "request_id": request["id"], "auditor_id": victim_auditor,
        "control_id": "CC6.1", "finding_id": finding["id"]})
    _sender[:] = saved


def last_if_destructive(operation: Any) -> tuple[bool, bool, str]:
    """Deletes and completing the audit run last (the custom integration's delete, which takes
    its parameters along, after theirs), so the ids stay real for the others."""
    return (operation.method == "delete" or operation.path.endswith("/complete"),
            operation.path.startswith("/api/v1/custom-integrations/"), operation.label)


def exercise(operation: Any, world: World, headers: dict[str, str],
             mode: GenerationMode) -> None:
    """Generated requests for one operation with one token; positive ones on the real ids."""
    real = world.path_ids(operation.path)

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=True, suppress_health_check=list(HealthCheck))
    def send(case: Any) -> None:
        if mode is GenerationMode.POSITIVE and case.path_parameters:
            case.path_parameters = {name: real.get(name, value)
                                    for name, value in case.path_parameters.items()}
        if operation.path.endswith(("/connect", "/sync")):
            case.query = {**(case.query or {}), "wait": 0}
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    send()


def modes_of(operation: Any) -> tuple[GenerationMode, ...]:
    """Negative requests need something to get wrong: an operation without parameters or a
    body (the ledger's public key) has no invalid form, so it is sent valid requests only."""
    raw = operation.definition.raw
    if raw.get("parameters") or raw.get("requestBody"):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


def test_no_request_breaks_the_api(world):
    """Valid and invalid requests to every operation, with every kind of token."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", world.app)
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=last_if_destructive)
    assert len(operations) >= 50
    kinds = set()
    for operation in operations:
        for headers in world.tokens_for(operation.path):
            kinds.add(headers["Authorization"])
            for mode in modes_of(operation):
                exercise(operation, world, headers, mode)
    assert len(kinds) == 2 + len(SCOPES)
