"""Messages and signals the runtime sends or understands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    from actorsys._ref import ActorRef


@final
class _PoisonPill:
    """Stops the actor when processed, after the messages queued before it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PoisonPill"


@final
class _Kill:
    """Makes the actor fail with ``ActorKilledError`` when processed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Kill"


@final
class _ReceiveTimeout:
    """Delivered after the actor was idle for its receive timeout."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ReceiveTimeout"


PoisonPill: Final = _PoisonPill()
Kill: Final = _Kill()
ReceiveTimeout: Final = _ReceiveTimeout()


@dataclass(frozen=True, slots=True)
class Terminated:
    """Sent to every watcher once the watched actor has stopped."""

    ref: ActorRef


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be delivered, published on the event stream."""

    message: Any
    sender: ActorRef | None
    recipient: ActorRef
