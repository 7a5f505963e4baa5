"""Mailbox cases: tell throughput, fan-out, ask round trips, idle actors; and their baselines.

Baselines: the *limit* is a ``collections.deque`` drained by one task that a Future wakes when mail
arrives, calling the same handler per item: nothing an actor mailbox on asyncio can beat. The
*naive* actor is one task per actor reading an ``asyncio.Queue``. The peer is Pykka's
``ThreadingActor`` (one thread per actor), run once (it does not use the event loop).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

from benchmarks._common import Countdown, clock, rate, rss_bytes, work
from benchmarks._harness import Bench, Result
from benchmarks._isolation import finish_early

LIMIT = "limit (deque+Future)"
NAIVE = "naive (Queue+task)"
OURS = "actorsys"
PYKKA = "pykka ThreadingActor"

Handler = Callable[[object], None]


class DequeActor:
    """The limit: a deque drained by one task, woken through a Future when mail arrives."""

    __slots__ = ("_handler", "_loop", "_mail", "_task", "_waiter")

    def __init__(self, handler: Handler) -> None:
        self._loop = asyncio.get_running_loop()
        self._mail: deque[object] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._handler = handler
        self._task = self._loop.create_task(self._drain())

    def tell(self, message: object) -> None:
        self._mail.append(message)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set_result(None)

    def stop(self) -> None:
        self._task.cancel()

    async def _drain(self) -> None:
        mail, handler = self._mail, self._handler
        while True:
            while mail:
                handler(mail.popleft())
            self._waiter = self._loop.create_future()
            await self._waiter


class QueueActor:
    """The naive actor: one task per actor awaiting an ``asyncio.Queue``."""

    __slots__ = ("_handler", "_queue", "_task")

    def __init__(self, handler: Handler) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._handler = handler
        self._task = asyncio.get_running_loop().create_task(self._run())

    def tell(self, message: object) -> None:
        self._queue.put_nowait(message)

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        queue, handler = self._queue, self._handler
        while True:
            handler(await queue.get())


ActorFactory = Callable[[Handler], DequeActor | QueueActor]


async def _tell(n: int, factory: ActorFactory) -> Result:
    countdown = Countdown(n)
    tick = countdown.tick

    def handle(message: object) -> None:
        work(message)
        tick()

    actor = factory(handle)
    await asyncio.sleep(0)
    started = clock()
    for i in range(n):
        actor.tell(i)
    await countdown.done
    elapsed = clock() - started
    actor.stop()
    return {"msg/s": rate(n, elapsed)}


async def tell_limit(n: int) -> Result:
    """``n`` tells to one deque drained by one task."""
    return await _tell(n, DequeActor)


async def tell_naive(n: int) -> Result:
    """``n`` tells to one task reading an ``asyncio.Queue``."""
    return await _tell(n, QueueActor)


async def _fan_out(n: int, actors: int, factory: ActorFactory) -> Result:
    per_actor = n // actors
    countdown = Countdown(actors * per_actor)
    tick = countdown.tick

    def handle(message: object) -> None:
        work(message)
        tick()

    refs = [factory(handle) for _ in range(actors)]
    await asyncio.sleep(0)
    started = clock()
    for i in range(per_actor):
        for ref in refs:
            ref.tell(i)
    await countdown.done
    elapsed = clock() - started
    for ref in refs:
        ref.stop()
    return {"msg/s": rate(actors * per_actor, elapsed)}


async def fan_out_limit(n: int, actors: int) -> Result:
    """``n`` tells spread round-robin over ``actors`` deque actors."""
    return await _fan_out(n, actors, DequeActor)


async def fan_out_naive(n: int, actors: int) -> Result:
    """``n`` tells spread round-robin over ``actors`` queue-reading tasks."""
    return await _fan_out(n, actors, QueueActor)


async def ask_limit(n: int) -> Result:
    """``n`` sequential round trips: each a Future sent to a deque actor, which resolves it."""
    loop = asyncio.get_running_loop()

    def answer(message: object) -> None:
        value, reply = cast(tuple[int, asyncio.Future[int]], message)
        reply.set_result(value)

    server = DequeActor(answer)
    await asyncio.sleep(0)
    started = clock()
    for i in range(n):
        reply: asyncio.Future[int] = loop.create_future()
        server.tell((i, reply))
        await reply
    elapsed = clock() - started
    server.stop()
    return {"round trips/s": rate(n, elapsed)}


async def spawn_naive(n: int) -> Result:
    """Start ``n`` idle queue-reading tasks; time and RSS per actor (run in a fresh process)."""
    before = rss_bytes()
    started = clock()
    actors = [QueueActor(work) for _ in range(n)]
    await asyncio.sleep(0)  # every task starts and parks on its empty queue
    elapsed = clock() - started
    grown = rss_bytes() - before
    result = finish_early({"us/actor": elapsed / n * 1e6, "B/actor": grown / n})
    for actor in actors:
        actor.stop()
    return result


def tell(bench: Bench) -> None:
    """Tell throughput: one sender, one actor, trivial messages handled by a plain function.

    The sender tells all messages without yielding; the time runs until the actor has handled the
    last one.
    """
    n = bench.size(1_000_000, 100_000)
    for loop in bench.loops:
        bench.measure(LIMIT, tell_limit, n=n, loop=loop)
        bench.measure(NAIVE, tell_naive, n=n, loop=loop, baselines=[LIMIT])
        bench.measure(
            OURS, "benchmarks._ours_mailbox:tell", n=n, loop=loop, baselines=[LIMIT, NAIVE]
        )
    bench.measure(PYKKA, "benchmarks._pykka:tell", n=n, loop="threads", baselines=[LIMIT])


def fan_out(bench: Bench) -> None:
    """Fan-out: one sender, 10,000 actors, 100 messages each, sent round-robin.

    Only the messaging is timed, not creating the actors.
    """
    actors = bench.size(10_000, 1_000)
    n = actors * bench.size(100, 20)
    for loop in bench.loops:
        bench.measure(LIMIT, fan_out_limit, n=n, loop=loop, actors=actors)
        bench.measure(NAIVE, fan_out_naive, n=n, loop=loop, baselines=[LIMIT], actors=actors)
        bench.measure(
            OURS,
            "benchmarks._ours_mailbox:fan_out",
            n=n,
            loop=loop,
            baselines=[LIMIT, NAIVE],
            actors=actors,
        )


def ask(bench: Bench) -> None:
    """Ask round trips, one after the other, to one actor that replies with the message.

    Baseline: one Future per round trip, sent to a deque actor and resolved there (two tasks).
    """
    n = bench.size(100_000, 10_000)
    ask_limit_name = "limit (Future via deque)"
    for loop in bench.loops:
        bench.measure(ask_limit_name, ask_limit, n=n, loop=loop)
        bench.measure(
            OURS, "benchmarks._ours_mailbox:ask", n=n, loop=loop, baselines=[ask_limit_name]
        )
    bench.measure(
        PYKKA,
        "benchmarks._pykka:ask",
        n=bench.size(20_000, 2_000),
        loop="threads",
        baselines=[ask_limit_name],
    )


def spawn_idle(bench: Bench) -> None:
    """Spawn idle actors: microseconds and bytes of RSS per actor, each variant in a fresh process.

    The time runs until every actor can take messages; RSS grows by what the actors hold.
    """
    n = bench.size(1_000_000, 20_000)
    for loop in bench.loops:
        bench.measure(NAIVE, spawn_naive, n=n, loop=loop, isolated=True)
        bench.measure(
            OURS,
            "benchmarks._ours_mailbox:spawn_idle",
            n=n,
            loop=loop,
            baselines=[NAIVE],
            isolated=True,
        )
    bench.measure(
        PYKKA,
        "benchmarks._pykka:spawn_idle",
        n=bench.size(10_000, 500),
        loop="threads",
        baselines=[NAIVE],
        isolated=True,
    )


CASES = (tell, fan_out, ask, spawn_idle)
