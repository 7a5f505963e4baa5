"""What several cases share: the trivial handler, the event types, memory probes, countdowns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import sys
import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped, unused-ignore]

MiB = 1024 * 1024
clock = time.perf_counter


def work(message: object) -> None:
    """The trivial per-message handler every mailbox variant calls."""


@dataclass(frozen=True, slots=True)
class Deposited:
    """The event every persistence case stores: small, one integer field."""

    amount: int


@dataclass(frozen=True, slots=True)
class AccountState:
    """The snapshot of a replayed account: how many events it saw and their sum."""

    events: int
    balance: int


class Countdown:
    """Resolves :attr:`done` once :meth:`tick` has been called ``count`` times."""

    __slots__ = ("done", "remaining")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if count == 0:
            self.done.set_result(None)

    def tick(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set_result(None)


def rss_bytes() -> int:
    """This process's resident set size now, after a full garbage collection.

    Also restarts the peak (where Linux allows), so that :func:`peak_rss_bytes` reports the
    peak since this call rather than one reached while importing.
    """
    gc.collect()
    with (
        contextlib.suppress(OSError),
        open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs,
    ):
        clear_refs.write("5")  # resets VmHWM, the peak RSS, to the current RSS
    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """The highest resident set size of this process (since the last :func:`rss_bytes`)."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def rate(count: int, seconds: float) -> float:
    """``count`` per second, guarding a zero duration on coarse clocks."""
    return count / max(seconds, 1e-9)


def recovery_result(
    events: int, seconds: float, rss_before: int, after_snapshot: int
) -> dict[str, float]:
    """What every replay variant reports: speed, and peak RSS growth over ``rss_before``.

    Without a snapshot the speed is events replayed per second; with one (``after_snapshot``
    events replayed after it, over all actors) it is the recovery time in milliseconds.
    """
    grown = (peak_rss_bytes() - rss_before) / MiB
    if after_snapshot:
        return {"recovery ms": seconds * 1000, "peak MiB": grown}
    return {"events/s": rate(events, seconds), "peak MiB": grown}
