"""The ClientActor shell as nodes of a cluster: any node's shell addresses any client, wherever
it runs; ``nodes`` and ``shards`` show the cluster; a node that quits hands its clients off."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import pytest

from tests.examples._run import ROOT, run_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SENTINEL_COMMAND = "help help"
SENTINEL = "help [COMMAND]: this list"
_databases = itertools.count(1)


class ShellNode:
    """One shell process reading commands from a pipe; :meth:`run` returns a command's lines."""

    def __init__(self, args: list[str], stderr: Path) -> None:
        self.stderr = stderr
        with open(stderr, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "examples.client", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.lines: Queue[str | None] = Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode().rstrip("\n"))
        self.process.stdout.close()
        self.lines.put(None)

    def run(self, command: str, wait: float = 60.0) -> list[str]:
        """The lines ``command`` printed (a sentinel command marks their end)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n{SENTINEL_COMMAND}\n".encode())
        self.process.stdin.flush()
        out: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=wait)
            except Empty:
                raise AssertionError(f"no answer to {command!r} within {wait} s") from None
            if line is None:
                raise AssertionError(f"the shell exited: {self.stderr.read_text()[-3000:]}")
            if line == SENTINEL:
                return out
            out.append(line)

    def quit(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        """Cleanup: SIGKILL if still running, then close the pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self.reader.join(timeout=10)


async def _create_database(admin: str) -> str:
    import asyncpg

    name = f"shell_{os.getpid()}_{next(_databases)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return f"{admin.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def journal(postgres_dsn: str) -> str:
    """A PostgreSQL database of this test alone (the shell uses its public schema)."""
    return asyncio.run(_create_database(postgres_dsn))


@pytest.fixture
def shell_nodes(
    nats_url: str, cluster_name: str, journal: str, tmp_path: Path
) -> Iterator[dict[str, ShellNode]]:
    started: dict[str, ShellNode] = {}
    for name in ("n1", "n2"):
        started[name] = ShellNode(
            [
                "--cluster", nats_url,
                "--cluster-name", cluster_name,
                "--node", name,
                "--journal", journal,
            ],
            tmp_path / f"{name}.stderr",
        )  # fmt: skip
    try:
        yield started
    finally:
        for node in started.values():
            node.kill()


def test_any_node_addresses_any_client_and_a_node_that_quits_hands_its_clients_off(
    shell_nodes: dict[str, ShellNode],
) -> None:
    n1, n2 = shell_nodes["n1"], shell_nodes["n2"]
    for shell in (n1, n2):  # both are members once each has answered
        shell.run("stats")
    assert n2.run("nodes") == ["2 nodes:", "  n1", "  n2 (this node)"]
    for client in ("ada", "bob", "cy", "dee", "eve", "fay"):
        assert n1.run(f"register {client} Ada en") == [
            f"ok: ClientRegistered, client {client}: Ada (en), version 1"
        ]
    assert n2.run("show ada") == ["client ada: Ada (en), version 1"]
    assert n2.run("rename ada Grace 1") == [
        "ok: ClientNameChanged, client ada: Grace (en), version 2"
    ]
    assert n1.run("show ada") == ["client ada: Grace (en), version 2"]
    crashed = n2.run("crash ada")
    assert crashed == [
        "client ada crashed (crash requested from the shell); its supervisor restarted it and "
        "replay (2 events) restored: client ada: Grace (en), version 2"
    ]
    shards = n1.run("shards")
    assert shards[0].endswith("6 clients running:")
    assert {line.split(":")[0].strip() for line in shards[1:] if not line.startswith("    ")} == {
        "n1 (this node)",
        "n2",
    }
    assert n1.run("stats")[0].startswith("clients running: 6, events stored: 7,")

    assert n1.quit() == 0  # a graceful leave: its shards are handed off to n2
    assert n2.run("nodes") == ["1 node:", "  n2 (this node)"]
    for client in ("ada", "bob", "cy", "dee", "eve", "fay"):
        assert n2.run(f"show {client}")[0].startswith(f"client {client}: ")
    summary, node_line, _ = n2.run("shards")
    assert summary.endswith("6 clients running:")
    assert node_line.startswith("  n2 (this node): ")


def test_a_cluster_node_needs_a_journal_every_node_shares(tmp_path: Path, nats_url: str) -> None:
    result = run_module(
        "examples.client",
        "--cluster",
        nats_url,
        "--journal",
        f"sqlite:{tmp_path / 'clients.db'}",
        exit_code=2,
    )
    assert result.stderr.strip() == (
        f"error: the journal 'sqlite:{tmp_path / 'clients.db'}' cannot be shared by the nodes "
        "of a cluster: use --journal postgresql://USER@HOST:PORT/DB"
    )


def test_node_without_cluster_is_a_usage_error(tmp_path: Path) -> None:
    result = run_module("examples.client", "--node", "n1", exit_code=2)
    assert "--node names a node of a cluster: give --cluster NATS_URL too" in result.stderr
