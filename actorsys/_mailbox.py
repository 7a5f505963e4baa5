"""Mailbox configuration values and statistics.

The queue itself lives in the actor cell and is created only when mail arrives, so an idle actor
holds no queue and no task.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
