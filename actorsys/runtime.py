"""The runtime API: for libraries built on actorsys (persistence, sharding), not for applications.

An application needs only ``actorsys`` and ``actorsys.testing``. A library that layers its own
actor behaviour on the runtime (the persistent actor's command stash, a shard region's buffering)
needs a little more: the envelope being handled, putting envelopes back at the front of the
mailbox, dead letters, completing an ask, stopping with a cause, the loop, and background work
that shutdown waits for. This module is that API and nothing else: libraries use it instead of
the runtime's private names (a test keeps ``persistence`` to it), so the runtime can change
behind it.

An *envelope* is ``(message, sender)``: what a mailbox holds and what ``context.sender`` reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from actorsys._context import ActorContext
from actorsys._errors import ActorSystemError
from actorsys._ref import ActorRef, _PromiseRef
from actorsys._system import ActorSystem

if TYPE_CHECKING:
    from actorsys._cell import ActorCell

__all__ = [
    "Envelope",
    "current_envelope",
    "event_loop",
    "fail_ask",
    "is_stopping",
    "prepend",
    "publish_dead_letter",
    "set_current_envelope",
    "spawn_system_task",
    "stop_for",
]

Envelope: TypeAlias = tuple[Any, ActorRef | None]
"""``(message, sender)``."""


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
    return cast("ActorCell", context)
