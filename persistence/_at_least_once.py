"""At-least-once delivery for persistent actors.

A sender persists its intent to send, then calls ``deliver`` from the event handler; the message
is sent with a delivery id and resent every ``redeliver_interval`` until the receiver's
confirmation is persisted and handled with ``confirm_delivery``. Because ``deliver`` and
``confirm_delivery`` are called from event handlers, replay rebuilds the set of unconfirmed
deliveries after a crash, and redelivery resumes once recovery completes. Receivers must be
idempotent (de-duplicate by delivery id or by a business id): a message can arrive more than once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, final

from actorsys import ActorRef
from persistence._errors import PersistenceError
from persistence._persistent_actor import PersistentActor

_TICK_KEY = "at-least-once-redelivery"


@final
class _RedeliveryTick:
    __slots__ = ()


_TICK = _RedeliveryTick()


@dataclass(frozen=True, slots=True)
class UnconfirmedDelivery:
    """A message sent and not confirmed yet."""

    delivery_id: int
    destination: ActorRef
    message: Any


@dataclass(frozen=True, slots=True)
class UnconfirmedWarning:
    """Told to the sender when deliveries reached the warning threshold of attempts."""

    unconfirmed: tuple[UnconfirmedDelivery, ...]


class MaxUnconfirmedMessagesExceededError(PersistenceError):
    """``deliver`` was called with ``max_unconfirmed_messages`` deliveries outstanding."""


class _Delivery:
    __slots__ = ("attempt", "destination", "message", "sent_at", "warned")

    def __init__(self, destination: ActorRef, message: Any) -> None:
        self.destination = destination
        self.message = message
        self.attempt = 0
        self.sent_at = 0.0
        self.warned = False


class AtLeastOnceDelivery(PersistentActor):
    """Mixin for persistent actors that must deliver messages at least once.

    Tune with class attributes: ``redeliver_interval`` (seconds), ``warn_after_attempts``
    (an :class:`UnconfirmedWarning` is told to the actor once a delivery reached that many
    attempts), ``max_unconfirmed_messages`` (``deliver`` raises beyond it) and
    ``redelivery_burst_limit`` (messages resent per tick).
    """

    redeliver_interval: float = 5.0
    warn_after_attempts: int = 5
    max_unconfirmed_messages: int = 100_000
    redelivery_burst_limit: int = 10_000

    def deliver(self, destination: ActorRef, make_message: Callable[[int], Any]) -> int:
        """Send ``make_message(delivery_id)`` to ``destination`` until confirmed; call it from a
        persist handler (and the same way during replay). Returns the delivery id."""
        state = self.__state()
        if len(state.unconfirmed) >= self.max_unconfirmed_messages:
            raise MaxUnconfirmedMessagesExceededError(
                f"persistence_id={self.persistence_id!r} has {len(state.unconfirmed)} unconfirmed "
                f"deliveries (max_unconfirmed_messages={self.max_unconfirmed_messages}); wait for "
                "confirmations before delivering more"
            )
        state.next_id += 1
        delivery_id = state.next_id
        delivery = _Delivery(destination, make_message(delivery_id))
        state.unconfirmed[delivery_id] = delivery
        if not self.recovery_running:
            self.__send(delivery)
            self.__ensure_ticking()
        return delivery_id

    def confirm_delivery(self, delivery_id: int) -> bool:
        """Mark ``delivery_id`` confirmed; False if it was not outstanding (a duplicate)."""
        return self.__state().unconfirmed.pop(delivery_id, None) is not None

    @property
    def number_of_unconfirmed(self) -> int:
        return len(self.__state().unconfirmed)

    @property
    def unconfirmed_deliveries(self) -> tuple[UnconfirmedDelivery, ...]:
        return tuple(
            UnconfirmedDelivery(i, d.destination, d.message)
            for i, d in self.__state().unconfirmed.items()
        )

    # ------------------------------------------------------------------ runtime

    def __state(self) -> _DeliveryState:
        state: _DeliveryState | None = self.__dict__.get("_AtLeastOnceDelivery__delivery")
        if state is None:
            state = self.__delivery = _DeliveryState()
        return state

    def __send(self, delivery: _Delivery) -> None:
        delivery.attempt += 1
        delivery.sent_at = self.context.system.clock.time()
        delivery.destination.tell(delivery.message, self.context.self)

    def __ensure_ticking(self) -> None:
        timers = self.context.timers
        if not timers.is_timer_active(_TICK_KEY):
            timers.start_periodic_timer(_TICK_KEY, _TICK, max(self.redeliver_interval / 2, 0.001))

    def __redeliver(self) -> None:
        state = self.__state()
        if not state.unconfirmed:
            self.context.timers.cancel(_TICK_KEY)
            return
        now = self.context.system.clock.time()
        budget = self.redelivery_burst_limit
        warn: list[UnconfirmedDelivery] = []
        for delivery_id, delivery in state.unconfirmed.items():
            if budget == 0:
                break
            if delivery.attempt == 0 or now - delivery.sent_at >= self.redeliver_interval:
                self.__send(delivery)
                budget -= 1
                if delivery.attempt >= self.warn_after_attempts and not delivery.warned:
                    delivery.warned = True
                    warn.append(
                        UnconfirmedDelivery(delivery_id, delivery.destination, delivery.message)
                    )
        if warn:
            self.context.log.warning(
                "deliveries_unconfirmed",
                count=len(warn),
                attempts=self.warn_after_attempts,
            )
            self.context.self.tell(UnconfirmedWarning(tuple(warn)))

    def _around_start(self, restart_reason: Exception | None) -> Awaitable[None] | None:
        recovered = super()._around_start(restart_reason)

        async def then_redeliver() -> None:
            if recovered is not None:
                await recovered
            if self.__state().unconfirmed:
                self.__redeliver()
                self.__ensure_ticking()

        return then_redeliver()

    def receive(self, message: Any) -> Awaitable[None] | None:
        if message is _TICK:
            self.__redeliver()
            return None
        return super().receive(message)

    def unhandled(self, message: Any) -> None:
        if isinstance(message, UnconfirmedWarning):
            return  # already logged; handling it is optional
        super().unhandled(message)


class _DeliveryState:
    __slots__ = ("next_id", "unconfirmed")

    def __init__(self) -> None:
        self.next_id = 0
        self.unconfirmed: dict[int, _Delivery] = {}
