"""The auditor portal's forms: what each POST may carry, bounded as the JSON API bounds it, with
a message beside the field that is wrong. Nothing is written when any field is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from engine.models.audit import FindingSeverity, FindingStatus, Priority, ReviewStatus

TEXT = re.compile(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")  # tabs and line breaks allowed
LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")
CONTROL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_TEXT, MAX_TITLE = 20000, 300
E = TypeVar("E", bound=StrEnum)


@dataclass
class Form:
    """The submitted values (to show again) and a message per wrong field."""

    values: Mapping[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self, name: str, label: str, *, required: bool = False, one_line: bool = False,
             max_length: int = MAX_TEXT) -> str | None:
        value = self.values.get(name, "").replace("\r\n", "\n").strip()
        if not value:
            if required:
                self.errors[name] = f"Enter {label}."
            return None
        if len(value) > max_length:
            self.errors[name] = f"{label.capitalize()} can be at most {max_length} characters."
        elif not (LINE if one_line else TEXT).match(value):
            self.errors[name] = f"{label.capitalize()} contains characters that cannot be " \
                                "stored; remove them."
        return value

    def choice(self, name: str, label: str, kind: type[E]) -> E | None:
        value = self.values.get(name, "")
        try:
            return kind(value)
        except ValueError:
            self.errors[name] = f"Choose {label}."
            return None

    def control(self, name: str = "control_id") -> str | None:
        value = self.values.get(name, "").strip()
        if not CONTROL.match(value):
            self.errors[name] = "Choose a control of this audit."
            return None
        return value


@dataclass(frozen=True)
class Review:
    status: ReviewStatus
    notes: str | None
    evidence_sufficient: bool | None


SUFFICIENT = {"yes": True, "no": False, "": None}


def review(form: Form) -> Review | None:
    status = form.choice("status", "passed, failed or needs evidence", ReviewStatus)
    notes = form.text("auditor_notes", "your notes")
    sufficient = form.values.get("evidence_sufficient", "")
    if sufficient not in SUFFICIENT:
        form.errors["evidence_sufficient"] = "Choose yes, no or not stated."
    if not form.ok or status is None:
        return None
    return Review(status, notes, SUFFICIENT[sufficient])


@dataclass(frozen=True)
class EvidenceAsk:
    description: str
    priority: Priority


def evidence_ask(form: Form) -> EvidenceAsk | None:
    description = form.text("description", "what evidence you need", required=True)
    priority = form.choice("priority", "a priority", Priority)
    if not form.ok or description is None or priority is None:
        return None
    return EvidenceAsk(description, priority)


@dataclass(frozen=True)
class FindingFields:
    control_id: str
    severity: FindingSeverity
    title: str
    description: str
    remediation: str | None
    status: FindingStatus | None = None


def finding(form: Form, *, with_status: bool = False) -> FindingFields | None:
    control_id = form.control()
    severity = form.choice("severity", "a severity", FindingSeverity)
    title = form.text("title", "a title", required=True, one_line=True, max_length=MAX_TITLE)
    description = form.text("description", "a description", required=True)
    remediation = form.text("remediation", "the remediation")
    status = form.choice("status", "a status", FindingStatus) if with_status else None
    if (not form.ok or control_id is None or severity is None or title is None
            or description is None):
        return None
    return FindingFields(control_id, severity, title, description, remediation, status)
