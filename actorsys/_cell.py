"""An actor's drain loop and lifecycle: creating, restarting and stopping its instance.

The cell is the actor's runtime: one object, stacked Akka-style from layers that each own a
concern: the public face (``_context.ActorContext``: what an actor may use), the mailbox queue
(``_mailbox.MailboxQueue``), fault handling (``_fault_handling.FaultHandling``: supervision
decisions), and this module's ``ActorCell``: the drain, creating, restarting and stopping the
actor's instance, and waiting for its children to terminate. ``actor.context`` is the cell, typed
as ``ActorContext``.

The mailbox queue is drained by a plain call from a loop callback when mail arrives (the system's
ready list, ``_mailbox.run_ready``): a plain-function handler costs no ``await`` per message. Only
when a handler (or a lifecycle hook) returns an awaitable does the cell switch to a task, which
awaits it and then resumes the plain drain. System messages (create, failed, resume, restart, stop)
are processed before user messages, always between two user messages (states and system messages:
``_lifecycle``).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from actorsys._context import NO_ENVELOPE, RECEIVE, ActorFactory, RareField, envelope_of
from actorsys._errors import (
    ActorDeadError,
    ActorInitializationError,
    ActorKilledError,
    ActorSystemError,
)
from actorsys._fault_handling import FaultHandling, log_failure
from actorsys._lifecycle import STOP, State, Sys
from actorsys._mailbox import Mailbox
from actorsys._messages import Kill, PoisonPill, ReceiveTimeout, Terminated
from actorsys._ref import ActorRef, BoundedActorRef, _PromiseRef
from actorsys._timers import _TimerMessage

if TYPE_CHECKING:
    from actorsys._actor import Actor
    from actorsys._system import ActorSystem

_THROUGHPUT = 300
"""Messages one actor handles before it yields the loop to others."""

_RUNTIME = frozenset(
    {type(PoisonPill), type(Kill), Terminated, _TimerMessage, type(ReceiveTimeout)}
)
"""Messages the runtime handles itself (or checks) before the actor's behavior sees them."""

_SPECIAL = _RUNTIME | {tuple}
"""Mailbox entries the drain hands to ``_special``: runtime messages and envelopes (mail with a
sender; see ``_context.envelope_of``)."""


_constructing: ActorCell | None = None
"""The cell whose actor instance is being constructed (read by ``Actor.__init__``)."""


def constructing_cell() -> ActorCell | None:
    return _constructing


class ActorCell(FaultHandling):
    """One actor's runtime state; exposed to the actor as ``self.context``."""

    __slots__ = ("_actor", "_factory", "_processed", "_state", "_task")

    _actor: Actor | None
    _state: State
    _factory: ActorFactory | None
    _processed: int
    _task: asyncio.Task[None] | None
    _termination: RareField[asyncio.Future[None] | None] = RareField(None)
    _death_cause: RareField[BaseException | None] = RareField(None)
    _children_changed: RareField[asyncio.Future[None] | None] = RareField(None)

    def __init__(
        self,
        system: ActorSystem,
        parent: ActorCell | None,
        name: str,
        factory: ActorFactory | None,
        mailbox: Mailbox | None = None,
    ) -> None:
        self.system = system
        self._loop = system._loop
        self._parent = parent
        self._name = name
        bounded = mailbox is not None and mailbox.capacity is not None
        self._ref = BoundedActorRef(self) if bounded else ActorRef(self)
        self._factory = factory
        self._actor = None
        self._behavior = None
        self._mail = None
        self._sys = None
        self._scheduled = False
        self._suspended = True
        self._state = State.NEW
        self._current = NO_ENVELOPE
        self._processed = 0
        self._children = None
        self._task = None
        self._rare = None  # the rest, on first use (actorsys._context._RARE)
        if mailbox is not None and mailbox.capacity is not None:
            self._capacity = mailbox.capacity
            self._overflow = mailbox.overflow

    # ------------------------------------------------------------------ state

    @property
    def _dead(self) -> bool:
        return self._state is State.DEAD

    def _termination_future(self) -> asyncio.Future[None]:
        """A future resolved once this actor has terminated."""
        if self._termination is None:
            self._termination = self._loop.create_future()
            if self._state is State.DEAD:
                self._termination.set_result(None)
        return self._termination

    def _iter_descendants(self) -> Iterator[ActorCell]:
        for child in list(self._children.values()) if self._children else ():
            yield child
            yield from child._iter_descendants()

    def _new_child(self, factory: ActorFactory, name: str, mailbox: Mailbox | None) -> ActorCell:
        return ActorCell(self.system, self, name, factory, mailbox)

    # ------------------------------------------------------------------ the drain

    def _post_system(self, message: tuple[Any, ...]) -> None:
        if self._state is State.DEAD:
            return
        task = self._task
        if task is not None:
            if task.done():
                # The task was cancelled before its first step (the loop's teardown cancels
                # every task), so it never cleaned up: recover here, or this actor could never
                # stop.
                self._interrupted()
            elif (
                message is STOP and self._state is State.NEW and task is not asyncio.current_task()
            ):
                # A stop does not wait for a start that may never finish (a persistent actor
                # recovering from a journal that does not answer): the start is cancelled, and
                # the cancelled task stops the actor (post_stop, watchers, see _interrupted).
                task.cancel()
        self._enqueue_system(message)

    def _run(self) -> None:
        budget = _THROUGHPUT
        try:
            while True:
                if self._sys:
                    pending = self._system_message(self._next_system())
                    if pending is not None:
                        self._continue_in_task(pending, None)
                        return
                    continue
                mail = self._mail
                if not mail or self._suspended:
                    break
                # The hot loop: plain handlers, nothing per message but the entry being handled.
                popleft = mail.popleft
                count = len(mail)
                if count > budget:  # noqa: PLR1730 (min() is a call, this runs per drain)
                    count = budget
                for index in range(count):
                    entry = self._current = popleft()
                    try:
                        if entry.__class__ in _SPECIAL:  # an envelope, or a runtime message
                            pending = self._special(entry)
                        elif self._behavior is RECEIVE:
                            pending = self._actor.receive(entry)  # type: ignore[union-attr]
                        else:
                            pending = self._behavior(entry)  # type: ignore[misc]
                    except Exception as error:
                        self._fail(error, entry)
                        break
                    if pending is not None and inspect.isawaitable(pending):
                        self._processed += _THROUGHPUT - budget + index + 1
                        self._continue_in_task(pending, entry)
                        return
                    if self._sys:  # the handler posted lifecycle work (stop, ...)
                        break
                else:
                    budget -= count
                    if not budget:
                        self._processed += _THROUGHPUT
                        self._current = NO_ENVELOPE
                        self._run_soon()  # still scheduled: others get their turn first
                        return
                    continue
                budget -= index + 1  # the loop broke off after this message
        except BaseException:
            # Not a failure to supervise (KeyboardInterrupt, SystemExit, cancellation, or a
            # runtime bug): stop this actor so a shutdown can still complete, and re-raise.
            self._processed += _THROUGHPUT - budget
            self._interrupted()
            raise
        self._processed += _THROUGHPUT - budget
        self._current = NO_ENVELOPE
        self._scheduled = False
        if not self._mail:
            self._mail = None  # ran dry: an idle actor holds no queue (MailboxQueue._idle)
        if self._rare is not None:  # it may have a receive timeout
            self._idle()

    def _continue_in_task(self, pending: Awaitable[Any], entry: Any) -> None:
        """Await ``pending`` in a task, then drain on; ``entry`` is the mailbox entry whose handler
        returned it (None for a lifecycle hook)."""
        self._task = self._loop.create_task(self._await_then_run(pending, entry))

    async def _await_then_run(self, pending: Awaitable[Any], entry: Any) -> None:
        try:
            await pending
        except Exception as error:
            self._current = NO_ENVELOPE
            if entry is not None:
                self._fail(error, entry)
            else:
                self.log.error("actor_lifecycle_failed", error=repr(error), exc_info=error)
        except BaseException:
            self._interrupted()
            raise
        self._current = NO_ENVELOPE
        self._task = None
        self._run()

    def _interrupted(self) -> None:
        """A BaseException escaped a handler or hook, or this actor's task was cancelled.

        That is no failure to supervise: the actor stops, so that a shutdown still completes.
        """
        current = self._current
        if current.__class__ is tuple and current[1].__class__ is _PromiseRef:
            current[1].fail(ActorDeadError(self.path))
        self._current = NO_ENVELOPE
        self._task = None
        if self._state is State.STOPPING:
            self._continue_in_task(self._terminate(), None)  # termination was cut short: again
        else:
            self._scheduled = False
            self._post_system(STOP)

    def _receive(self, message: Any) -> Awaitable[None] | None:
        """Hand ``message`` to the current behavior."""
        behavior = self._behavior
        if behavior is RECEIVE:
            return self._actor.receive(message)  # type: ignore[union-attr]
        return behavior(message)  # type: ignore[misc]

    def _special(self, entry: Any) -> Awaitable[None] | None:
        """Handle a mailbox entry the drain does not: an envelope (a message told with a sender),
        or a runtime message (see ``_RUNTIME``)."""
        message = entry
        cls = entry.__class__
        if cls is tuple:
            message = entry[0]
            cls = message.__class__
            if cls not in _RUNTIME:  # the common case (an ask, a reply): _receive, inlined
                if self._behavior is RECEIVE:
                    return self._actor.receive(message)  # type: ignore[union-attr]
                return self._behavior(message)  # type: ignore[misc]
        behavior = self._receive
        if cls is Terminated:
            watching = self._watching
            if watching is None or message.ref not in watching:
                return None  # unwatched after it was queued
            watching.discard(message.ref)
            return behavior(message)
        if cls is _TimerMessage:
            if self._timers is None:
                return None
            current, payload = self._timers.accept(message)
            return behavior(payload) if current else None
        if message is PoisonPill:
            self._post_system(STOP)
            return None
        if message is Kill:
            raise ActorKilledError(f"{self.path} received Kill")
        return behavior(message)  # ReceiveTimeout

    def _system_message(self, message: tuple[Any, ...]) -> Awaitable[None] | None:
        kind = message[0]
        if kind is Sys.CREATE:
            return self._create()
        if kind is Sys.STOP:
            return self._stop()
        if self._state >= State.STOPPING:
            return None
        if kind is Sys.FAILED:
            self._child_failed(message[1], message[2], message[3], message[4])
            return None
        if kind is Sys.RESUME:
            self._resume(message[1])
            return None
        if kind is Sys.RESTART:
            return self._restart(message[1], message[2])
        raise AssertionError(f"unknown system message {message!r}")

    # ------------------------------------------------------------------ lifecycle

    def _new_instance(self) -> Actor:
        # Imported here: actorsys._actor imports this module to find the cell being constructed.
        from actorsys._actor import Actor

        global _constructing
        previous, _constructing = _constructing, self
        try:
            actor = self._factory()  # type: ignore[misc]
        finally:
            _constructing = previous
        if not isinstance(actor, Actor):
            raise TypeError(
                f"the factory of {self.path} returned {actor!r}, not an Actor: pass an Actor "
                "subclass or a callable returning a new instance"
            )
        if getattr(actor, "_actor_cell", None) is not self:
            raise ActorSystemError(
                f"{type(actor).__name__}.__init__ did not call Actor.__init__: "
                "did you forget super().__init__()?"
            )
        self._actor = actor
        self._behavior = RECEIVE
        self._behavior_stack = None
        return actor

    def _create(self) -> Awaitable[None] | None:
        if self._state is not State.NEW:
            return None
        try:
            pending = self._new_instance()._around_start(None)
        except Exception as error:
            self._fail(ActorInitializationError(self.path, error), None)
            return None
        if pending is not None:
            return self._finish_start(pending)
        self._started()
        return None

    async def _finish_start(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception as error:
            self._fail(ActorInitializationError(self.path, error), None)
            return
        self._started()

    def _started(self) -> None:
        self._state = State.RUNNING
        self._suspended = False

    async def _restart(self, reason: Exception, message: Any) -> None:
        self._state = State.RESTARTING
        self._suspended = True
        self._cancel_timers()
        old = self._actor
        if old is not None:
            try:
                pending = old._around_restart(reason, message)
                if pending is not None:
                    await pending
            except Exception as error:
                self.log.error("pre_restart_failed", error=repr(error), exc_info=error)
        await self._await_children(ActorCell._stopping)
        # Children that pre_restart kept are restarted once this actor is up again (Akka's
        # finishRecreate): one of them may be the child whose escalated failure caused this
        # restart, suspended until then.
        survivors = list(self._children.values()) if self._children else None
        if self._stash:
            stash, self._stash = self._stash, None
            self._prepend(stash)
        self._behavior = self._behavior_stack = None
        self._state = State.NEW
        try:
            pending = self._new_instance()._around_start(reason)
            if pending is not None:
                await pending
        except Exception as error:
            self._fail(ActorInitializationError(self.path, error), None)
            return
        self.log.info("actor_restarted", reason=repr(reason))
        self._started()
        for child in survivors or ():
            child._post_system((Sys.RESTART, reason, None))

    def _stop(self) -> Awaitable[None] | None:
        if self._state >= State.STOPPING:
            return None
        self._state = State.STOPPING
        self._suspended = True
        self._cancel_timers()
        return self._terminate()

    async def _terminate(self) -> None:
        self._stop_children()
        await self._await_children(lambda c: True)
        actor = self._actor
        if actor is not None and self._behavior is not None:
            try:
                pending = actor._around_stop()
                if pending is not None:
                    await pending
            except Exception as error:
                self.log.error("post_stop_failed", error=repr(error), exc_info=error)
        self._finish_termination()

    def _stop_for(self, cause: BaseException) -> None:
        """Stop this actor because of ``cause``, which asks to it then report (ActorDeadError).

        For a supervisor's stop after a failure, and for library actors that stop on an error
        (the persistent actor, when its journal fails).
        """
        if self._state < State.STOPPING and self._death_cause is None:
            self._death_cause = cause
        self._post_system(STOP)

    def _stop_children(self) -> None:
        """Ask every child to stop."""
        for child in list(self._children.values()) if self._children else ():
            child._post_system(STOP)

    def _stopping(self) -> bool:
        """Whether this actor is stopping, or has a stop request waiting to be processed."""
        return self._state is State.STOPPING or (self._sys is not None and STOP in self._sys)

    async def _await_children(self, condition: Callable[[ActorCell], bool]) -> None:
        while self._children and any(condition(c) for c in self._children.values()):
            self._children_changed = self._loop.create_future()
            await self._children_changed

    def _child_terminated(self, child: ActorCell) -> None:
        children = self._children
        if children is not None and children.get(child._name) is child:
            del children[child._name]
        waiter = self._children_changed
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _cancel_timers(self) -> None:
        if self._timers is not None:
            self._timers.cancel_all()
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        self._receive_timeout = None

    def _finish_termination(self) -> None:
        self._state = State.DEAD
        sys_queue, mail = self._close()
        for pending in sys_queue or ():
            if pending[0] is Sys.FAILED:  # a child failed while this actor stopped: no decision
                log_failure(pending[1], pending[2], pending[3], None, pending[4])
        stash, self._stash = self._stash, None
        system = self.system
        for entry in itertools.chain(stash or (), mail or ()):
            message, sender = envelope_of(entry)
            if sender.__class__ is _PromiseRef:
                sender.fail(ActorDeadError(self.path, self._death_cause))
            elif message.__class__ not in _RUNTIME:
                system._dead_letter(message, sender, self._ref)
        for watcher in self._watchers or ():
            watcher.tell(Terminated(self._ref))
        self._watchers = None
        for watched in self._watching or ():
            watchers = watched._cell._watchers
            if watchers is not None:
                watchers.discard(self._ref)
        self._watching = None
        self._actor = None
        self._behavior = self._behavior_stack = None
        if self._parent is not None:
            self._parent._child_terminated(self)
        if self._termination is not None and not self._termination.done():
            self._termination.set_result(None)

    def __repr__(self) -> str:
        return f"<ActorCell {self.path} {self._state.name}>"
