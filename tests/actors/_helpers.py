"""Small actors shared by the actor-core tests."""

from __future__ import annotations

from typing import Any

from actorsys import Actor, ActorRef


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
