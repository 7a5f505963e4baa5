"""The actor system: the root of the supervision tree, dead letters, extensions, shutdown."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from actorsys._actor import Actor
from actorsys._cell import ActorCell
from actorsys._clock import Clock, LoopClock
from actorsys._context import ActorFactory
from actorsys._errors import ActorSystemError
from actorsys._event_stream import EventStream
from actorsys._lifecycle import CREATE
from actorsys._logging import get_logger
from actorsys._mailbox import Mailbox, MailboxQueue
from actorsys._messages import DeadLetter
from actorsys._ref import ActorRef, _AskTimeouts, _DeadLettersRef
from actorsys._supervision import DEFAULT_STRATEGY, SupervisorStrategy

log = get_logger("actorsys")

E = TypeVar("E", bound="Extension")
T = TypeVar("T")


class Extension:
    """Something that lives as long as an actor system (a journal, a registry).

    ``start`` runs when the system starts, ``close`` during shutdown after every actor stopped,
    in reverse order of registration.
    """

    async def start(self, system: ActorSystem) -> None:
        """Called once when the system starts."""

    async def close(self) -> None:
        """Called once during shutdown, after all actors have stopped."""


class _Guardian(Actor):
    """The parent of every top-level actor (``/user``)."""

    def __init__(self, strategy: SupervisorStrategy) -> None:
        super().__init__()
        self.supervisor_strategy = strategy

    def receive(self, message: Any) -> None:
        self.unhandled(message)


_DEAD_LETTER_BURST = 10
_DEAD_LETTER_INTERVAL = 5.0


class ActorSystem:
    """A tree of actors on the running event loop.

    Use it as ``async with ActorSystem("app") as system:``; leaving the block shuts it down
    gracefully: user actors stop top-down (children before their parents finish), then the
    extensions (journals) are flushed and closed.

    ``guardian_strategy`` supervises the top-level actors (default: restart them); a failure it
    escalates reaches the root, which shuts the system down. ``clock`` is what timers, receive
    timeouts, ask timeouts, backoff, restart-limit windows and the dead-letter log limit go by
    (default: the loop's clock; tests pass :class:`actorsys.testing.ManualClock` to advance time
    without sleeping).
    """

    def __init__(
        self,
        name: str = "actorsys",
        *,
        extensions: Sequence[Extension] = (),
        guardian_strategy: SupervisorStrategy = DEFAULT_STRATEGY,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        # None until start() picks the loop's clock; the runtime reads it directly once started.
        self._clock: Clock = clock  # type: ignore[assignment]
        self.event_stream = EventStream()
        self._extensions = list(extensions)
        self._guardian_strategy = guardian_strategy
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._guardian: ActorCell | None = None
        self._temp_cell: ActorCell = None  # type: ignore[assignment]
        self.dead_letters: ActorRef = None  # type: ignore[assignment]
        self._state = "new"
        self._shutdown_task: asyncio.Task[None] | None = None
        self._terminated: asyncio.Future[None] | None = None
        self._system_tasks: set[asyncio.Task[Any]] = set()
        self._before_stop: list[Callable[[], Awaitable[None]]] = []  # actorsys.runtime
        self._ask_timeouts: dict[float, _AskTimeouts] = {}  # pending asks by their timeout
        self._ready: list[MailboxQueue] = []  # drains to run (actorsys._mailbox.run_ready)
        self._dead_letter_count = 0
        self._dead_letter_window = 0.0
        self._dead_letters_suppressed = 0
        self.log = log.bind(system=name)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> ActorSystem:
        """Start the system on the running loop (``async with`` does this)."""
        if self._state != "new":
            raise ActorSystemError(f"actor system {self.name!r} was already started")
        self._loop = asyncio.get_running_loop()
        if self._clock is None:
            self._clock = LoopClock(self._loop)
        self._terminated = self._loop.create_future()
        self._temp_cell = ActorCell(self, None, "temp", None)
        self.dead_letters = _DeadLettersRef(ActorCell(self, None, "deadLetters", None))
        strategy = self._guardian_strategy
        self._guardian = ActorCell(self, None, "user", lambda: _Guardian(strategy))
        self._guardian._post_system(CREATE)
        self._state = "running"
        started: list[Extension] = []
        try:
            for extension in self._extensions:
                await extension.start(self)
                started.append(extension)
        except BaseException:
            self._extensions = started  # shut down what did start, then say why it could not
            await self.shutdown()
            raise
        self.log.debug("actor_system_started")
        return self

    async def __aenter__(self) -> ActorSystem:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_state", None) == "running":
            _warn(
                f"actor system {self.name!r} was not shut down: use `async with ActorSystem(...)` "
                "or `await system.shutdown()`",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )

    @property
    def clock(self) -> Clock:
        """What this system's timers and timeouts wait by."""
        if self._clock is None:
            raise ActorSystemError(f"actor system {self.name!r} was never started")
        return self._clock

    @property
    def is_running(self) -> bool:
        """Whether the system accepts new actors."""
        return self._state == "running"

    async def shutdown(self) -> None:
        """Stop every actor (children first), then close the extensions. Idempotent."""
        if self._state == "new":
            self._state = "terminated"
            return
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._shutdown_task)

    async def _shutdown(self) -> None:
        for hook in self._before_stop:  # while actors still run (a cluster's graceful leave)
            try:
                await hook()
            except Exception as error:
                self.log.error("before_stop_hook_failed", hook=repr(hook), error=repr(error))
        self._state = "stopping"
        guardian = self._guardian
        assert guardian is not None
        started = time.monotonic()
        guardian.stop(guardian._ref)
        await guardian._termination_future()
        while self._system_tasks:  # background work of libraries (actorsys.runtime)
            await asyncio.wait(list(self._system_tasks))
        for extension in reversed(self._extensions):
            try:
                await extension.close()
            except Exception as error:
                self.log.error(
                    "extension_close_failed", extension=repr(extension), error=repr(error)
                )
        self._state = "terminated"
        self.log.debug("actor_system_terminated", seconds=round(time.monotonic() - started, 3))
        assert self._terminated is not None
        if not self._terminated.done():
            self._terminated.set_result(None)

    async def when_terminated(self) -> None:
        """Wait until the system has shut down (also after an escalation reached the root)."""
        if self._terminated is None:
            raise ActorSystemError(f"actor system {self.name!r} was never started")
        await asyncio.shield(self._terminated)

    # ------------------------------------------------------------------ actors

    def spawn(
        self, factory: ActorFactory, name: str | None = None, *, mailbox: Mailbox | None = None
    ) -> ActorRef:
        """Start a top-level actor; ``factory`` is an Actor subclass or a zero-argument callable
        returning a fresh instance (called again on every restart)."""
        if self._state != "running":
            raise ActorSystemError(
                f"cannot spawn: actor system {self.name!r} is {self._state}; spawn inside "
                f"`async with ActorSystem({self.name!r}) as system:`"
            )
        assert self._guardian is not None
        return self._guardian.spawn(factory, name, mailbox=mailbox)

    def stop(self, ref: ActorRef) -> asyncio.Future[None]:
        """Stop ``ref`` after its current message; await the result to wait for termination."""
        cell = ref._cell
        future = cell._termination_future()
        cell.stop(ref)
        return future

    def extension(self, kind: type[E]) -> E:
        """The registered extension of this type."""
        for extension in self._extensions:
            if isinstance(extension, kind):
                return extension
        raise ActorSystemError(
            f"actor system {self.name!r} has no {kind.__name__} extension: pass one with "
            f"ActorSystem({self.name!r}, extensions=[{kind.__name__}(...)])"
        )

    def find_extension(self, kind: type[E]) -> E | None:
        """The registered extension of this type, or None."""
        for extension in self._extensions:
            if isinstance(extension, kind):
                return extension
        return None

    @property
    def live_actor_count(self) -> int:
        """How many actors (below the guardian) have been started and not yet terminated."""
        guardian = self._guardian
        return sum(1 for _ in guardian._iter_descendants()) if guardian is not None else 0

    # ------------------------------------------------------------------ internals

    def _spawn_system_task(
        self, coroutine: Coroutine[Any, Any, Any], name: str | None
    ) -> asyncio.Task[Any]:
        if self._state == "new":
            coroutine.close()
            raise ActorSystemError(f"actor system {self.name!r} was never started")
        task = self._loop.create_task(coroutine, name=name)
        self._system_tasks.add(task)
        task.add_done_callback(self._system_task_done)
        return task

    def _system_task_done(self, task: asyncio.Task[Any]) -> None:
        self._system_tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.log.error(
                "system_task_failed", task=task.get_name(), error=repr(error), exc_info=error
            )

    def _guardian_failed(self, error: Exception) -> None:
        self.log.error("escalation_reached_root", error=repr(error), exc_info=error)
        if self._state == "running":
            self._shutdown_task = asyncio.ensure_future(self._shutdown())

    def _dead_letter(self, message: Any, sender: ActorRef | None, recipient: ActorRef) -> None:
        if isinstance(message, DeadLetter):
            return
        self.event_stream.publish(DeadLetter(message, sender, recipient))
        self._log_rate_limited("dead_letter", message, sender, recipient)

    def _unhandled(self, message: Any, sender: ActorRef | None, recipient: ActorRef) -> None:
        self.event_stream.publish(DeadLetter(message, sender, recipient))
        self._log_rate_limited("unhandled_message", message, sender, recipient)

    def _log_rate_limited(
        self, event: str, message: Any, sender: ActorRef | None, recipient: ActorRef
    ) -> None:
        now = self._clock.time()
        if now - self._dead_letter_window > _DEAD_LETTER_INTERVAL:
            if self._dead_letters_suppressed:
                self.log.info("dead_letters_suppressed", count=self._dead_letters_suppressed)
            self._dead_letter_window = now
            self._dead_letter_count = 0
            self._dead_letters_suppressed = 0
        self._dead_letter_count += 1
        if self._dead_letter_count <= _DEAD_LETTER_BURST:
            self.log.info(
                event,
                message=repr(message)[:200],
                sender=sender.path if sender is not None else None,
                recipient=recipient.path,
            )
        else:
            self._dead_letters_suppressed += 1

    def __repr__(self) -> str:
        return f"ActorSystem({self.name!r}, {self._state})"


def run(
    main: Coroutine[Any, Any, T], *, use_uvloop: bool = True, gc_threshold: int | None = None
) -> T:
    """Run ``main`` to completion on a new event loop: uvloop's where it is installed (a
    dependency only on platforms where it builds), else (or with ``use_uvloop=False``) asyncio's.

    ``gc_threshold`` (opt-in; the library never changes garbage-collector settings otherwise):
    the allocation threshold of the youngest generation of Python's cyclic garbage collector
    while ``main`` runs (CPython's default is 700), restored when ``run`` returns. A
    write-heavy application allocates several short-lived objects per persisted event; a higher
    threshold (e.g. ``50_000``) lets most of them die before a collection sees them, so fewer
    are promoted into the older generations, whose full collections cost the most.
    """
    if gc_threshold is not None and (
        isinstance(gc_threshold, bool) or not isinstance(gc_threshold, int) or gc_threshold < 1
    ):
        raise ValueError(f"gc_threshold must be a positive int or None, got {gc_threshold!r}")
    loop_factory = None
    if use_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:  # uvloop is optional at run time
            pass
    thresholds = gc.get_threshold()
    if gc_threshold is not None:
        gc.set_threshold(gc_threshold, *thresholds[1:])
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    finally:
        if gc_threshold is not None:
            gc.set_threshold(*thresholds)
