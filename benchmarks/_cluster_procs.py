"""Child processes of the cluster cases: started untimed, ready when they print ``ready``, and
stopped by the pid this module started (SIGTERM, SIGKILL or end of their stdin).

A child is ``python -m MODULE ARGS...``: it prints ``ready`` on stdout once it serves, then
lines the parent may read (:meth:`Child.line`), and leaves when its stdin closes or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
READY = "ready"


class Child:
    """One running child process."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, name: str, module: str, *args: str) -> Child:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            path for path in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if path
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(name, process)

    async def line(self, within: float = 60.0) -> str:
        """The next line the child printed; raises if it exited or was silent for ``within`` s."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            raw = await self.process.stdout.readline()
        if not raw:
            code = await self.process.wait()
            raise RuntimeError(f"benchmark node {self.name} exited with status {code}")
        return raw.decode().rstrip("\n")

    async def ready(self, within: float = 60.0) -> None:
        """Wait for the child's ``ready`` line."""
        while (line := await self.line(within)) != READY:
            if line.startswith("error"):
                raise RuntimeError(f"benchmark node {self.name}: {line}")

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    def signal(self, signum: signal.Signals) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    async def stop(self, within: float = 30.0) -> None:
        """End of stdin (a graceful leave), then SIGKILL if it has not exited in time."""
        if self.process.returncode is None and self.process.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.process.stdin.close()
        try:
            async with asyncio.timeout(within):
                await self.process.wait()
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL, waited for."""
        self.signal(signal.SIGKILL)
        if self.process.stdin is not None:
            self.process.stdin.close()
        await self.process.wait()


@contextlib.asynccontextmanager
async def children(
    specs: Sequence[tuple[str, str, Sequence[str]]], within: float = 60.0, graceful: bool = True
) -> AsyncIterator[list[Child]]:
    """Start every ``(name, module, args)`` child, wait until all are ready; on exit (also on
    failure) stop them all, gracefully or, with ``graceful`` false, by SIGKILL (quicker, for
    a cluster nobody uses afterwards)."""
    started: list[Child] = []
    try:
        for name, module, args in specs:
            started.append(await Child.start(name, module, *args))
        await asyncio.gather(*(child.ready(within) for child in started))
        yield started
    finally:
        await asyncio.gather(
            *(child.stop() if graceful else child.kill() for child in started),
            return_exceptions=True,
        )
