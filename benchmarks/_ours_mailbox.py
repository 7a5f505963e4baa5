"""The actorsys variants of the mailbox cases (imported only when they run)."""

from __future__ import annotations

import asyncio
from typing import Any

from actorsys import Actor, ActorSystem
from benchmarks._common import Countdown, clock, rate, rss_bytes, work
from benchmarks._harness import Result
from benchmarks._isolation import finish_early

_ASK_TIMEOUT = 600.0


class _Counting(Actor):
    """Calls the trivial handler, then ticks the shared countdown."""

    def __init__(self, countdown: Countdown) -> None:
        super().__init__()
        self._tick = countdown.tick

    def receive(self, message: Any) -> None:
        work(message)
        self._tick()


class _Echo(Actor):
    """Replies to every message with the message."""

    def receive(self, message: Any) -> None:
        self.context.sender.tell(message)


async def tell(n: int) -> Result:
    """``n`` tells to one actor whose ``receive`` is a plain function."""
    async with ActorSystem("bench") as system:
        countdown = Countdown(n)
        ref = system.spawn(lambda: _Counting(countdown))
        await asyncio.sleep(0)
        started = clock()
        for i in range(n):
            ref.tell(i)
        await countdown.done
        elapsed = clock() - started
    return {"msg/s": rate(n, elapsed)}


async def fan_out(n: int, actors: int) -> Result:
    """``n`` tells spread round-robin over ``actors`` actors."""
    per_actor = n // actors
    async with ActorSystem("bench") as system:
        countdown = Countdown(actors * per_actor)
        refs = [system.spawn(lambda: _Counting(countdown)) for _ in range(actors)]
        await asyncio.sleep(0)
        started = clock()
        for i in range(per_actor):
            for ref in refs:
                ref.tell(i)
        await countdown.done
        elapsed = clock() - started
    return {"msg/s": rate(actors * per_actor, elapsed)}


async def ask(n: int) -> Result:
    """``n`` sequential asks to one actor that replies with the message."""
    async with ActorSystem("bench") as system:
        ref = system.spawn(_Echo)
        started = clock()
        for i in range(n):
            await ref.ask(i, timeout=_ASK_TIMEOUT)
        elapsed = clock() - started
    return {"round trips/s": rate(n, elapsed)}


async def spawn_idle(n: int) -> Result:
    """Spawn ``n`` idle actors; time and RSS per actor (run in a fresh process)."""
    async with ActorSystem("bench") as system:
        before = rss_bytes()
        started = clock()
        refs = [system.spawn(_Echo) for _ in range(n)]
        await refs[-1].ask("started?", timeout=_ASK_TIMEOUT)  # every spawn before it is done too
        elapsed = clock() - started
        grown = rss_bytes() - before
        return finish_early({"us/actor": elapsed / n * 1e6, "B/actor": grown / n})
