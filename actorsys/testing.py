"""Tools for testing actors: a probe that receives and checks messages, a clock that moves only
when told, and assertions on what the library logged.

::

    probe = TestProbe(system)
    probe.send(account, Deposit(10))
    await probe.expect_message(Accepted(10))

    async with expect_logged("warning", "dead_letter"):   # Akka's EventFilter.warning(...)
        stopped.tell("hello?")

Log capture is structlog's (:func:`capture_logs`, re-exported here): the library logs through
structlog when the application configured it, so a test that captures logs for its whole run (an
autouse fixture around ``capture_logs()``) sees every library event with its key/values.
"""

# The probe's expectations take a `timeout` like Akka's expectMsg(max): it bounds one expectation.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import Any, TypeVar

import structlog
from structlog.testing import capture_logs

from actorsys._actor import Actor
from actorsys._clock import ManualClock, settle
from actorsys._messages import Terminated
from actorsys._public import publish
from actorsys._ref import ActorRef
from actorsys._system import ActorSystem

__all__ = [
    "LogExpectation",
    "ManualClock",
    "TestProbe",
    "capture_logs",
    "expect_logged",
    "settle",
]

M = TypeVar("M")

DEFAULT_TIMEOUT = 3.0
"""Seconds an expectation waits when given no timeout, outside a ``within`` block."""

_ANY: Any = object()


class _ProbeActor(Actor):
    def __init__(self, queue: asyncio.Queue[tuple[Any, ActorRef]]) -> None:
        super().__init__()
        self._queue = queue

    def receive(self, message: Any) -> None:
        self._queue.put_nowait((message, self.context.sender))


def _seconds(value: float) -> str:
    return f"{value:.3g}"


class TestProbe:
    """An actor whose mail a test can await: ``await probe.expect_message("pong")``.

    Every expectation takes a ``timeout`` in seconds; without one it waits 3 s, or, inside a
    :meth:`within` block, what is left of the block. A failed expectation raises
    ``AssertionError`` naming the probe and what arrived instead.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, system: ActorSystem, name: str | None = None) -> None:
        self._queue: asyncio.Queue[tuple[Any, ActorRef]] = asyncio.Queue()
        self.ref = system.spawn(lambda: _ProbeActor(self._queue), name)
        self._system = system
        self.last_sender: ActorRef | None = None
        """The sender of the last message received (what :meth:`reply` answers)."""
        self.last_message: Any = None
        """The last message received (what :meth:`forward` passes on by default)."""
        self._received_any = False
        self._deadline: float | None = None  # of the innermost within block, system clock

    # ------------------------------------------------------------------ time

    def _timeout(self, timeout: float | None) -> float:
        if timeout is not None:
            return timeout
        if self._deadline is not None:
            return max(self._deadline - self._system.clock.time(), 0.0)
        return DEFAULT_TIMEOUT

    @property
    def remaining(self) -> float:
        """Seconds left in the innermost :meth:`within` block (AssertionError outside one)."""
        if self._deadline is None:
            raise AssertionError(f"{self.ref.path}: remaining is only known inside within()")
        return max(self._deadline - self._system.clock.time(), 0.0)

    @asynccontextmanager
    async def within(self, minimum: float, maximum: float | None = None) -> AsyncIterator[None]:
        """Check that the block takes between ``minimum`` and ``maximum`` seconds.

        ``within(2)`` means at most 2 s; ``within(0.5, 2)`` at least 0.5 s and at most 2 s, as
        Akka's ``within(min, max)``. Time is the system's clock, so with a :class:`ManualClock`
        the block's duration is what the test advanced. Expectations inside the block that are
        given no timeout wait at most for the time left (:attr:`remaining`); a nested block ends
        no later than the one around it. The block is not interrupted: its duration is checked
        when it ends, unless it raised.
        """
        if maximum is None:
            minimum, maximum = 0.0, minimum
        if not 0 <= minimum <= maximum:
            raise ValueError(f"within needs 0 <= min <= max, got within({minimum!r}, {maximum!r})")
        clock = self._system.clock
        start = clock.time()
        outer = self._deadline
        self._deadline = start + maximum if outer is None else min(outer, start + maximum)
        try:
            yield
        finally:
            self._deadline = outer
        elapsed = clock.time() - start
        bounds = f"within({_seconds(minimum)}, {_seconds(maximum)})"
        if elapsed > maximum:
            raise AssertionError(
                f"{self.ref.path}: the block took {_seconds(elapsed)} s, more than the "
                f"{_seconds(maximum)} s of {bounds}"
            )
        if elapsed < minimum:
            raise AssertionError(
                f"{self.ref.path}: the block took {_seconds(elapsed)} s, less than the "
                f"{_seconds(minimum)} s of {bounds}"
            )

    # ------------------------------------------------------------------ receiving

    async def _next(self, timeout: float) -> Any:
        """The next message, or TimeoutError."""
        message, sender = await asyncio.wait_for(self._queue.get(), timeout)
        self.last_sender = sender
        self.last_message = message
        self._received_any = True
        return message

    async def receive(self, timeout: float | None = None) -> Any:
        """The next message, or AssertionError if none arrives within ``timeout``."""
        timeout = self._timeout(timeout)
        try:
            return await self._next(timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.ref.path}: no message within {_seconds(timeout)} s"
            ) from None

    async def receive_n(self, n: int, timeout: float | None = None) -> list[Any]:
        """The next ``n`` messages, all received within ``timeout`` (in total), in order."""
        timeout = self._timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        received: list[Any] = []
        while len(received) < n:
            try:
                received.append(await self._next(max(deadline - loop.time(), 0.0)))
            except TimeoutError:
                raise AssertionError(
                    f"{self.ref.path}: expected {n} messages within {_seconds(timeout)} s, "
                    f"got {len(received)}: {received!r}"
                ) from None
        return received

    async def expect_message(self, expected: Any = _ANY, timeout: float | None = None) -> Any:
        """The next message; if ``expected`` is given it must equal it."""
        message = await self.receive(timeout)
        if expected is not _ANY and message != expected:
            raise AssertionError(f"{self.ref.path}: expected {expected!r}, got {message!r}")
        return message

    async def expect_message_type(self, kind: type[M], timeout: float | None = None) -> M:
        """The next message, which must be an instance of ``kind``."""
        message = await self.receive(timeout)
        if not isinstance(message, kind):
            raise AssertionError(f"{self.ref.path}: expected a {kind.__name__}, got {message!r}")
        return message

    async def expect_message_all_of(
        self, *expected: Any, timeout: float | None = None
    ) -> list[Any]:
        """The next ``len(expected)`` messages, which must equal ``expected`` in any order
        (Akka's ``expectMsgAllOf``); returns them in arrival order."""
        timeout = self._timeout(timeout)
        try:
            received = await self.receive_n(len(expected), timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; expected all of {list(expected)!r}") from None
        missing = list(expected)
        unexpected: list[Any] = []
        for message in received:
            for index, wanted in enumerate(missing):
                if wanted == message:
                    del missing[index]
                    break
            else:
                unexpected.append(message)
        if missing:
            raise AssertionError(
                f"{self.ref.path}: expected all of {list(expected)!r} in any order, got "
                f"{received!r}: missing {missing!r}, unexpected {unexpected!r}"
            )
        return received

    async def fish_for_message(
        self, predicate: Callable[[Any], bool], timeout: float | None = None
    ) -> Any:
        """Skip messages until one satisfies ``predicate`` within ``timeout``; return it."""
        timeout = self._timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped: list[Any] = []
        while True:
            try:
                message = await self._next(max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise AssertionError(
                    f"{self.ref.path}: no message within {_seconds(timeout)} s satisfied the "
                    f"predicate; skipped {skipped!r}"
                ) from None
            if predicate(message):
                return message
            skipped.append(message)

    async def expect_no_message(self, duration: float = 0.1) -> None:
        """Fail if any message arrives within ``duration`` seconds."""
        try:
            message, _ = await asyncio.wait_for(self._queue.get(), duration)
        except TimeoutError:
            return
        raise AssertionError(f"{self.ref.path}: expected no message, got {message!r}")

    # ------------------------------------------------------------------ sending

    def send(self, target: ActorRef, message: Any) -> None:
        """Tell ``target`` a message with this probe as the sender."""
        target.tell(message, self.ref)

    def reply(self, message: Any) -> None:
        """Answer the sender of the last received message."""
        if self.last_sender is None:
            raise AssertionError(f"{self.ref.path}: nothing received yet, nobody to reply to")
        self.last_sender.tell(message, self.ref)

    def forward(self, target: ActorRef, message: Any = _ANY) -> None:
        """Pass ``message`` (default: the last one received) on to ``target`` with the original
        sender as its sender, as Akka's ``probe.forward(target)``."""
        if not self._received_any:
            raise AssertionError(f"{self.ref.path}: nothing received yet, nothing to forward")
        target.tell(self.last_message if message is _ANY else message, self.last_sender)

    # ------------------------------------------------------------------ death watch

    def watch(self, target: ActorRef) -> None:
        """Receive ``Terminated(target)`` when ``target`` stops."""
        self.ref._cell.watch(target)

    async def expect_terminated(self, target: ActorRef, timeout: float | None = None) -> None:
        """Expect ``Terminated(target)`` as the next message (call ``watch`` first)."""
        timeout = self._timeout(timeout)
        try:
            message = await self._next(timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.ref.path}: no Terminated({target.path}) within {_seconds(timeout)} s "
                "(did the probe watch it?)"
            ) from None
        if message != Terminated(target):
            raise AssertionError(
                f"{self.ref.path}: expected Terminated({target.path}), got {message!r}"
            )


# ---------------------------------------------------------------------- log assertions

_LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error", "fatal": "critical"}


class LogExpectation:
    """A check that a block logged ``occurrences`` matching events (see :func:`expect_logged`).

    Use it with ``with`` (checked when the block ends) or ``async with`` (waits up to
    ``timeout`` seconds for the events, which often come from callbacks after the block). The
    matching events are in :attr:`matched`, as structlog event dicts with ``log_level``.
    """

    def __init__(
        self,
        level: str,
        event: str | None,
        fields: dict[str, Any],
        occurrences: int | None,
        timeout: float,
    ) -> None:
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {', '.join(_LEVELS)}; got {level!r}")
        if occurrences is not None and occurrences < 0:
            raise ValueError(f"occurrences must be >= 0 or None, got {occurrences}")
        self.level = level
        self.event = event
        self.fields = fields
        self.occurrences = occurrences
        self.timeout = timeout
        self.matched: list[dict[str, Any]] = []
        """The matching events logged during the block."""
        self._at_level: list[str] = []
        self._wanted = 1 if occurrences is None else occurrences
        self._enough: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._processors: list[Any] = []

    def __repr__(self) -> str:
        return f"<LogExpectation {self._description()}>"

    def _description(self) -> str:
        count = "at least 1" if self.occurrences is None else str(self.occurrences)
        what = f" {self.event!r}" if self.event is not None else ""
        where = "".join(f" {key}={value!r}" for key, value in self.fields.items())
        return f"{count} {self.level} event(s){what}{where}"

    # ------------------------------------------------------------------ the processor

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        level = _LEVEL_OF_METHOD.get(method_name, method_name)
        if level == self.level:
            name = event_dict.get("event")
            self._at_level.append(str(name))
            if (self.event is None or name == self.event) and all(
                key in event_dict and event_dict[key] == value for key, value in self.fields.items()
            ):
                self.matched.append({**event_dict, "log_level": level})
                if len(self.matched) >= self._wanted and self._enough is not None:
                    if threading.get_ident() == self._loop_thread:
                        self._enough.set()
                    elif self._loop is not None:
                        self._loop.call_soon_threadsafe(self._enough.set)
        return event_dict

    def _install(self) -> None:
        if not structlog.is_configured():
            raise RuntimeError(
                "expect_logged needs structlog configured, or the library logs to the standard "
                "logging module where its key/values cannot be matched: run the test inside "
                "`with capture_logs():` (an autouse fixture), which also catches the loggers "
                "actors bound before the block"
            )
        # Bound loggers hold the processor list itself: change it in place, as capture_logs does.
        self._processors = structlog.get_config()["processors"]
        self._processors.insert(0, self)

    def _uninstall(self) -> None:
        if self in self._processors:  # a capture_logs block ended inside ours may have reset it
            self._processors.remove(self)

    def _check(self) -> None:
        count = len(self.matched)
        if self.occurrences is None and count >= 1:
            return
        if count == self.occurrences:
            return
        logged = ", ".join(self._at_level) or "nothing"
        raise AssertionError(
            f"expected {self._description()} to be logged, got {count}; "
            f"{self.level} events logged during the block: {logged}"
        )

    # ------------------------------------------------------------------ context managers

    def __enter__(self) -> LogExpectation:
        self._install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._uninstall()
        if exc_type is None:
            self._check()

    async def __aenter__(self) -> LogExpectation:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._enough = asyncio.Event()
        self._install()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self._enough is not None and self._wanted > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._enough.wait(), self.timeout)
            if exc_type is None:
                await settle()  # more than expected may follow close behind
        finally:
            self._uninstall()
        if exc_type is None:
            self._check()


def expect_logged(
    level: str,
    event: str | None = None,
    *,
    occurrences: int | None = 1,
    timeout: float = DEFAULT_TIMEOUT,
    **fields: Any,
) -> LogExpectation:
    """Assert that the block logs ``occurrences`` events at ``level`` (``"warning"``, ...)
    named ``event`` and carrying ``fields`` (key/values that must be equal); ``occurrences=None``
    means at least one. Akka's ``EventFilter.warning(...).intercept { ... }``::

        async with expect_logged("error", "actor_failed", actor_path="/user/worker"):
            worker.tell("boom")

    ``async with`` waits up to ``timeout`` seconds for the events; ``with`` checks at once. The
    events still reach the test's own capture. It needs structlog configured for the whole test
    (an autouse fixture around :func:`capture_logs`): loggers bound while structlog was not
    configured write to the standard ``logging`` module, where their key/values are gone.
    """
    return LogExpectation(level, event, fields, occurrences, timeout)


publish(__name__, globals(), __all__)
