"""Small actors shared by the actor-core tests."""

from __future__ import annotations

from typing import Any

from actorsys import Actor, ActorRef
from actorsys.testing import ManualClock, TestProbe


class Echo(Actor):
    """Replies to every message with the message itself."""

    def receive(self, message: Any) -> None:
        self.context.sender.tell(message, self.context.self)


class Forward(Actor):
    """Forwards every message to ``target``."""

    def __init__(self, target: ActorRef) -> None:
        super().__init__()
        self.target = target

    def receive(self, message: Any) -> None:
        self.target.tell(message, self.context.self)


class Silent(Actor):
    """Swallows every message without answering."""

    def receive(self, message: Any) -> None:
        pass


async def expect_quiet(probe: TestProbe, clock: ManualClock, seconds: float = 1.0) -> None:
    """Advance ``clock`` by ``seconds`` (running what falls due); the probe must get nothing.

    ``advance`` lets the loop settle, so anything that was going to arrive is queued by then;
    the probe's own (real-time) wait only has to look.
    """
    await clock.advance(seconds)
    await probe.expect_no_message(0.001)
