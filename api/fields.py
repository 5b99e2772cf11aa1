"""Field types of request models: the one rule for what a request may carry into Postgres.

Text is bounded and has a pattern that excludes NUL (Postgres refuses it); a pattern also makes
pydantic-core match the string in Rust, which refuses a lone surrogate (`string_unicode`), so
no string a model accepts fails to encode later. Booleans and dates are strict (`0` is not
false, `0` is not 1970-01-01), and paging stays within what a bigint and a page can hold.
tests/api/test_openapi.py checks every request string of the generated document against this.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool

NO_NUL = r"^[^\x00]*$"
"""Any text but NUL (line breaks and tabs allowed)."""
LINE = r"^[^\x00-\x1f\x7f]*$"
"""One line: no control characters."""
MAX_OFFSET = 1_000_000_000
"""The deepest page offset any list accepts (a bigint holds it; nobody pages further)."""

Flag = StrictBool
"""`true` or `false`, never `0`, `1` or `"yes"`."""


def text(max_length: int, *, default: Any = ..., min_length: int = 0, pattern: str = NO_NUL,
         description: str | None = None, examples: list[Any] | None = None) -> Any:
    """A bounded string field free of NUL and lone surrogates (required unless given a
    default); `pattern` narrows it further and must itself exclude NUL."""
    return Field(default, min_length=min_length, max_length=max_length, pattern=pattern,
                 description=description, examples=examples)


def page_offset(default: int = 0) -> Any:
    return Field(default, ge=0, le=MAX_OFFSET, description="items to skip")


def page_limit(default: int, maximum: int) -> Any:
    return Field(default, ge=1, le=maximum, description="items per page")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    """Only an ISO 8601 string is a date here: pydantic would take a number (or a string of
    digits) as seconds since 1970."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date or date-time, e.g. 2027-03-31 or "
                         "2027-03-31T17:00:00Z")
    return value


def _utc(value: datetime) -> datetime:
    """A date without a zone is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


When = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc)]
"""An ISO 8601 date or date-time (UTC when it names no zone); never a number."""
