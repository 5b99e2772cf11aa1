"""A check's parameters are typed by its collectors' snapshots: a mismatch is a mypy error.

Runs mypy (its API, as CI does) on small connector modules importing the real SDK.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

HEADER = '''
from collections.abc import Iterator

from pydantic import BaseModel

from connectors.base import Result, Severity, check, collector


class Settings(BaseModel):
    limit: int = 3


@collector()
def collect_names(session: object) -> list[str]:
    return ["a", "b"]


@collector()
def collect_limit(session: object, *, config: Settings) -> int:
    return config.limit

'''

RIGHT = HEADER + '''
@check(id="demo.names.short", severity=Severity.LOW, resource_type="demo.name",
       remediation="Shorten it.", needs=(collect_names, collect_limit))
def names_short(names: list[str], limit: int) -> Iterator[Result]:
    """Names are short."""
    for name in names:
        yield Result.of(name, passing=len(name) <= limit, title=name)
'''

WRONG_SNAPSHOT = HEADER + '''
@check(id="demo.names.counted", severity=Severity.LOW, resource_type="demo.name",
       remediation="Count them.", needs=collect_names)
def names_counted(numbers: list[int]) -> Iterator[Result]:
    """Numbers are small."""
    for number in numbers:
        yield Result.of(str(number), passing=number < 3, title="small")
'''

WRONG_ORDER = HEADER + '''
@check(id="demo.names.ordered", severity=Severity.LOW, resource_type="demo.name",
       remediation="Order them.", needs=(collect_names, collect_limit))
def names_ordered(limit: int, names: list[str]) -> Iterator[Result]:
    """Names are ordered."""
    yield Result.of("all", passing=names == sorted(names)[:limit], title="ordered")
'''


def typecheck(source: str, tmp_path: Path) -> tuple[str, int]:
    module = tmp_path / "demo_connector.py"
    module.write_text(source)
    out, err, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path.parent),
        "--no-error-summary", "--follow-imports=silent", str(module)])
    return out + err, status


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module: the SDK and its libraries are analysed once."""
    return tmp_path_factory.mktemp("mypy")


@pytest.fixture
def scratch(mypy_cache: Path, request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ROOT)  # mypy finds the SDK from the project root, as in CI
    folder = mypy_cache / request.node.name
    folder.mkdir()
    return folder


def test_a_check_typed_like_its_collectors_snapshots_passes(scratch: Path):
    report, status = typecheck(RIGHT, scratch)
    assert status == 0, report


def test_a_check_expecting_another_snapshot_type_is_a_mypy_error(scratch: Path):
    report, status = typecheck(WRONG_SNAPSHOT, scratch)
    assert status == 1
    assert 'incompatible type "Callable[[list[int]], Iterator[Result]]"' in report
    assert '"Callable[[list[str]], Iterable[Result]]"' in report


def test_snapshots_in_another_order_than_needs_is_a_mypy_error(scratch: Path):
    report, status = typecheck(WRONG_ORDER, scratch)
    assert status == 1
    assert '"Callable[[list[str], int], Iterable[Result]]"' in report
