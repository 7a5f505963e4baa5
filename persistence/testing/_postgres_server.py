"""A throwaway PostgreSQL server from the Debian package, for tests, benchmarks and the demo.

Started as user ``postgres`` when running as root (``initdb`` refuses root), on 127.0.0.1 and a
free port, in a fresh data directory; stopped by the pid this module started (SIGINT: a fast
shutdown). The data directory's parent is world-traversable so that ``postgres`` can reach it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL is not installed: install the Debian package `postgresql` "
    "(apt-get install -y postgresql; .ci/run does it on CI)"
)

PASSWORD_USER = "secretive"
"""The one role the test server authenticates by password (scram-sha-256)."""


def find_bindir() -> Path:
    """The directory of ``initdb`` and ``postgres`` (newest Debian version first, then PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(INSTALL_HINT)
    return Path(initdb).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One running server: its DSN, data directory and postmaster process."""

    bindir: Path
    root: Path
    port: int
    synchronous_commit: bool
    process: subprocess.Popen[bytes] | None = None
    _user: str | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _popen_user(self) -> dict[str, object]:
        return {} if self._user is None else {"user": self._user, "group": self._user}

    def init(self) -> None:
        """Create the data directory with ``initdb`` (trust authentication, no fsync)."""
        if os.geteuid() == 0:
            self._user = "postgres"
            pwd.getpwnam("postgres")  # the Debian package creates it
            os.chmod(self.root, 0o755)
            self.data.mkdir()
            shutil.chown(self.data, "postgres", "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        done = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._popen_user(),  # type: ignore[call-overload]
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stdout}{done.stderr}")
        # Everyone is trusted except PASSWORD_USER, who must give a password: the credential
        # tests need a server that checks one.
        (self.data / "pg_hba.conf").write_text(
            f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
        )

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections."""
        sync = "on" if self.synchronous_commit else "off"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.data}",
                    "-c",
                    f"fsync={sync}",
                    "-c",
                    f"synchronous_commit={sync}",
                    "-c",
                    "full_page_writes=" + sync,
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **self._popen_user(),  # type: ignore[call-overload]
            )
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
                timeout=30,
            )
            if ready.returncode == 0:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash) and wait until its backends are gone too (a restart
        refuses to start while they still hold the shared memory)."""
        import psutil  # type: ignore[import-untyped, unused-ignore]  # a test dependency

        assert self.process is not None
        children = psutil.Process(self.process.pid).children()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        psutil.wait_procs(children, timeout=30)

    def stop(self) -> None:
        """A fast shutdown by the postmaster's pid."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None


def start_server(*, synchronous_commit: bool = False) -> PostgresServer:
    """A new, running server in a new temporary directory (the caller stops it)."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="actorsys-pg-"))
    server = PostgresServer(bindir, root, free_port(), synchronous_commit)
    try:
        server.init()
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


def remove(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
