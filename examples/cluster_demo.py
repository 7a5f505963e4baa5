"""The ClientActor shell on three nodes, from what the project installed (``make cluster-demo``).

Starts a NATS server (the pinned binary of the ``cluster`` extra) and PostgreSQL (the Debian
package), both on 127.0.0.1 and free ports, each in a new temporary directory; then the shell
nodes: ``n2`` and ``n3`` in the background (their own sessions, so Ctrl-C at the terminal does not
reach them; output in ``n2.log``/``n3.log`` beside the servers' data), and ``n1`` in the
foreground, reading your commands. When ``n1`` ends (``quit`` or Ctrl-D) the background nodes
leave gracefully, then both servers stop (by the pids started here) and their data is removed.

To see failover, kill a background node with the ``kill -9`` line printed at start, then type
``shards`` and ``show ID`` in the foreground shell: after the node's leases expire (a few
seconds), its shards are served by the others, and its clients come back from the journal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cluster.testing import NatsServer
from persistence.testing._postgres_server import PostgresServer, remove, start_server

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


@dataclass
class BackgroundNode:
    """A shell node reading commands from a pipe this launcher keeps open."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def ask(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def leave(self, timeout: float = 30.0) -> None:
        """End of its input: the node hands its shards off and exits (SIGKILL if it hangs)."""
        if self.process.poll() is not None:
            return
        assert self.process.stdin is not None
        with suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _node_command(nats_url: str, journal: str, node: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "examples.client",
        "--cluster",
        nats_url,
        "--journal",
        journal,
        "--node",
        node,
    ]


def _environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), path) if p)}


def start_background(name: str, nats_url: str, journal: str, directory: Path) -> BackgroundNode:
    log = directory / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            _node_command(nats_url, journal, name),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=_environment(),
            start_new_session=True,
        )
    return BackgroundNode(name, process, log)


def wait_until_serving(nodes: list[BackgroundNode], timeout: float = START_TIMEOUT) -> None:
    """Ask each node for ``nodes`` and wait for its answer in its log: it is then a member."""
    for node in nodes:
        node.ask("nodes")
    deadline = time.monotonic() + timeout
    for node in nodes:
        while not node.log.read_text(errors="replace").strip():
            if node.process.poll() is not None:
                raise RuntimeError(
                    f"node {node.name} exited with status {node.process.returncode}: "
                    f"{node.log.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {node.name} did not start within {timeout} s")
            time.sleep(0.1)


@contextmanager
def servers() -> Iterator[tuple[NatsServer, PostgresServer]]:
    """A NATS server and a PostgreSQL server, stopped by their pids on exit."""
    nats_server = NatsServer.start()
    try:
        postgres = start_server()
        try:
            yield nats_server, postgres
        finally:
            remove(postgres)
    finally:
        nats_server.stop()


def _banner(
    out: IO[str],
    nats_server: NatsServer,
    postgres: PostgresServer,
    foreground: str,
    background: list[BackgroundNode],
) -> None:
    lines = [
        f"NATS {nats_server.url} (pid {nats_server.pid}), PostgreSQL {postgres.dsn} "
        f"(pid {postgres.process.pid if postgres.process else '-'})",
        *(f"node {node.name}: pid {node.process.pid}, output in {node.log}" for node in background),
        f"node {foreground}: this shell. Try: register ada Ada en, show ada, nodes, shards.",
    ]
    if background:
        victim = background[0]
        lines.append(
            f"Failover: run `kill -9 {victim.process.pid}` in another terminal (node "
            f"{victim.name}), then `shards` and `show ID` here: its shards move after its leases "
            "expire."
        )
    lines.append(f"Status from anywhere: python -m cluster status {nats_server.url} --type Client")
    print("\n".join(lines), file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.cluster_demo",
        description="The ClientActor shell on a local cluster: NATS, PostgreSQL and N nodes.",
    )
    parser.add_argument("--nodes", type=int, default=3, help="how many shell nodes (default 3)")
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error(f"--nodes must be at least 1, got {args.nodes}")
    directory = Path(tempfile.mkdtemp(prefix="actorsys-demo-"))
    background: list[BackgroundNode] = []
    try:
        with servers() as (nats_server, postgres):
            for number in range(2, args.nodes + 1):
                background.append(
                    start_background(f"n{number}", nats_server.url, postgres.dsn, directory)
                )
            wait_until_serving(background)
            _banner(sys.stdout, nats_server, postgres, "n1", background)
            # Ctrl-C belongs to the foreground shell (it drops the line): not to this launcher
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                shell = subprocess.run(
                    _node_command(nats_server.url, postgres.dsn, "n1"),
                    cwd=ROOT,
                    env=_environment(),
                    check=False,
                )
            finally:
                signal.signal(signal.SIGINT, previous)
                for node in background:
                    node.leave()
            return shell.returncode
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for node in background:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
