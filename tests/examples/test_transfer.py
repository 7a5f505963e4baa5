"""At-least-once transfers: no money lost or duplicated across crashes of either side."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.examples._run import ROOT, run_module

pytestmark = pytest.mark.slow

BALANCE = re.compile(
    r"^(\w+): balance ([\d,.]+), credits received (\d+), "
    r"duplicates ignored (\d+), unconfirmed (\d+)$"
)


def _balances(stdout: str) -> dict[str, tuple[Decimal, int, int, int]]:
    found = {}
    for line in stdout.splitlines():
        match = BALANCE.match(line)
        if match:
            name, balance, credits, duplicates, unconfirmed = match.groups()
            found[name] = (
                Decimal(balance.replace(",", "")),
                int(credits),
                int(duplicates),
                int(unconfirmed),
            )
    return found


def test_transfers_survive_injected_crashes_on_both_sides() -> None:
    result = run_module("examples.transfer", "--transfers", "10")
    balances = _balances(result.stdout)
    assert balances["alice"][0] == Decimal("500.00")
    assert balances["bob"][0] == Decimal("500.00")
    assert balances["bob"][1] == 10  # every transfer credited exactly once
    assert balances["bob"][2] >= 1  # the lost acks caused redeliveries that were ignored
    assert balances["alice"][3] == balances["bob"][3] == 0
    assert result.stdout.splitlines()[-1] == "total: 1,000.00"


def test_transfers_survive_kill_9_of_the_process(tmp_path: Path) -> None:
    journal = f"sqlite:{tmp_path / 'transfers.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.transfer",
            "--journal",
            journal,
            "--phase",
            "send",
            "--transfers",
            "40",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert child.stdout is not None
    sent = 0
    for line in child.stdout:
        if line.startswith("sent "):
            sent += 1
            if sent == 15:
                break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    settled = run_module("examples.transfer", "--journal", journal, "--phase", "settle")
    balances = _balances(settled.stdout)
    alice, bob = balances["alice"], balances["bob"]
    assert alice[0] + bob[0] == Decimal("1000.00")  # nothing lost, nothing duplicated
    assert bob[0] == Decimal("50.00") * bob[1]  # each credit counted once
    assert alice[3] == bob[3] == 0
