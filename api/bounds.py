"""Bounds on every request body, whatever the route: its size (MAX_CONTENT_LENGTH, from
EVIDENCE_MAX_BODY_BYTES: 413 `body_too_large`) and its JSON nesting (400 `json_too_deep`,
counted on the raw bytes before the recursive parser sees them)."""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from engine.errors import BadRequest
from engine.settings import Settings

MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 for b in range(256)]


def json_depth(data: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets in strings not counted),
    without recursion: a bound on the work a parse will take."""
    openers = data.count(b"[") + data.count(b"{")
    if openers <= MAX_JSON_DEPTH:
        return openers
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing a document nested deeper than MAX_JSON_DEPTH before parsing it
    (json.loads recurses: 50,000 levels is a RecursionError)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        data = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
        if json_depth(data) > MAX_JSON_DEPTH:
            raise BadRequest(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels",
                             code="json_too_deep")
        return super().loads(s, **kwargs)


def bound_requests(app: Flask, settings: Settings) -> None:
    """Install the body size limit and the bounded JSON parser on `app`."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = BoundedJSONProvider(app)
