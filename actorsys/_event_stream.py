"""The system's event stream: publish/subscribe by event type (dead letters, lifecycle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actorsys._ref import ActorRef


class EventStream:
    """Delivers each published event to the subscribers of its type (or a base type)."""

    __slots__ = ("_subscribers",)

    def __init__(self) -> None:
        self._subscribers: list[tuple[ActorRef | Callable[[Any], None], type]] = []

    def subscribe(self, subscriber: ActorRef | Callable[[Any], None], event_type: type) -> None:
        """Deliver events of ``event_type`` to ``subscriber`` (an actor ref or a callable)."""
        self._subscribers.append((subscriber, event_type))

    def unsubscribe(
        self, subscriber: ActorRef | Callable[[Any], None], event_type: type | None = None
    ) -> None:
        """Stop delivering to ``subscriber`` (for one event type, or for all)."""
        self._subscribers = [
            (s, t)
            for s, t in self._subscribers
            if not (s == subscriber and (event_type is None or t is event_type))
        ]

    def has_subscribers(self, event_type: type) -> bool:
        """Whether anybody listens to events of this type."""
        return any(issubclass(event_type, t) for _, t in self._subscribers)

    def publish(self, event: Any) -> None:
        """Deliver ``event`` to every matching subscriber."""
        for subscriber, event_type in self._subscribers:
            if isinstance(event, event_type):
                if isinstance(subscriber, ActorRef):
                    if subscriber.is_alive:
                        subscriber.tell(event)
                else:
                    subscriber(event)
