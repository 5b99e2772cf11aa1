"""The request and response models of the API, one module per surface; blueprints declare none
of their own. The OpenAPI document keys schemas by class name, so every model has its own name
(tests/api/test_openapi.py).

    common               the error body, replies, query models, id types, `org_id` paths
    integrations         seed 000: catalog, connect, sync, evidence, controls, status, OAuth
    custom_integrations  seed 003: custom integrations and configuration parameters
    apikeys, push        seed 002: API keys and evidence push
    audits, auditor      seed 001: the customer and the auditor side of an audit

Field names follow the seed that fixes the shape (camelCase in seeds 000 and 003, snake_case in
seeds 001 and 002) and are snake_case wherever no seed does (docs/DEVELOPING.md, "Naming").
"""
