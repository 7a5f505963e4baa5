"""``make cluster-demo``: NATS, PostgreSQL and three shell nodes from what the project installed,
driven through a pipe; every server and node it started is gone afterwards."""

from __future__ import annotations

import re

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.examples._run import run_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_the_demo_runs_three_nodes_and_stops_everything_it_started() -> None:
    result = run_module(
        "examples.cluster_demo",
        stdin="register ada Ada en\nshow ada\nnodes\nquit\n",
        timeout=110,
    )
    lines = result.stdout.splitlines()
    servers = re.fullmatch(
        r"NATS nats://127\.0\.0\.1:\d+ \(pid (\d+)\), PostgreSQL postgresql://postgres@127\.0\.0\.1"
        r":\d+/postgres \(pid (\d+)\)",
        lines[0],
    )
    assert servers is not None, lines[0]
    node_line = re.compile(r"node n\d: pid (\d+),")
    node_pids = [int(m.group(1)) for m in map(node_line.match, lines) if m]
    assert len(node_pids) == 2
    assert lines[-6:] == [
        "ok: ClientRegistered, client ada: Ada (en), version 1",
        "client ada: Ada (en), version 1",
        "3 nodes:",
        "  n1 (this node)",
        "  n2",
        "  n3",
    ]
    for pid in [int(servers.group(1)), int(servers.group(2)), *node_pids]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid
