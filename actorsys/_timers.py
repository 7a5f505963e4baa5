"""Keyed timers that die with their actor.

Timers wait by the system's clock (``ActorSystem(clock=...)``). A timer started with a key that is
already active replaces the old one, and the old one's message is never delivered, not even when
it is already queued: every delivery carries the timer's generation and stale generations are
dropped when dequeued.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from actorsys._clock import Cancellable
from actorsys._errors import ActorSystemError
from actorsys._lifecycle import State

if TYPE_CHECKING:
    from actorsys._context import ActorContext


class _TimerMessage:
    __slots__ = ("generation", "key", "message")

    def __init__(self, key: Hashable, generation: int, message: Any) -> None:
        self.key = key
        self.generation = generation
        self.message = message

    def __repr__(self) -> str:
        return f"TimerMessage({self.key!r}, {self.message!r})"


class _Timer:
    __slots__ = ("generation", "handle", "interval", "message")

    def __init__(
        self, generation: int, message: Any, interval: float | None, handle: Cancellable
    ) -> None:
        self.generation = generation
        self.message = message
        self.interval = interval
        self.handle = handle


class TimerScheduler:
    """The timers of one actor, reached as ``self.context.timers``."""

    __slots__ = ("_context", "_generation", "_timers")

    def __init__(self, context: ActorContext) -> None:
        self._context = context
        self._timers: dict[Hashable, _Timer] = {}
        self._generation = 0

    def start_single_timer(self, key: Hashable, message: Any, delay: float) -> None:
        """Send ``message`` to this actor once, after ``delay`` seconds."""
        self._start(key, message, delay, None)

    def start_periodic_timer(self, key: Hashable, message: Any, interval: float) -> None:
        """Send ``message`` to this actor every ``interval`` seconds."""
        if not interval > 0:
            raise ValueError(f"timer interval must be positive, got {interval!r}")
        self._start(key, message, interval, interval)

    def is_timer_active(self, key: Hashable) -> bool:
        """Whether a timer with this key is pending."""
        return key in self._timers

    def cancel(self, key: Hashable) -> None:
        """Cancel the timer with this key; its message will not be delivered."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.handle.cancel()

    def cancel_all(self) -> None:
        """Cancel every timer of this actor."""
        for timer in self._timers.values():
            timer.handle.cancel()
        self._timers.clear()

    def _start(self, key: Hashable, message: Any, delay: float, interval: float | None) -> None:
        if self._context._state is State.DEAD:
            raise ActorSystemError(
                f"cannot start timer {key!r}: {self._context.path} has stopped (timers die with "
                "their actor)"
            )
        self.cancel(key)
        self._generation += 1
        handle = self._context.system._clock.call_later(delay, self._fire, key, self._generation)
        self._timers[key] = _Timer(self._generation, message, interval, handle)

    def _fire(self, key: Hashable, generation: int) -> None:
        timer = self._timers.get(key)
        if timer is None or timer.generation != generation:
            return
        if timer.interval is not None:
            timer.handle = self._context.system._clock.call_later(
                timer.interval, self._fire, key, generation
            )
        self._context._ref.tell(_TimerMessage(key, generation, timer.message))

    def accept(self, delivery: _TimerMessage) -> tuple[bool, Any]:
        """Whether a dequeued timer delivery is still current, and its message."""
        timer = self._timers.get(delivery.key)
        if timer is None or timer.generation != delivery.generation:
            return False, None
        if timer.interval is None:
            del self._timers[delivery.key]
        return True, delivery.message
