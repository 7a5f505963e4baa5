"""The event-sourced test kit: commands in, events, replies and state out; replay checked."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from persistence import PersistentActor, RecoveryCompleted, Serializer
from persistence.testing import CommandResult, EventSourcedTestKit

serializer = Serializer()


@serializer.type("KitDeposited")
@dataclass(frozen=True)
class Deposited:
    amount: Decimal


@serializer.type("KitWithdrawn")
@dataclass(frozen=True)
class Withdrawn:
    amount: Decimal


@dataclass(frozen=True)
class NotRegistered:
    amount: Decimal


@dataclass(frozen=True)
class Deposit:
    amount: Decimal


@dataclass(frozen=True)
class Withdraw:
    amount: Decimal


@dataclass(frozen=True)
class Transfer:
    """Withdraw, then deposit elsewhere: two events, persisted asynchronously."""

    amount: Decimal


@dataclass(frozen=True)
class Storing:
    amount: Decimal
    """Persist an event the serializer does not know (it is rejected)."""


@dataclass(frozen=True)
class Crash:
    pass


class Account(PersistentActor):
    def __init__(self, account_id: str, *, forget_withdrawals: bool = False) -> None:
        super().__init__()
        self.persistence_id = f"account-{account_id}"
        self.state = Decimal(0)
        self.forget_withdrawals = forget_withdrawals

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited | Withdrawn) and not (
            self.forget_withdrawals and isinstance(message, Withdrawn)
        ):
            self.apply(message)
        elif message is RecoveryCompleted:
            pass

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        sender = self.context.sender
        if isinstance(command, Deposit):
            self.persist(Deposited(command.amount), lambda e: self.reply(e, sender))
        elif isinstance(command, Withdraw):
            if command.amount > self.state:
                sender.tell(f"insufficient funds: balance {self.state}, asked {command.amount}")
            else:
                self.persist(Withdrawn(command.amount), lambda e: self.reply(e, sender))
        elif isinstance(command, Transfer):
            self.persist_async(Withdrawn(command.amount), self.apply)
            self.persist_async(Deposited(command.amount), self.apply)
            self.defer_async("transferred", sender.tell)
        elif isinstance(command, Storing):
            self.persist(NotRegistered(command.amount), self.apply)
        elif isinstance(command, Crash):
            raise RuntimeError("crashed")
        else:
            return super().receive_command(command)
        return None

    def apply(self, event: Any) -> None:
        self.state += event.amount if isinstance(event, Deposited) else -event.amount

    def reply(self, event: Any, sender: Any) -> None:
        self.apply(event)
        sender.tell(("ok", self.state))


async def test_run_command_returns_the_events_the_replies_and_the_state() -> None:
    async with EventSourcedTestKit(lambda: Account("1"), serializer=serializer) as kit:
        result = await kit.run_command(Deposit(Decimal(10)))

        assert result == CommandResult(
            Deposit(Decimal(10)), (Deposited(Decimal(10)),), (("ok", Decimal(10)),), Decimal(10)
        )
        assert result.event == Deposited(Decimal(10))
        assert result.reply == ("ok", Decimal(10))


async def test_a_rejected_command_persists_no_event_and_keeps_the_state() -> None:
    async with EventSourcedTestKit(lambda: Account("2"), serializer=serializer) as kit:
        result = await kit.run_command(Withdraw(Decimal(5)))

        assert result.events == ()
        assert result.reply == "insufficient funds: balance 0, asked 5"
        assert result.state == Decimal(0)


async def test_events_of_persist_async_and_deferred_replies_belong_to_their_command() -> None:
    async with EventSourcedTestKit(lambda: Account("3"), serializer=serializer) as kit:
        await kit.run_command(Deposit(Decimal(10)))

        result = await kit.run_command(Transfer(Decimal(4)))

        assert result.events == (Withdrawn(Decimal(4)), Deposited(Decimal(4)))
        assert result.replies == ("transferred",)
        assert result.state == Decimal(10)


async def test_an_event_the_serializer_rejects_is_not_among_the_events() -> None:
    async with EventSourcedTestKit(lambda: Account("4"), serializer=serializer) as kit:
        result = await kit.run_command(Storing(Decimal(1)))

        assert result.events == ()
        assert result.state == Decimal(0)
        assert await kit.persisted_events() == []


async def test_persisted_events_lists_every_stored_event_in_order() -> None:
    async with EventSourcedTestKit(lambda: Account("5"), serializer=serializer) as kit:
        await kit.run_command(Deposit(Decimal(3)))
        await kit.run_command(Withdraw(Decimal(1)))

        assert await kit.persisted_events() == [Deposited(Decimal(3)), Withdrawn(Decimal(1))]


async def test_restart_replays_the_events_and_reaches_the_same_state() -> None:
    async with EventSourcedTestKit(lambda: Account("6"), serializer=serializer) as kit:
        await kit.run_command(Deposit(Decimal(3)))
        await kit.run_command(Withdraw(Decimal(1)))
        first = kit.actor

        assert await kit.restart() == Decimal(2)
        assert kit.actor is not first
        result = await kit.run_command(Deposit(Decimal(1)))
        assert result.state == Decimal(3)


async def test_restart_fails_when_the_replay_reaches_a_different_state() -> None:
    async with EventSourcedTestKit(
        lambda: Account("7", forget_withdrawals=True), serializer=serializer
    ) as kit:
        await kit.run_command(Deposit(Decimal(3)))
        await kit.run_command(Withdraw(Decimal(1)))

        with pytest.raises(AssertionError) as raised:
            await kit.restart()
        assert str(raised.value) == (
            "replay reached a different state:\n  before restart: Decimal('2')\n"
            "  after recovery: Decimal('3')"
        )
        assert await kit.restart(check_state=False) == Decimal(3)


async def test_state_of_reads_the_state_from_the_actor() -> None:
    async with EventSourcedTestKit(
        lambda: Account("8"), serializer=serializer, state_of=lambda a: (a.persistence_id, a.state)
    ) as kit:
        result = await kit.run_command(Deposit(Decimal(2)))

        assert result.state == ("account-8", Decimal(2))
        assert await kit.state() == ("account-8", Decimal(2))


class Stateless(PersistentActor):
    def __init__(self) -> None:
        super().__init__()
        self.persistence_id = "stateless"


async def test_an_actor_without_a_state_attribute_needs_state_of() -> None:
    async with EventSourcedTestKit(Stateless, serializer=serializer) as kit:
        with pytest.raises(AssertionError) as raised:
            await kit.state()

    assert str(raised.value) == (
        "Stateless has no attribute 'state': pass state_of=... to EventSourcedTestKit to say how "
        "to read its state"
    )


async def test_a_command_that_fails_the_actor_is_reported() -> None:
    async with EventSourcedTestKit(lambda: Account("9"), serializer=serializer) as kit:
        with pytest.raises(AssertionError) as raised:
            await kit.run_command(Crash())

        assert str(raised.value) == (
            f"{kit.ref.path} failed while handling Crash() and was restarted "
            "(see the actor_failed log)"
        )


class BrokenRecovery(Account):
    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited):
            raise ValueError("cannot replay deposits")
        super().receive_recover(message)


async def test_a_recovery_failure_is_reported_with_its_cause() -> None:
    broken = False

    def make() -> Account:
        return BrokenRecovery("10") if broken else Account("10")

    async with EventSourcedTestKit(make, serializer=serializer) as kit:
        await kit.run_command(Deposit(Decimal(1)))
        broken = True

        with pytest.raises(AssertionError) as raised:
            await kit.restart()

        assert str(raised.value) == (
            f"{kit.ref.path} stopped while recovering: ValueError('cannot replay deposits')"
        )
        assert isinstance(raised.value.__cause__, ValueError)


async def test_result_event_and_reply_insist_on_exactly_one() -> None:
    result = CommandResult(Deposit(Decimal(1)), (), ("a", "b"), None)

    with pytest.raises(AssertionError) as no_event:
        _ = result.event
    with pytest.raises(AssertionError) as two_replies:
        _ = result.reply

    assert str(no_event.value) == "Deposit(amount=Decimal('1')) persisted 0 events, not one: ()"
    assert str(two_replies.value) == (
        "Deposit(amount=Decimal('1')) got 2 replies, not one: ('a', 'b')"
    )
