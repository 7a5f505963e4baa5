"""Actor references: the only handle application code holds on an actor."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from actorsys._errors import ActorDeadError, AskTimeoutError
from actorsys._lifecycle import State
from actorsys._mailbox import MailboxStats

if TYPE_CHECKING:
    from actorsys._cell import ActorCell
    from actorsys._clock import Cancellable
    from actorsys._system import ActorSystem


_DEAD = State.DEAD


class ActorRef:
    """A handle to an actor: send it messages with ``tell`` or ``ask``.

    Refs are hashable and comparable, and safe to keep after the actor stopped: messages to a
    stopped actor go to dead letters. The same actor always has the same ref, also across restarts.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def path(self) -> str:
        """The actor's path, e.g. ``/user/bank/account-7``."""
        return self._cell.path

    @property
    def name(self) -> str:
        """The last element of the path."""
        return self._cell._name

    @property
    def is_alive(self) -> bool:
        """Whether the actor has not terminated yet."""
        return not self._cell._dead

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        """Send ``message`` without waiting; ``sender`` is what the receiver sees as its sender."""
        # The mailbox owns its queue (actorsys._mailbox); the one case of the hottest path, a
        # message without a sender while mail is waiting (the drain is already scheduled or
        # running), is inlined here: a call costs. Such a message goes in bare; a tuple in a
        # mailbox is always an envelope.
        if sender is None and message.__class__ is not tuple:
            mail = self._cell._mail
            if mail is not None:
                mail.append(message)
                return
            self._cell._enqueue(message)
        else:
            self._cell._enqueue((message, sender))

    def ask(self, message: Any, timeout: float = 5.0) -> asyncio.Future[Any]:
        """Send ``message`` and return an awaitable for the first reply.

        Raises :class:`ValueError` for a non-positive timeout and :class:`ActorDeadError` if the
        actor has stopped (saying why, when an error stopped it); the awaitable raises
        :class:`AskTimeoutError` when no reply comes in time (by the system's clock), or the
        exception the actor raised while handling the message.
        """
        if not timeout > 0:
            raise ValueError(f"ask timeout must be positive, got {timeout!r}")
        cell = self._cell
        if cell._state is _DEAD:
            raise ActorDeadError(cell.path, cell._death_cause)
        system = cell.system
        timeouts = system._ask_timeouts.get(timeout)
        if timeouts is None:
            timeouts = system._ask_timeouts[timeout] = _AskTimeouts(system, timeout)
        future: asyncio.Future[Any] = cell._loop.create_future()
        promise = _PromiseRef(system._temp_cell, cell, future, timeouts.add())
        timeouts.queue.append(promise)
        try:
            if self.__class__ is ActorRef:  # the common case, inlined (see tell)
                mail = cell._mail
                if mail is not None:
                    mail.append((message, promise))
                else:
                    cell._enqueue((message, promise))
            else:
                self.tell(message, promise)
        except BaseException:
            timeouts.withdraw(promise)  # nobody will await the future: no timeout may fail it
            raise
        return future

    def mailbox_stats(self) -> MailboxStats:
        """How many messages are queued and how many have been processed."""
        cell = self._cell
        return MailboxStats(len(cell._mail or ()), cell._processed)

    def __repr__(self) -> str:
        return f"ActorRef({self._cell.path})"

    def __lt__(self, other: ActorRef) -> bool:
        return self.path < other.path


class BoundedActorRef(ActorRef):
    """The ref of an actor with a bounded mailbox: ``tell`` applies the overflow policy."""

    __slots__ = ()

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        if sender is None and message.__class__ is not tuple:
            self._cell._enqueue(message)
        else:
            self._cell._enqueue((message, sender))


class _PromiseRef(ActorRef):
    """The sender of an ask: its first ``tell`` completes the asker's future."""

    __slots__ = ("_deadline", "_future", "_target")

    def __init__(
        self,
        temp: ActorCell,
        target: ActorCell | ActorRef,  # what a timeout names: its path
        future: asyncio.Future[Any],
        deadline: float,
    ) -> None:
        self._cell = temp
        self._target = target
        self._future = future
        self._deadline = deadline

    @property
    def path(self) -> str:
        return f"{self._cell.path}/ask-{id(self):x}"

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        future = self._future
        if future.done():
            self._cell.system._dead_letter(message, sender, self)
            return
        future.set_result(message)

    def fail(self, error: BaseException) -> None:
        """Complete the ask with ``error`` (the actor raised while handling it, or stopped)."""
        if not self._future.done():
            self._future.set_exception(error)


class _AskTimeouts:
    """The pending asks of one system that share one timeout, oldest first: one clock call for
    all of them instead of one per ask (scheduling and cancelling a call cost more than the rest
    of an ask's own work).

    The clock is monotonic, so asks with the same timeout fall due in the order they were made.
    The call fires when the oldest falls due; it times out what is due and not answered, and is
    scheduled again for the oldest still pending. An answered ask is not removed (that would
    cost a call); it is dropped when the call finds it, or by a compaction that keeps the queue
    within twice the pending asks (at least 64).
    """

    __slots__ = ("_call", "_clock", "_compact_at", "_system", "queue", "timeout")

    def __init__(self, system: ActorSystem, timeout: float) -> None:
        self._system = system
        self._clock = system._clock
        self.timeout = timeout
        self.queue: deque[_PromiseRef] = deque()
        self._call: Cancellable | None = None
        self._compact_at = _MIN_COMPACTION

    def add(self) -> float:
        """Make room for a new ask (appended to ``queue`` by the caller); its deadline."""
        if len(self.queue) >= self._compact_at:
            self.queue = queue = deque(p for p in self.queue if not p._future.done())
            self._compact_at = max(_MIN_COMPACTION, 2 * len(queue))
        if self._call is None:
            self._call = self._clock.call_later(self.timeout, self._fire)
        return self._clock.time() + self.timeout

    def withdraw(self, promise: _PromiseRef) -> None:
        """Forget an ask that could not be sent; call the clock off if nothing else is pending."""
        self.queue.remove(promise)
        if self._call is not None and all(p._future.done() for p in self.queue):
            self._call.cancel()
            self._call = None
            self.queue.clear()
            self._forget()

    def _fire(self) -> None:
        self._call = None
        queue = self.queue
        now = self._clock.time()
        while queue:
            promise = queue[0]
            future = promise._future
            if not future.done():
                if promise._deadline > now:
                    self._call = self._clock.call_later(promise._deadline - now, self._fire)
                    return
                future.set_exception(AskTimeoutError(promise._target.path, self.timeout))
            queue.popleft()
        self._forget()

    def _forget(self) -> None:
        """Nothing is pending: the system lets go of this timeout's queue."""
        timeouts = self._system._ask_timeouts
        if timeouts.get(self.timeout) is self:
            del timeouts[self.timeout]


_MIN_COMPACTION = 64
"""Queue length from which answered asks are compacted away."""


class _DeadLettersRef(ActorRef):
    """Where undeliverable messages go; a tell publishes a ``DeadLetter``."""

    __slots__ = ()

    @property
    def path(self) -> str:
        return "/deadLetters"

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        self._cell.system._dead_letter(message, sender, self)
