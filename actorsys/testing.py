"""Tools for testing actors: a probe that receives messages and checks what arrived."""

# The probe's expectations take a `timeout` like Akka's expectMsg(max): it bounds one expectation.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from actorsys._actor import Actor
from actorsys._clock import ManualClock, settle
from actorsys._messages import Terminated
from actorsys._ref import ActorRef
from actorsys._system import ActorSystem

__all__ = ["ManualClock", "TestProbe", "settle"]

M = TypeVar("M")

_ANY: Any = object()


class _ProbeActor(Actor):
    def __init__(self, queue: asyncio.Queue[tuple[Any, ActorRef]]) -> None:
        super().__init__()
        self._queue = queue

    def receive(self, message: Any) -> None:
        self._queue.put_nowait((message, self.context.sender))


class TestProbe:
    """An actor whose mail a test can await: ``await probe.expect_message("pong")``."""

    __test__ = False  # not a pytest test class

    def __init__(self, system: ActorSystem, name: str | None = None) -> None:
        self._queue: asyncio.Queue[tuple[Any, ActorRef]] = asyncio.Queue()
        self.ref = system.spawn(lambda: _ProbeActor(self._queue), name)
        self._system = system
        self.last_sender: ActorRef | None = None

    async def receive(self, timeout: float = 3.0) -> Any:
        """The next message, or AssertionError if none arrives within ``timeout``."""
        try:
            message, sender = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.ref.path}: no message within {timeout:g} s"
            ) from None
        self.last_sender = sender
        return message

    async def expect_message(self, expected: Any = _ANY, timeout: float = 3.0) -> Any:
        """The next message; if ``expected`` is given it must equal it."""
        message = await self.receive(timeout)
        if expected is not _ANY and message != expected:
            raise AssertionError(f"{self.ref.path}: expected {expected!r}, got {message!r}")
        return message

    async def expect_message_type(self, kind: type[M], timeout: float = 3.0) -> M:
        """The next message, which must be an instance of ``kind``."""
        message = await self.receive(timeout)
        if not isinstance(message, kind):
            raise AssertionError(
                f"{self.ref.path}: expected a {kind.__name__}, got {message!r}"
            )
        return message

    async def fish_for_message(
        self, predicate: Callable[[Any], bool], timeout: float = 3.0
    ) -> Any:
        """Skip messages until one satisfies ``predicate``; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.receive(max(deadline - loop.time(), 0.001))
            if predicate(message):
                return message

    async def expect_no_message(self, duration: float = 0.1) -> None:
        """Fail if any message arrives within ``duration`` seconds."""
        try:
            message, _ = await asyncio.wait_for(self._queue.get(), duration)
        except TimeoutError:
            return
        raise AssertionError(f"{self.ref.path}: expected no message, got {message!r}")

    def send(self, target: ActorRef, message: Any) -> None:
        """Tell ``target`` a message with this probe as the sender."""
        target.tell(message, self.ref)

    def reply(self, message: Any) -> None:
        """Answer the sender of the last received message."""
        if self.last_sender is None:
            raise AssertionError(f"{self.ref.path}: nothing received yet, nobody to reply to")
        self.last_sender.tell(message, self.ref)

    def watch(self, target: ActorRef) -> None:
        """Receive ``Terminated(target)`` when ``target`` stops."""
        self.ref._cell.watch(target)

    async def expect_terminated(self, target: ActorRef, timeout: float = 3.0) -> None:
        """Expect ``Terminated(target)`` as the next message (call ``watch`` first)."""
        message = await self.receive(timeout)
        if message != Terminated(target):
            raise AssertionError(
                f"{self.ref.path}: expected Terminated({target.path}), got {message!r}"
            )
