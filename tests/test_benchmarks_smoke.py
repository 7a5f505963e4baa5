"""The benchmark harness runs end to end in quick mode and writes well-formed records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_KEYS = {
    "case",
    "variant",
    "loop",
    "n",
    "value",
    "unit",
    "baseline",
    "baseline_value",
    "ratio",
}
GROUPS = ("mailbox", "persist", "replay")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_run_of_all_cases_exits_0_and_writes_records_with_the_required_keys(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "all",
            "--quick",
            "--json",
            str(out),
            "--scratch",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    records = document["records"]
    assert records
    for record in records:
        assert record.keys() >= REQUIRED_KEYS, record
    measured = [r for r in records if r["value"] is not None]
    assert {r["case"].split(".")[0] for r in measured} == set(GROUPS)
    assert {r["loop"] for r in measured} >= {"asyncio", "uvloop"}
    for record in measured:
        if record["unit"].endswith("/s"):
            assert record["value"] > 0, record
        if record["ratio"] is not None:
            assert record["ratio"] == pytest.approx(record["value"] / record["baseline_value"])
    machine = document["run"]["machine"]
    assert machine["cpu"]
    assert machine["python"] == sys.version.split()[0]
    assert "case" in completed.stdout.splitlines()[0]
