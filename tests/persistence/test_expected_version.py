"""Expected-version commands (the talk's conflict resolution): first writer wins."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import PersistentActor, RecoveryCompleted
from tests.persistence._actors import serializer, stored_events
from tests.persistence._journals import ControlledJournal


@serializer.type("AccountDeposited")
@dataclass(frozen=True)
class Deposited:
    amount: Decimal


@dataclass(frozen=True)
class Deposit:
    amount: Decimal
    expected_version: int


@dataclass(frozen=True)
class Accepted:
    version: int
    balance: Decimal


@dataclass(frozen=True)
class CommandRejected:
    reason: str


class Account(PersistentActor):
    """A bank account whose version is the number of events it applied."""

    def __init__(self, account_id: str) -> None:
        super().__init__()
        self.persistence_id = f"account-{account_id}"
        self.balance = Decimal(0)
        self.version = 0

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited):
            self.apply(message)
        elif message is RecoveryCompleted:
            assert self.version == self.last_sequence_nr

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if not isinstance(command, Deposit):
            return super().receive_command(command)
        sender = self.context.sender
        if command.expected_version != self.version:
            sender.tell(
                CommandRejected(
                    f"expected version mismatch: the command expects {command.expected_version}, "
                    f"the account is at {self.version}"
                )
            )
            return None

        def deposited(event: Deposited) -> None:
            self.apply(event)
            sender.tell(Accepted(self.version, self.balance))

        self.persist(Deposited(command.amount), deposited)
        return None

    def apply(self, event: Deposited) -> None:
        self.balance += event.amount
        self.version += 1


async def test_a_command_expecting_the_current_version_is_accepted_and_bumps_the_version(
    system: ActorSystem, probe: TestProbe
) -> None:
    account = system.spawn(lambda: Account("1"))

    probe.send(account, Deposit(Decimal("10.00"), expected_version=0))
    await probe.expect_message(Accepted(1, Decimal("10.00")))
    probe.send(account, Deposit(Decimal("5.50"), expected_version=1))
    await probe.expect_message(Accepted(2, Decimal("15.50")))


async def test_a_command_expecting_a_stale_version_is_rejected_with_a_reason_and_persists_nothing(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    account = system.spawn(lambda: Account("2"))
    probe.send(account, Deposit(Decimal("10.00"), expected_version=0))
    await probe.expect_message(Accepted(1, Decimal("10.00")))

    probe.send(account, Deposit(Decimal("99.00"), expected_version=0))

    await probe.expect_message(
        CommandRejected("expected version mismatch: the command expects 0, the account is at 1")
    )
    assert len(journal.write_calls) == 1
    assert await stored_events(journal, "account-2") == [(1, Deposited(Decimal("10.00")))]


async def test_of_two_clients_that_saw_the_same_version_the_first_writer_wins(
    system: ActorSystem, journal: ControlledJournal
) -> None:
    account = system.spawn(lambda: Account("3"))
    alice, bob = TestProbe(system, "alice"), TestProbe(system, "bob")
    journal.hold_writes()  # both commands arrive while the first one is being written

    alice.send(account, Deposit(Decimal("1.00"), expected_version=0))
    bob.send(account, Deposit(Decimal("2.00"), expected_version=0))
    await journal.wait_for_write_calls(1)
    journal.release_writes()

    await alice.expect_message(Accepted(1, Decimal("1.00")))
    await bob.expect_message(
        CommandRejected("expected version mismatch: the command expects 0, the account is at 1")
    )
    assert await stored_events(journal, "account-3") == [(1, Deposited(Decimal("1.00")))]


async def test_the_version_is_recovered_by_replay(system: ActorSystem, probe: TestProbe) -> None:
    account = system.spawn(lambda: Account("4"))
    for version in range(3):
        probe.send(account, Deposit(Decimal(1), expected_version=version))
        await probe.expect_message_type(Accepted)
    await system.stop(account)

    account = system.spawn(lambda: Account("4"))
    probe.send(account, Deposit(Decimal(1), expected_version=2))
    await probe.expect_message(
        CommandRejected("expected version mismatch: the command expects 2, the account is at 3")
    )
    probe.send(account, Deposit(Decimal(1), expected_version=3))
    await probe.expect_message(Accepted(4, Decimal(4)))
