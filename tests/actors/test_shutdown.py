"""Shutdown: graceful, ordered, guaranteed by ``async with``; no leaked tasks; extensions last."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from actorsys import Actor, ActorRef, ActorSystem, ActorSystemError, Extension, run
from actorsys.testing import settle
from tests.actors._helpers import Echo


class Tree(Actor):
    """Spawns ``fanout`` children per level down to ``depth``; records post_stop order."""

    def __init__(self, depth: int, fanout: int, stopped: list[str]) -> None:
        super().__init__()
        self.depth = depth
        self.fanout = fanout
        self.stopped = stopped

    def pre_start(self) -> None:
        if self.depth > 0:
            for _ in range(self.fanout):
                self.context.spawn(lambda: Tree(self.depth - 1, self.fanout, self.stopped))

    async def post_stop(self) -> None:
        await asyncio.sleep(0)
        self.stopped.append(self.context.self.path)

    def receive(self, message: Any) -> None:
        self.context.sender.tell(len(self.context.children))


async def test_shutdown_stops_children_before_their_parents_post_stop() -> None:
    stopped: list[str] = []
    async with ActorSystem("ordered") as system:
        for name in ("left", "right"):
            system.spawn(lambda: Tree(3, 2, stopped), name)
    assert len(stopped) == 2 * (1 + 2 + 4 + 8)
    position = {path: i for i, path in enumerate(stopped)}
    for path, i in position.items():
        parent = path.rsplit("/", 1)[0]
        if parent in position:
            assert position[parent] > i, f"{parent} stopped before its child {path}"


async def test_async_with_shuts_the_system_down_also_when_the_block_raises() -> None:
    stopped: list[str] = []
    system = ActorSystem("raising")

    async def use_then_raise() -> None:
        async with system:
            system.spawn(lambda: Tree(1, 3, stopped), "tree")
            await asyncio.sleep(0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await use_then_raise()
    assert not system.is_running
    assert system.live_actor_count == 0
    assert len(stopped) == 4
    await system.when_terminated()


async def test_shutdown_waits_for_the_current_message_of_a_busy_actor() -> None:
    events: list[str] = []
    started = asyncio.Event()
    gate = asyncio.Event()

    class Busy(Actor):
        async def receive(self, message: Any) -> None:
            started.set()
            await gate.wait()
            events.append("handled")

        def post_stop(self) -> None:
            events.append("post_stop")

    system = ActorSystem("busy")
    await system.start()
    system.spawn(Busy).tell("work")
    await started.wait()
    shutting_down = asyncio.ensure_future(system.shutdown())
    await settle()
    assert not shutting_down.done()  # waiting for the message being handled
    assert events == []
    gate.set()
    await shutting_down
    assert events == ["handled", "post_stop"]


async def test_shutdown_with_ten_thousand_live_actors_completes_without_leaking_tasks() -> None:
    tasks_before = asyncio.all_tasks()
    stopped: list[str] = []
    system = ActorSystem("big")
    async with system:
        parents = [system.spawn(lambda: Tree(1, 99, stopped)) for _ in range(100)]
        assert [await parent.ask("children") for parent in parents] == [99] * 100
        assert system.live_actor_count == 10_000
        for parent in parents:
            parent.tell("more mail")  # some actors still have mail queued at shutdown
    assert system.live_actor_count == 0
    assert len(stopped) == 10_000
    assert not system.is_running
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks_before


async def test_shutdown_is_idempotent_and_concurrent_calls_wait_for_the_same_end() -> None:
    system = ActorSystem("twice")
    await system.start()
    system.spawn(lambda: Tree(2, 2, []))
    await asyncio.gather(system.shutdown(), system.shutdown())
    await system.shutdown()
    assert not system.is_running
    assert system.live_actor_count == 0


class Recorder(Extension):
    def __init__(self, name: str, events: list[str]) -> None:
        self.name = name
        self.events = events

    async def start(self, system: ActorSystem) -> None:
        self.events.append(f"{self.name}:start")

    async def close(self) -> None:
        self.events.append(f"{self.name}:close")


class FailingClose(Recorder):
    async def close(self) -> None:
        await super().close()
        raise OSError("flush failed")


async def test_extensions_start_in_order_and_close_in_reverse_after_every_actor_stopped(
    logs: list[dict[str, Any]],
) -> None:
    events: list[str] = []

    class Stopping(Actor):
        def post_stop(self) -> None:
            events.append("actor:post_stop")

    journal = Recorder("journal", events)
    system = ActorSystem(
        "ext", extensions=[journal, FailingClose("snapshots", events), Recorder("last", events)]
    )
    async with system:
        system.spawn(Stopping)
        assert system.extension(Recorder) is journal
        assert system.find_extension(FailingClose) is not None
    assert events == [
        "journal:start",
        "snapshots:start",
        "last:start",
        "actor:post_stop",
        "last:close",
        "snapshots:close",  # its failure is logged, the others still close
        "journal:close",
    ]
    assert [e["error"] for e in logs if e["event"] == "extension_close_failed"] == [
        "OSError('flush failed')"
    ]


async def test_asking_for_a_missing_extension_says_how_to_register_it() -> None:
    async with ActorSystem("plain") as system:
        assert system.find_extension(Recorder) is None
        with pytest.raises(ActorSystemError) as caught:
            system.extension(Recorder)
    assert str(caught.value) == (
        "actor system 'plain' has no Recorder extension: pass one with "
        "ActorSystem('plain', extensions=[Recorder(...)])"
    )


async def test_when_terminated_needs_a_started_system_and_returns_after_shutdown() -> None:
    system = ActorSystem("lonely")
    with pytest.raises(ActorSystemError, match=r"^actor system 'lonely' was never started$"):
        await system.when_terminated()
    async with system:
        waiting = asyncio.ensure_future(system.when_terminated())
        await asyncio.sleep(0)
        assert not waiting.done()
    await waiting


async def test_a_system_that_is_never_shut_down_warns_with_resource_warning() -> None:
    system = ActorSystem("leaky")
    await system.start()
    await asyncio.sleep(0)
    del system  # the actor tree refers to the system: only the collector finds it unreachable
    with pytest.warns(ResourceWarning, match="actor system 'leaky' was not shut down"):
        gc.collect()


async def test_a_system_shut_down_before_it_started_is_terminated_and_cannot_start() -> None:
    system = ActorSystem("never")
    await system.shutdown()
    assert not system.is_running
    with pytest.raises(ActorSystemError, match=r"^actor system 'never' was already started$"):
        await system.start()


def test_run_executes_a_coroutine_on_a_fresh_loop_with_or_without_uvloop() -> None:
    async def main() -> tuple[str, Any]:
        async with ActorSystem("run") as system:
            ref: ActorRef = system.spawn(Echo)
            loop = type(asyncio.get_running_loop()).__module__
            return loop, await ref.ask("hi")

    loop_module, answer = run(main())
    assert (loop_module.split(".")[0], answer) == ("uvloop", "hi")
    loop_module, answer = run(main(), use_uvloop=False)
    assert (loop_module.split(".")[0], answer) == ("asyncio", "hi")
