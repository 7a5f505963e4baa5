"""The runtime API: for libraries built on actorsys (persistence, sharding), not for applications.

An application needs only ``actorsys`` and ``actorsys.testing``. A library that layers its own
actor behaviour on the runtime (the persistent actor's command stash, a shard region's buffering)
needs a little more: the envelope being handled, putting envelopes back at the front of the
mailbox, a turn of an idle actor without a mailbox trip, a ref class of its own, dead letters,
completing an ask, stopping with a cause, the loop, background work that shutdown waits for,
a logger that follows the library convention (structlog's API, shown only where the
application decides), and public names that show the public package. This module is that API
and nothing else: libraries use it instead of the runtime's private names (a test keeps
``persistence`` and ``cluster`` to it), so the runtime can change behind it.

An *envelope* is ``(message, sender)``: what ``current_envelope`` returns and what
``context.sender`` reads (a message told without a sender waits in the mailbox bare).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeAlias, TypeVar, cast

from actorsys._cell import _SPECIAL, ActorCell
from actorsys._context import NO_ENVELOPE, ActorContext
from actorsys._errors import ActorSystemError
from actorsys._lifecycle import State
from actorsys._logging import get_logger
from actorsys._mailbox import MailboxStats
from actorsys._public import publish
from actorsys._ref import ActorRef, _AskTimeouts, _PromiseRef
from actorsys._system import ActorSystem

__all__ = [
    "Envelope",
    "RemoteRef",
    "before_stop",
    "current_envelope",
    "event_loop",
    "fail_ask",
    "get_logger",
    "is_stopping",
    "new_promise",
    "prepend",
    "promise_future",
    "publish",
    "publish_dead_letter",
    "replace_ref",
    "run_turn",
    "set_current_envelope",
    "spawn_system_task",
    "stop_for",
    "tell_if_alive",
]

Envelope: TypeAlias = tuple[Any, ActorRef | None]
"""``(message, sender)``."""

_RUNNING = State.RUNNING  # an enum member read through its class costs an object on 3.11
_DEAD = State.DEAD


def current_envelope(context: ActorContext) -> Envelope:
    """The envelope the actor is handling now (``(None, None)`` between messages); the same object
    for every call during one delivery of a message."""
    return context._envelope()


def set_current_envelope(context: ActorContext, envelope: Envelope) -> None:
    """Make ``envelope`` the one being handled, so ``context.sender`` answers its sender.

    For a library that runs a handler later on behalf of an earlier message (a persist
    handler); it restores the previous envelope afterwards.
    """
    context._current = envelope


def prepend(context: ActorContext, envelopes: Sequence[Envelope]) -> None:
    """Put ``envelopes`` back at the front of the actor's mailbox, in the order given."""
    context._prepend(list(envelopes))


def run_turn(context: ActorContext, turn: Callable[[], Envelope | None]) -> bool:
    """Give the actor a turn now, without a trip through its mailbox, if it is idle.

    Idle: started, not suspended (failed, restarting, stopping), not handling a message, and no
    drain scheduled (no mail waiting). Then ``turn()`` runs as the actor's turn, and the envelope
    it returns, if any, is delivered to the actor next, as the drain delivers mail (an awaitable
    its handler returns is awaited before the actor takes more mail). An exception fails the
    actor as in the drain, for the envelope current when it was raised (the asker learns it,
    supervision decides). Returns whether the turn ran: ``False`` (the actor is busy) runs
    nothing, and the caller sends the actor a message instead.

    For a library that gets work for an actor from outside its mailbox (the persistent actor's
    journal answers) and would otherwise tell the actor a message to do it in the actor's turn.
    """
    cell = cast(ActorCell, context)  # not _cell(): a call less per journal answer
    if cell._scheduled or cell._suspended or cell._state is not _RUNNING:
        return False
    cell._scheduled = True  # mail arriving meanwhile waits for the drain, as during a drain
    try:
        envelope = turn()
        if envelope is not None:
            cell._current = envelope
            # As the drain dispatches a mailbox entry (an envelope is one: see _cell._special).
            if envelope.__class__ in _SPECIAL:
                pending = cell._special(envelope)
            else:
                pending = cell._receive(envelope)
            if pending is not None and inspect.isawaitable(pending):
                cell._continue_in_task(pending, envelope)  # it runs the drain when done
                return True
    except Exception as error:
        failed = cell._current
        cell._fail(error, None if failed is NO_ENVELOPE else failed)
    except BaseException:
        cell._interrupted()  # as in the drain: the actor stops, the shutdown can complete
        raise
    cell._current = NO_ENVELOPE
    cell._scheduled = False
    if cell._sys or cell._mail:
        cell._schedule()
    else:
        cell._idle()
    return True


def publish_dead_letter(
    system: ActorSystem, message: Any, sender: ActorRef | None, recipient: ActorRef
) -> None:
    """Publish ``message`` as a dead letter for ``recipient`` (event stream, rate-limited log)."""
    system._dead_letter(message, sender, recipient)


def fail_ask(sender: ActorRef | None, error: BaseException) -> bool:
    """If ``sender`` is the reply address of an ``ask``, fail that ask with ``error``.

    Returns whether it was one. For a library that knows a message will never be answered.
    """
    if isinstance(sender, _PromiseRef):
        sender.fail(error)
        return True
    return False


def new_promise(target: ActorRef, timeout: float) -> tuple[ActorRef, asyncio.Future[Any]]:
    """A reply address like the one ``target.ask`` sends, without sending anything: its first
    ``tell`` completes the future, a failure reported with :func:`fail_ask` fails it, and after
    ``timeout`` (by the system's clock) it fails with ``AskTimeoutError`` naming ``target``.

    For a library that relays an ask from elsewhere (another node) to a local actor.
    """
    if not timeout > 0:
        raise ValueError(f"ask timeout must be positive, got {timeout!r}")
    system = target._cell.system
    timeouts = system._ask_timeouts.get(timeout)
    if timeouts is None:
        timeouts = system._ask_timeouts[timeout] = _AskTimeouts(system, timeout)
    future: asyncio.Future[Any] = system._temp_cell._loop.create_future()
    promise = _PromiseRef(system._temp_cell, target, future, timeouts.add())
    timeouts.queue.append(promise)
    return promise, future


def _withdraw_promise(promise: ActorRef, timeout: float) -> None:
    """Forget a promise from :func:`new_promise` whose ask could not be sent."""
    assert isinstance(promise, _PromiseRef)
    timeouts = promise._cell.system._ask_timeouts.get(timeout)
    if timeouts is not None:
        timeouts.withdraw(promise)


def promise_future(ref: ActorRef | None) -> asyncio.Future[Any] | None:
    """If ``ref`` is the reply address of an ask, the future the asker awaits (done once
    answered, failed or timed out); else None."""
    return ref._future if isinstance(ref, _PromiseRef) else None


class RemoteRef(ActorRef):
    """A ref to an actor outside this process: ``tell`` hands the message to ``send``.

    A library that carries messages between processes (the cluster) makes these for the actors
    of other nodes; they are accepted wherever an :class:`ActorRef` is (as a ``sender`` too), and
    equal when their paths are. ``ask`` works as on a local ref (the reply comes back to the
    asker's reply address through whatever ``send`` does with it). They cannot be watched or
    stopped from here, and ``is_alive`` is always true: this process cannot know.
    """

    __slots__ = ("_remote_path", "_send")

    def __init__(
        self, system: ActorSystem, path: str, send: Callable[[Any, ActorRef | None], None]
    ) -> None:
        if system.dead_letters is None:
            raise ActorSystemError(f"actor system {system.name!r} was never started")
        super().__init__(system.dead_letters._cell)  # what a local-only operation falls back on
        self._remote_path = path
        self._send = send

    @property
    def path(self) -> str:
        return self._remote_path

    @property
    def name(self) -> str:
        return self._remote_path.rsplit("/", 1)[-1]

    @property
    def is_alive(self) -> bool:
        return True

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        self._send(message, sender)

    def ask(self, message: Any, timeout: float = 5.0) -> asyncio.Future[Any]:
        promise, future = new_promise(self, timeout)
        try:
            self._send(message, promise)
        except BaseException:
            _withdraw_promise(promise, timeout)
            raise
        return future

    def mailbox_stats(self) -> MailboxStats:
        raise ActorSystemError(f"{self._remote_path} is on another node: its mailbox is not here")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRef) and other._remote_path == self._remote_path

    def __hash__(self) -> int:
        return hash(("RemoteRef", self._remote_path))

    def __repr__(self) -> str:
        return f"RemoteRef({self._remote_path})"


_R = TypeVar("_R", bound=ActorRef)


def replace_ref(ref: ActorRef, ref_class: type[_R]) -> _R:
    """Make ``ref_class`` (a subclass of :class:`ActorRef` adding behaviour to ``tell``) the
    class of a just-spawned actor's ref, and return the new ref.

    Call it right after ``spawn``, before the old ref is shared: from then on the actor's
    ``context.self``, its children's ``context.parent`` and its ``Terminated`` carry the new
    ref. The new ref's ``__init__`` is not called (set its own slots afterwards); its ``tell``
    delivers to the actor with ``ActorRef.tell(self, message, sender)``. For a library whose
    refs route some messages elsewhere (a shard region's ref, straight to a running entity).
    """
    cell = ref._cell
    if ref.__class__ is not ActorRef or cell._ref is not ref:
        raise ActorSystemError(
            f"cannot replace the ref {ref!r}: only the plain ref of an actor without a bounded "
            "mailbox can be replaced"
        )
    new = ref_class.__new__(ref_class)
    ActorRef.__init__(new, cell)
    cell._ref = new
    return new


def tell_if_alive(ref: ActorRef, message: Any, sender: ActorRef | None = None) -> bool:
    """``ref.tell(message, sender)`` unless the actor has terminated; returns whether it told.

    ``ref.is_alive`` then ``tell`` in one cheap call, for a library's per-message path that
    routes a message elsewhere when the actor it would reach directly is gone (sharding).
    """
    if ref._cell._state is _DEAD:
        return False
    ref.tell(message, sender)
    return True


def before_stop(system: ActorSystem, hook: Callable[[], Awaitable[None]]) -> None:
    """Run ``hook()`` when shutdown begins, before any actor is stopped (in registration order;
    its failure is logged). For a library whose clean exit needs the actors still running (a
    cluster node handing its shards off)."""
    system._before_stop.append(hook)


def stop_for(context: ActorContext, cause: BaseException) -> None:
    """Stop the actor because of ``cause``: asks to it afterwards raise ``ActorDeadError``
    carrying it (``"... has stopped: <cause>"``)."""
    _cell(context)._stop_for(cause)


def is_stopping(context: ActorContext) -> bool:
    """Whether the actor is stopping or has a stop request waiting to be processed."""
    return _cell(context)._stopping()


def event_loop(system: ActorSystem) -> asyncio.AbstractEventLoop:
    """The loop the system runs on (started systems only)."""
    if not system.is_running and system._terminated is None:
        raise ActorSystemError(f"actor system {system.name!r} was never started")
    return system._loop


def spawn_system_task(
    system: ActorSystem, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None
) -> asyncio.Task[Any]:
    """Run ``coroutine`` as background work of the system: shutdown waits for it after the
    actors stopped and before the extensions close. Its failure is logged, never lost."""
    return system._spawn_system_task(coroutine, name)


def _cell(context: ActorContext) -> ActorCell:
    """The runtime behind ``context``: the same object, typed as the cell it is."""
    return cast(ActorCell, context)
