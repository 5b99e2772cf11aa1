"""`@check(replaces=...)`: a check names the ids it supersedes, so an old id can stay an alias."""

from __future__ import annotations

import pytest

from connectors.base import Result, Severity, check, collector


@collector()
def _nothing(session: object) -> list[str]:
    return []


def _declare(**kwargs: object):
    def judge(items: list[str]):
        """A check."""
        yield from (Result.of(i, passing=True, title=i) for i in items)

    return check(id="acme.repo.new_check", severity=Severity.LOW, resource_type="acme.repo",
                 remediation="Fix it.", needs=_nothing, **kwargs)(judge)


def test_a_check_records_the_ids_it_replaces():
    assert _declare(replaces=("acme.repo.old_check",)).replaces == ("acme.repo.old_check",)
    assert _declare().replaces == ()


@pytest.mark.parametrize("bad", [("not an id",), ("acme.repo.new_check",)])
def test_replacing_a_malformed_id_or_itself_fails_at_import(bad):
    with pytest.raises(TypeError, match="replaces"):
        _declare(replaces=bad)
