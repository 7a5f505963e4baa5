"""Mailbox cases: tell throughput, fan-out, ask round trips, idle actors; and their baselines.

Baselines, tightest first:

- the *bare deque drain*: the sender appends with the deque's own (C) ``append``, one task
  drains it calling the same handler per item; no Python-level ``tell``, nothing per message
  but the append, the pop and the handler. Nothing an actor mailbox on asyncio can beat.
- the *Future answered by call_soon* (ask): one Future per round trip, resolved by a callback
  the loop runs next; one wake-up of the asking task per round trip.
- looser bounds that teach what one design step costs: the *deque actor* (a deque behind a
  Python ``tell`` method, its draining task woken through a Future), and for ask the round trip
  through a deque actor (two task wake-ups).
- the *naive* actor: one task per actor reading an ``asyncio.Queue``.
- the peer, Pykka's ``ThreadingActor`` (one thread per actor; it does not use the event loop).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

from benchmarks._common import Countdown, clock, rate, rss_bytes, work
from benchmarks._harness import Bench, Result
from benchmarks._isolation import finish_early

BARE = "bare deque drain"
DEQUE_ACTOR = "deque actor (Python tell)"
NAIVE = "naive (Queue+task)"
CALL_SOON = "Future answered by call_soon"
DEQUE_ROUND_TRIP = "Future via deque actor"
OURS = "actorsys"
PYKKA = "pykka ThreadingActor"

Handler = Callable[[object], None]


class DequeActor:
    """A deque behind a Python ``tell``, drained by one task woken through a Future."""

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


def _counting_handler(count: int) -> tuple[Countdown, Handler]:
    """The handler every tell variant uses: the trivial work, then a countdown tick."""
    countdown = Countdown(count)
    tick = countdown.tick

    def handle(message: object) -> None:
        work(message)
        tick()

    return countdown, handle


async def _tell(n: int, factory: ActorFactory) -> Result:
    countdown, handle = _counting_handler(n)
    actor = factory(handle)
    await asyncio.sleep(0)
    started = clock()
    for i in range(n):
        actor.tell(i)
    await countdown.done
    elapsed = clock() - started
    actor.stop()
    return {"msg/s": rate(n, elapsed)}


async def tell_bare(n: int) -> Result:
    """``n`` appends to a deque with its C ``append``; one task drains it with the handler."""
    countdown, handle = _counting_handler(n)
    loop = asyncio.get_running_loop()
    mail: deque[object] = deque()
    wake: asyncio.Future[None] = loop.create_future()

    async def drain() -> None:
        await wake
        popleft = mail.popleft
        while mail:
            handle(popleft())

    task = loop.create_task(drain())
    await asyncio.sleep(0)
    started = clock()
    append = mail.append
    for i in range(n):
        append(i)
    wake.set_result(None)
    await countdown.done
    elapsed = clock() - started
    await task
    return {"msg/s": rate(n, elapsed)}


async def tell_deque_actor(n: int) -> Result:
    """``n`` tells to one deque actor (a Python ``tell``, a Future waking its task)."""
    return await _tell(n, DequeActor)


async def tell_naive(n: int) -> Result:
    """``n`` tells to one task reading an ``asyncio.Queue``."""
    return await _tell(n, QueueActor)


async def _fan_out(n: int, actors: int, factory: ActorFactory) -> Result:
    per_actor = n // actors
    countdown, handle = _counting_handler(actors * per_actor)
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


async def fan_out_bare(n: int, actors: int) -> Result:
    """``n`` appends spread round-robin over ``actors`` deques; each drained by one callback."""
    per_actor = n // actors
    countdown, handle = _counting_handler(actors * per_actor)
    loop = asyncio.get_running_loop()
    boxes: list[deque[object]] = [deque() for _ in range(actors)]
    appends = [box.append for box in boxes]

    def drain(box: deque[object]) -> None:
        popleft = box.popleft
        while box:
            handle(popleft())

    await asyncio.sleep(0)
    started = clock()
    for i in range(per_actor):
        for append in appends:
            append(i)
    for box in boxes:
        loop.call_soon(drain, box)
    await countdown.done
    elapsed = clock() - started
    return {"msg/s": rate(actors * per_actor, elapsed)}


async def fan_out_deque_actor(n: int, actors: int) -> Result:
    """``n`` tells spread round-robin over ``actors`` deque actors."""
    return await _fan_out(n, actors, DequeActor)


async def fan_out_naive(n: int, actors: int) -> Result:
    """``n`` tells spread round-robin over ``actors`` queue-reading tasks."""
    return await _fan_out(n, actors, QueueActor)


def _answer(reply: asyncio.Future[int], value: int) -> None:
    reply.set_result(value)


async def ask_call_soon(n: int) -> Result:
    """``n`` sequential round trips, each a Future resolved by a ``call_soon`` callback."""
    loop = asyncio.get_running_loop()
    call_soon = loop.call_soon
    create_future = loop.create_future
    started = clock()
    for i in range(n):
        reply: asyncio.Future[int] = create_future()
        call_soon(_answer, reply, i)
        await reply
    elapsed = clock() - started
    return {"round trips/s": rate(n, elapsed)}


async def ask_deque_actor(n: int) -> Result:
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
    last one. Every variant calls the same handler per message.
    """
    n = bench.size(1_000_000, 20_000)
    for loop in bench.loops:
        bench.variant(BARE, tell_bare, n=n, loop=loop)
        bench.variant(DEQUE_ACTOR, tell_deque_actor, n=n, loop=loop, baselines=[BARE])
        bench.variant(NAIVE, tell_naive, n=n, loop=loop, baselines=[BARE])
        bench.variant(
            OURS,
            "benchmarks._ours_mailbox:tell",
            n=n,
            loop=loop,
            baselines=[BARE, DEQUE_ACTOR, NAIVE],
        )
    bench.variant(
        PYKKA, "benchmarks._pykka:tell", n=bench.size(n, 2_000), loop="threads", baselines=[BARE]
    )


def fan_out(bench: Bench) -> None:
    """Fan-out: one sender, 10,000 actors, 100 messages each, sent round-robin.

    Only the messaging is timed, not creating the actors.
    """
    actors = bench.size(10_000, 200)
    n = actors * bench.size(100, 20)
    for loop in bench.loops:
        bench.variant(BARE, fan_out_bare, n=n, loop=loop, actors=actors)
        bench.variant(
            DEQUE_ACTOR, fan_out_deque_actor, n=n, loop=loop, baselines=[BARE], actors=actors
        )
        bench.variant(NAIVE, fan_out_naive, n=n, loop=loop, baselines=[BARE], actors=actors)
        bench.variant(
            OURS,
            "benchmarks._ours_mailbox:fan_out",
            n=n,
            loop=loop,
            baselines=[BARE, DEQUE_ACTOR, NAIVE],
            actors=actors,
        )


def ask(bench: Bench) -> None:
    """Ask round trips, one after the other, to one actor that replies with the message.

    The minimum is a Future answered by a ``call_soon`` callback (one wake-up per round trip);
    the looser bound sends the Future to a deque actor that answers it (two wake-ups).
    """
    n = bench.size(100_000, 5_000)
    for loop in bench.loops:
        bench.variant(CALL_SOON, ask_call_soon, n=n, loop=loop)
        bench.variant(DEQUE_ROUND_TRIP, ask_deque_actor, n=n, loop=loop, baselines=[CALL_SOON])
        bench.variant(
            OURS,
            "benchmarks._ours_mailbox:ask",
            n=n,
            loop=loop,
            baselines=[CALL_SOON, DEQUE_ROUND_TRIP],
        )
    bench.variant(
        PYKKA,
        "benchmarks._pykka:ask",
        n=bench.size(20_000, 500),
        loop="threads",
        baselines=[CALL_SOON],
    )


def spawn_idle(bench: Bench) -> None:
    """Spawn idle actors: microseconds and bytes of RSS per actor, each run in a fresh process.

    The time runs until every actor can take messages; RSS grows by what the actors hold.
    """
    n = bench.size(1_000_000, 2_000)
    for loop in bench.loops:
        bench.variant(NAIVE, spawn_naive, n=n, loop=loop, memory=True)
        bench.variant(
            OURS,
            "benchmarks._ours_mailbox:spawn_idle",
            n=n,
            loop=loop,
            baselines=[NAIVE],
            memory=True,
        )
    bench.variant(
        PYKKA,
        "benchmarks._pykka:spawn_idle",
        n=bench.size(10_000, 100),
        loop="threads",
        baselines=[NAIVE],
        memory=True,
    )


CASES = (tell, fan_out, ask, spawn_idle)
