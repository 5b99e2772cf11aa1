"""The request and response models of the API, one module per surface; blueprints declare none
of their own. The OpenAPI document keys schemas by class name, so every model has its own name
(tests/api/test_openapi.py).

    common               the error body, replies, query models, id types, `org_id` paths
    integrations         seed 000: catalog, connect, sync, evidence, controls, status, OAuth
    custom_integrations  seed 003: custom integrations and configuration parameters
    apikeys, push        seed 002: API keys and evidence push
    audits, auditor      seed 001: the customer and the auditor side of an audit
    ledger               the ledger's checkpoint-signing key and signed checkpoints

Field names are the seed's where a seed fixes the shape (seed 000's `connectionId` and
`sync_frequency`, seed 003's `confName`) and snake_case everywhere else (docs/DEVELOPING.md,
"Naming API fields"; tests/api/test_openapi.py lists today's exceptions).
"""
