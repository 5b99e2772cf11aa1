"""IAM policy documents (identity and bucket policies): their statements, read the way IAM does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote


def as_list(value: Any) -> list[Any]:
    """A policy element as a list: IAM accepts a single value or a list almost everywhere."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def parse_document(document: Any) -> dict[str, Any]:
    """A policy document as a dict; IAM answers URL-encoded JSON where boto3 did not decode it."""
    if isinstance(document, Mapping):
        return dict(document)
    text = str(document)
    try:
        return dict(json.loads(text))
    except ValueError:
        return dict(json.loads(unquote(text)))


def statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The document's statements (a lone statement object counts as a list of one)."""
    if not document:
        return []
    return [dict(s) for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def is_everyone(principal: Any) -> bool:
    """Whether a statement's Principal is anyone at all (`*` or `{"AWS": "*"}`)."""
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))
