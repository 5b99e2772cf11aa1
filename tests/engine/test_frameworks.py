"""Frameworks are data: complete catalogs, and mappings that point at real controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidInput
from engine.frameworks import catalog, load_catalog


def test_soc2_lists_every_common_criterion_with_a_title():
    soc2 = catalog().frameworks["soc2"]
    expected = {f"CC{s}.{n}" for s, count in
                {1: 5, 2: 3, 3: 4, 4: 2, 5: 3, 6: 8, 7: 5, 8: 1, 9: 2}.items()
                for n in range(1, count + 1)}
    assert set(soc2.controls) == expected
    assert all(c.title for c in soc2.controls.values())


def test_iso27001_2022_lists_all_93_annex_a_controls():
    iso = catalog().frameworks["iso27001"]
    expected = {f"A.{t}.{n}" for t, count in {5: 37, 6: 8, 7: 14, 8: 34}.items()
                for n in range(1, count + 1)}
    assert set(iso.controls) == expected
    assert iso.controls["A.8.24"].title == "Use of cryptography"


def test_controls_resolve_from_either_spelling():
    cat = catalog()
    assert cat.resolve("soc2-cc6.1").id == "CC6.1"
    assert cat.resolve("CC6.1", "SOC2").key == "soc2-cc6.1"
    assert cat.resolve("a.8.24", "iso27001").id == "A.8.24"
    with pytest.raises(InvalidInput):
        cat.resolve("CC99.1", "soc2")


def test_a_mapping_to_an_unknown_control_fails_loudly(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("x.y.z:\n  soc2: [CC42.1]\n")
    with pytest.raises(ValueError, match="unknown soc2 control CC42.1"):
        load_catalog((bad,))
