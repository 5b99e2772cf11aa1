"""The seed's own samples, copied verbatim into data/, run against the engine over HTTP."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

DATA = Path(__file__).parent / "data"
SEED_ORG = "00000000-0000-0000-0000-000000000001"
CSV = b"timestamp,user,action\n2024-01-02T03:04:05Z,alice,login\n2024-01-02T03:05:00Z,bob,logout\n"


def sample_env(base: str, key: str) -> dict[str, str]:
    """Only the variables the seed tells a user to set."""
    return {"GRC_BASE_URL": base, "GRC_ORG_ID": SEED_ORG, "GRC_API_KEY": key}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "access_logs_2024.csv").write_bytes(CSV)
    return tmp_path


def run_python_sample(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    script = workdir / "push_evidence.py"
    script.write_text((DATA / "seed_python_sample.txt").read_text())
    done = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed: dict[str, Any] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return printed


def test_seed_python_sample_links_once_then_answers_created_false(base, make_key, workdir):
    env = sample_env(base, make_key("write:evidence", org=SEED_ORG))

    first = run_python_sample(workdir, env)
    second = run_python_sample(workdir, env)

    assert first["created"] is True, first
    assert (first["control_id"], first["framework_id"]) == ("CC6.1", "soc2")
    assert first["evidence_id"].startswith("evo-") and first["lineage_id"].startswith("lin-")
    assert first["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert second["created"] is False, second
    assert second["lineage_id"] == first["lineage_id"]
    assert second["evidence_id"] == first["evidence_id"]


def json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON bodies curl printed one after another."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(text, i)
        found.append(obj)
    return found


@pytest.mark.skipif(not all(shutil.which(t) for t in ("bash", "curl", "sha256sum", "jq")),
                    reason="the bash sample needs bash, curl, sha256sum and jq")
def test_seed_bash_sample_verifies_then_links_idempotently(base, make_key, workdir,
                                                           jwt_for: Callable[[str], dict]):
    env = {**sample_env(base, make_key("write:*", org=SEED_ORG)),
           "PATH": "/usr/local/bin:/usr/bin:/bin"}
    script = DATA / "seed_bash_sample.txt"
    runs = []
    for _ in range(2):
        done = subprocess.run(["bash", "-e", str(script)], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        runs.append(json_objects(done.stdout))

    (verified, first), (_, second) = runs[0], runs[1]
    assert verified["verified"] is True and verified["status"] == "verified"
    assert first["created"] is True and second["created"] is False
    assert first["lineage_id"] == second["lineage_id"]
    listed = requests.get(f"{base}/api/v1/orgs/{SEED_ORG}/evidence", timeout=10,
                          headers=jwt_for(SEED_ORG)).json()
    assert listed["total"] == 1
    assert [c["control_key"] for c in listed["evidence"][0]["controls"]] == ["soc2-cc6.1"]
