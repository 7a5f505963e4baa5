"""An actor's mailbox: its configuration values, and the queue that appends, prepends, schedules.

The queue is the one place that takes user mail, puts mail back in front, takes system messages,
schedules the drain and closes the queue when the actor terminates. It exists only while mail is
waiting: mail arriving at an idle actor creates it and puts the drain (the cell's ``_run``) on the
system's ready list, which one loop callback runs (``run_ready``); the drain releases the queue when
it runs dry, so an idle actor holds no queue, no task and no callback. ``ActorRef.tell`` appends by
itself to a queue that exists (the hottest path, where a call would cost about a tenth of a tell)
and hands every other case to :meth:`MailboxQueue._enqueue`.

The queue holds a message told without a sender as the message itself, and any other as an
``(message, sender)`` tuple (``_context.envelope_of``): most tells have no sender, and the tuple
was most of what a tell cost.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorsys._context import ActorContext, Envelope, RareField, envelope_of
from actorsys._errors import MailboxFullError
from actorsys._lifecycle import CREATE, State

if TYPE_CHECKING:
    from actorsys._system import ActorSystem

_DEAD = State.DEAD


class Overflow(enum.Enum):
    """What a bounded mailbox does with a message when it is full."""

    DROP = "drop"
    """The message goes to dead letters; ``tell`` returns normally."""
    FAIL = "fail"
    """``tell`` raises :class:`~actorsys.MailboxFullError`."""


@dataclass(frozen=True, slots=True)
class UnboundedMailbox:
    """The default mailbox: no limit on queued messages."""

    capacity: None = None


@dataclass(frozen=True, slots=True)
class BoundedMailbox:
    """A mailbox holding at most ``capacity`` queued messages."""

    capacity: int
    overflow: Overflow = Overflow.DROP

    def __post_init__(self) -> None:
        if self.capacity <= 0:
            raise ValueError(f"BoundedMailbox capacity must be positive, got {self.capacity}")


Mailbox = UnboundedMailbox | BoundedMailbox


@dataclass(frozen=True, slots=True)
class MailboxStats:
    """A point-in-time view of one actor's mailbox."""

    queued: int
    processed: int


class MailboxQueue(ActorContext):
    """The mailbox layer of an actor's cell: user mail, system messages, scheduling the drain."""

    __slots__ = ("_loop", "_mail", "_scheduled", "_sys")

    _mail: deque[Any] | None
    # A tuple, replaced on each change: system queues hold one or two messages, and the queue of
    # a spawned actor is a shared constant (nothing allocated per spawn).
    _sys: tuple[tuple[Any, ...], ...] | None
    _scheduled: bool
    _capacity: RareField[int | None] = RareField(None)
    _overflow: RareField[Overflow] = RareField(Overflow.DROP)
    _loop: asyncio.AbstractEventLoop

    if TYPE_CHECKING:
        _run: Callable[[], None]  # the drain (the cell)

    def _enqueue(self, entry: Any) -> None:
        """Take a mailbox entry (a message, or a tuple envelope): a full bounded mailbox applies its
        overflow policy, and the mail of a terminated actor goes to dead letters."""
        mail = self._mail
        if mail is None:
            if self._state is _DEAD:
                self.system._dead_letter(*envelope_of(entry), self._ref)
                return
            mail = self._mail = deque()
            mail.append(entry)
            if not self._scheduled:  # _schedule, inlined: mail to an idle actor is common
                self._scheduled = True
                system = self.system
                if not system._ready:
                    self._loop.call_soon(run_ready, system)
                system._ready.append(self)
            return
        capacity = self._capacity
        if capacity is not None and len(mail) >= capacity:
            if self._overflow is Overflow.FAIL:
                raise MailboxFullError(self.path, capacity)
            self.system._dead_letter(*envelope_of(entry), self._ref)
            return
        mail.append(entry)

    def _enqueue_system(self, message: tuple[Any, ...]) -> None:
        """Take a system message (the cell's ``_post_system`` decides whether one is taken)."""
        queue = self._sys
        if queue is None:
            self._sys = _CREATE_ONLY if message is CREATE else (message,)
        else:
            self._sys = (*queue, message)
        self._schedule()

    def _next_system(self) -> tuple[Any, ...]:
        """Take the oldest system message (there is one)."""
        queue = self._sys
        assert queue is not None
        self._sys = queue[1:] or None
        return queue[0]

    def _prepend(self, envelopes: list[Envelope]) -> None:
        """Put ``envelopes`` in front of the user mail, in the order given."""
        if self._mail is None:
            self._mail = deque(envelopes)
        else:
            self._mail.extendleft(reversed(envelopes))
        self._schedule()

    def _schedule(self) -> None:
        """Have the loop run the drain soon, unless it is scheduled (or running) already."""
        if not self._scheduled:
            self._scheduled = True
            self._run_soon()

    def _run_soon(self) -> None:
        """Queue the drain on the system's ready list (the drain is marked scheduled).

        One loop callback runs the drains queued until it starts, in order: no callback object
        per actor woken or spawned. A drain queued while that callback runs goes to a new list
        with a callback of its own, so drains keep their place among the loop's other callbacks
        (a reply's wake-up, say) as with a callback each.
        """
        system = self.system
        if not system._ready:
            self._loop.call_soon(run_ready, system)
        system._ready.append(self)

    def _idle(self) -> None:
        """The drain ran dry: release the empty queue, and note since when the actor is idle."""
        mail = self._mail
        if mail is not None and not mail:
            self._mail = None
        # Most actors have no rare state: no look-up of the receive timeout after each drain.
        if self._rare is not None and self._receive_timeout is not None:
            self._idle_since = self.system._clock.time()

    def _close(self) -> tuple[tuple[tuple[Any, ...], ...] | None, deque[Any] | None]:
        """Empty the queue for good (the actor terminated): the system messages and the user mail
        that were left."""
        left = self._sys, self._mail
        self._sys = self._mail = None
        return left


_CREATE_ONLY = (CREATE,)


def run_ready(system: ActorSystem) -> None:
    """Run the drains on ``system``'s ready list (see ``MailboxQueue._run_soon``).

    If a drain raises (a BaseException: see the cell's ``_run``), the drains after it are
    queued again, in front.
    """
    ready = system._ready
    system._ready = []
    try:
        for cell in ready:
            cell._run()
    except BaseException:
        rest = ready[ready.index(cell) + 1 :]
        if rest:
            if not system._ready:
                system._loop.call_soon(run_ready, system)
            system._ready[:0] = rest
        raise
