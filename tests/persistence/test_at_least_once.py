"""AtLeastOnceDelivery: deliver until confirmed, across restarts, with a warning and a cap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actorsys import ActorRef, ActorSystem
from actorsys.testing import TestProbe
from persistence import (
    AtLeastOnceDelivery,
    MaxUnconfirmedMessagesExceededError,
    RecoveryCompleted,
    UnconfirmedDelivery,
    UnconfirmedWarning,
)
from tests.persistence._actors import serializer


@serializer.type("MessageSent")
@dataclass(frozen=True)
class MessageSent:
    text: str


@serializer.type("MessageConfirmed")
@dataclass(frozen=True)
class MessageConfirmed:
    delivery_id: int


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class Msg:
    delivery_id: int
    text: str


@dataclass(frozen=True)
class Confirm:
    delivery_id: int


@dataclass(frozen=True)
class DeliverNow:
    """Deliver without persisting first (to reach the cap from a command)."""

    text: str


@dataclass(frozen=True)
class Unconfirmed:
    count: int


@dataclass(frozen=True)
class Confirmed:
    delivery_id: int


class Sender(AtLeastOnceDelivery):
    """Persists ``MessageSent`` per ``Send`` and delivers it to ``destination`` until a
    ``Confirm`` is persisted; reports recovery and warnings to ``observer``."""

    redeliver_interval = 0.05
    warn_after_attempts = 3

    def __init__(
        self, persistence_id: str, destination: ActorRef, observer: ActorRef, *, cap: int = 100
    ) -> None:
        super().__init__()
        self.persistence_id = persistence_id
        self.destination = destination
        self.observer = observer
        self.max_unconfirmed_messages = cap

    def apply(self, event: Any) -> None:
        if isinstance(event, MessageSent):
            self.deliver(self.destination, lambda delivery_id: Msg(delivery_id, event.text))
        elif isinstance(event, MessageConfirmed):
            self.confirm_delivery(event.delivery_id)

    def confirmed(self, event: MessageConfirmed) -> None:
        self.apply(event)
        self.observer.tell(Confirmed(event.delivery_id))

    def receive_recover(self, message: Any) -> None:
        if message is RecoveryCompleted:
            self.observer.tell(Unconfirmed(self.number_of_unconfirmed))
        else:
            self.apply(message)

    def receive_command(self, command: Any) -> None:
        if isinstance(command, Send):
            self.persist(MessageSent(command.text), self.apply)
        elif isinstance(command, DeliverNow):
            try:
                self.deliver(self.destination, lambda delivery_id: Msg(delivery_id, command.text))
            except MaxUnconfirmedMessagesExceededError as error:
                self.observer.tell(error)
        elif isinstance(command, Confirm):
            self.persist(MessageConfirmed(command.delivery_id), self.confirmed)
        elif isinstance(command, UnconfirmedWarning):
            self.observer.tell(command)
        else:
            self.unhandled(command)


async def test_a_message_is_redelivered_until_confirmed_then_never_again(
    system: ActorSystem, probe: TestProbe
) -> None:
    receiver = TestProbe(system, "receiver")
    sender = system.spawn(lambda: Sender("aloda-1", receiver.ref, probe.ref))
    assert await probe.receive() == Unconfirmed(0)

    sender.tell(Send("hello"))
    assert await receiver.receive() == Msg(1, "hello")
    assert await receiver.receive() == Msg(1, "hello")  # no confirmation yet: sent again
    sender.tell(Confirm(1))
    assert await probe.receive() == Confirmed(1)
    await _drain(receiver)  # copies sent before the confirmation
    await receiver.expect_no_message(0.2)


async def test_a_warning_is_told_once_deliveries_reach_the_attempt_threshold(
    system: ActorSystem, probe: TestProbe
) -> None:
    receiver = TestProbe(system, "receiver")
    sender = system.spawn(lambda: Sender("aloda-2", receiver.ref, probe.ref))
    assert await probe.receive() == Unconfirmed(0)

    sender.tell(Send("anyone?"))
    warning = await probe.expect_message_type(UnconfirmedWarning)
    assert warning.unconfirmed == (UnconfirmedDelivery(1, receiver.ref, Msg(1, "anyone?")),)
    await probe.expect_no_message(0.2)  # once per delivery, not at every later attempt


async def test_deliver_beyond_the_cap_raises_max_unconfirmed_messages_exceeded(
    system: ActorSystem, probe: TestProbe
) -> None:
    receiver = TestProbe(system, "receiver")
    sender = system.spawn(lambda: Sender("aloda-3", receiver.ref, probe.ref, cap=1))
    assert await probe.receive() == Unconfirmed(0)

    sender.tell(DeliverNow("one"))
    sender.tell(DeliverNow("two"))
    error = await probe.fish_for_message(
        lambda m: isinstance(m, MaxUnconfirmedMessagesExceededError)
    )
    assert str(error) == (
        "persistence_id='aloda-3' has 1 unconfirmed deliveries (max_unconfirmed_messages=1); "
        "wait for confirmations before delivering more"
    )


async def test_unconfirmed_deliveries_survive_a_restart_and_are_redelivered_after_recovery(
    system: ActorSystem, probe: TestProbe
) -> None:
    receiver = TestProbe(system, "receiver")
    sender = system.spawn(lambda: Sender("aloda-4", receiver.ref, probe.ref))
    assert await probe.receive() == Unconfirmed(0)
    sender.tell(Send("a"))
    sender.tell(Send("b"))
    assert await receiver.receive() == Msg(1, "a")
    assert await receiver.receive() == Msg(2, "b")
    sender.tell(Confirm(1))
    assert await probe.receive() == Confirmed(1)
    await system.stop(sender)
    await _drain(receiver)  # copies sent before the stop

    again = system.spawn(lambda: Sender("aloda-4", receiver.ref, probe.ref))
    assert await probe.receive() == Unconfirmed(1)  # replay rebuilt what is still owed
    assert await receiver.receive() == Msg(2, "b")  # same delivery id: numbering is replayed
    again.tell(Confirm(2))
    assert await probe.receive() == Confirmed(2)


async def _drain(probe: TestProbe) -> None:
    """Take every message already on its way to ``probe``."""
    while True:
        try:
            await probe.receive(timeout=0.02)
        except AssertionError:
            return
