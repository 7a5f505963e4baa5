"""The clock an actor system schedules by: timers, receive timeouts, ask timeouts, backoff.

Everything in the runtime that waits for time asks ``system.clock`` instead of the event loop, so
a test can hand the system a :class:`ManualClock` and advance time without sleeping. The default
:class:`LoopClock` is the running loop's own clock (``loop.time()`` / ``loop.call_later``), which
costs nothing extra on either asyncio's loop or uvloop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Cancellable", "Clock", "LoopClock", "ManualClock"]


class Cancellable(Protocol):
    """A scheduled call that can be called off (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None:
        """Call it off; cancelling twice, or after it ran, does nothing."""


class Clock(Protocol):
    """A source of monotonic time and delayed calls, in seconds."""

    def time(self) -> float:
        """The current time (monotonic, arbitrary origin)."""

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Cancellable:
        """Call ``callback(*args)`` on the loop after ``delay`` seconds."""


class LoopClock:
    """The running event loop's clock: what a system uses unless it is given another.

    Its ``time`` and ``call_later`` are the loop's own bound methods, not wrappers: timers and
    ask timeouts pay nothing for the seam.
    """

    __slots__ = ("call_later", "time")

    time: Callable[[], float]
    call_later: Callable[..., Cancellable]

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.time = loop.time
        self.call_later = loop.call_later


class _ManualCall:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told: ``await clock.advance(5)`` (like trio's MockClock).

    Calls fall due in time order (ties in scheduling order). Between due calls, and after the
    last, ``advance`` lets the loop run until it is idle, so the actors that the calls woke have
    handled their mail before the next call fires and before ``advance`` returns.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._calls: list[tuple[float, int, _ManualCall]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Cancellable:
        call = _ManualCall(self._now + max(delay, 0.0), callback, args)
        heapq.heappush(self._calls, (call.when, next(self._order), call))
        return call

    @property
    def pending(self) -> int:
        """How many scheduled calls have not run and were not cancelled."""
        return sum(1 for _, _, call in self._calls if not call.cancelled)

    def next_deadline(self) -> float | None:
        """When the next pending call falls due, or None."""
        self._drop_cancelled()
        return self._calls[0][0] if self._calls else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every call that falls due on the way."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        target = self._now + seconds
        await settle()
        while True:
            self._drop_cancelled()
            if not self._calls or self._calls[0][0] > target:
                break
            when, _, call = heapq.heappop(self._calls)
            self._now = max(self._now, when)
            call.callback(*call.args)
            await settle()
        self._now = target
        await settle()

    def _drop_cancelled(self) -> None:
        calls = self._calls
        while calls and calls[0][2].cancelled:
            heapq.heappop(calls)


async def settle(rounds: int = 20) -> None:
    """Let the running loop handle what is ready: mail, replies and their follow-up callbacks.

    Work that waits on a thread (a journal write) is not waited for: await its result instead.
    """
    for _ in range(rounds):
        await asyncio.sleep(0)
