"""Actor references: the only handle application code holds on an actor."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from actorsys._errors import ActorDeadError, AskTimeoutError
from actorsys._mailbox import MailboxStats

if TYPE_CHECKING:
    from actorsys._cell import ActorCell


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
        if cell._dead:
            raise ActorDeadError(cell.path, cell._death_cause)
        future: asyncio.Future[Any] = cell._loop.create_future()
        promise = _PromiseRef(cell, future, timeout)
        try:
            self.tell(message, promise)
        except BaseException:
            promise._handle.cancel()  # nobody will await the future: no timeout may fail it
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

    __slots__ = ("_future", "_handle", "_target")

    def __init__(self, target: ActorCell, future: asyncio.Future[Any], timeout: float) -> None:
        super().__init__(target.system._temp_cell)
        self._target = target.path
        self._future = future
        self._handle = target.system._clock.call_later(timeout, self._time_out, timeout)

    @property
    def path(self) -> str:
        return f"{self._cell.path}/ask-{id(self):x}"

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        future = self._future
        if future.done():
            self._cell.system._dead_letter(message, sender, self)
            return
        self._handle.cancel()
        future.set_result(message)

    def fail(self, error: BaseException) -> None:
        """Complete the ask with ``error`` (the actor raised while handling it, or stopped)."""
        if not self._future.done():
            self._handle.cancel()
            self._future.set_exception(error)

    def _time_out(self, timeout: float) -> None:
        if not self._future.done():
            self._future.set_exception(AskTimeoutError(self._target, timeout))


class _DeadLettersRef(ActorRef):
    """Where undeliverable messages go; a tell publishes a ``DeadLetter``."""

    __slots__ = ()

    @property
    def path(self) -> str:
        return "/deadLetters"

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        self._cell.system._dead_letter(message, sender, self)
