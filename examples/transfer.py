"""Money transfers between two accounts with at-least-once delivery.

The sender persists ``TransferSent`` (debiting itself) and delivers a ``Credit`` to the receiver
until the receiver's acknowledgement is persisted as ``TransferConfirmed``. The receiver persists
``TransferReceived`` once per (sender, delivery id) and acknowledges every copy, so a redelivered
credit is never counted twice. Either side may crash at any point: replay rebuilds the
unconfirmed deliveries and the set of credits already received, and redelivery finishes the job.

``python -m examples.transfer`` runs transfers with crashes injected on both sides and prints the
balances; ``--journal sqlite:PATH --phase send|settle`` is used by the kill -9 test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import actorsys
from actorsys import Actor, ActorRef, ActorSystem
from examples._logging import configure_logging
from persistence import AtLeastOnceDelivery, Persistence, Serializer

serializer = Serializer()


# ---------------------------------------------------------------------- events


@serializer.type("Deposited")
@dataclass(frozen=True, slots=True)
class Deposited:
    amount: Decimal


@serializer.type("TransferSent")
@dataclass(frozen=True, slots=True)
class TransferSent:
    transfer_id: str
    to_account: str
    amount: Decimal


@serializer.type("TransferConfirmed")
@dataclass(frozen=True, slots=True)
class TransferConfirmed:
    delivery_id: int


@serializer.type("TransferReceived")
@dataclass(frozen=True, slots=True)
class TransferReceived:
    from_account: str
    delivery_id: int
    amount: Decimal


# ---------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Deposit:
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: str
    to_account: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Credit:
    delivery_id: int
    from_account: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CreditAck:
    delivery_id: int


@dataclass(frozen=True, slots=True)
class Route:
    account_id: str
    message: Any


@dataclass(frozen=True, slots=True)
class GetBalance:
    pass


@dataclass(frozen=True, slots=True)
class GetAccount:
    account_id: str


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: str
    balance: Decimal
    unconfirmed: int
    credits_received: int
    duplicates_ignored: int


@dataclass(frozen=True, slots=True)
class Faults:
    """Failures to inject: crash before the next credits are stored, lose the next acks,
    crash right after the next transfers are stored."""

    crash_on_credit: int = 0
    drop_acks: int = 0
    crash_after_send: int = 0


@dataclass(slots=True)
class FaultPlan:
    """The faults still to inject into one account; kept by the bank, so it outlives restarts."""

    crash_on_credit: int = 0
    drop_acks: int = 0
    crash_after_send: int = 0


class InjectedCrash(Exception):
    pass


# ---------------------------------------------------------------------- the entity


class TransferAccount(AtLeastOnceDelivery):
    redeliver_interval = 0.2

    def __init__(self, account_id: str, bank: ActorRef, faults: FaultPlan) -> None:
        super().__init__()
        self.account_id = account_id
        self.persistence_id = f"transfer-account-{account_id}"
        self.bank = bank
        self.balance = Decimal("0.00")
        self.received: set[tuple[str, int]] = set()
        self.duplicates = 0
        self.faults = faults

    def apply(self, event: Any) -> None:
        match event:
            case Deposited(amount=amount):
                self.balance += amount
            case TransferSent(to_account=to_account, amount=amount):
                self.balance -= amount
                self.deliver(
                    self.bank,
                    lambda delivery_id: Route(
                        to_account, Credit(delivery_id, self.account_id, amount)
                    ),
                )
            case TransferConfirmed(delivery_id=delivery_id):
                self.confirm_delivery(delivery_id)
            case TransferReceived(from_account=sender, delivery_id=delivery_id, amount=amount):
                self.balance += amount
                self.received.add((sender, delivery_id))

    def receive_recover(self, message: Any) -> None:
        self.apply(message)

    def receive_command(self, command: Any) -> None:
        match command:
            case Faults(crash_on_credit=crash, drop_acks=drop, crash_after_send=after_send):
                self.faults.crash_on_credit = crash
                self.faults.drop_acks = drop
                self.faults.crash_after_send = after_send
            case Deposit(amount=amount):
                sender = self.context.sender

                def deposited(event: Deposited) -> None:
                    self.apply(event)
                    sender.tell(self.balance)

                self.persist(Deposited(amount), deposited)
            case Transfer(transfer_id=transfer_id, to_account=to_account, amount=amount):
                self.persist(TransferSent(transfer_id, to_account, amount), self._sent)
            case Credit(delivery_id=delivery_id, from_account=sender, amount=amount):
                self._credit(sender, delivery_id, amount)
            case CreditAck(delivery_id=delivery_id):
                self.persist(TransferConfirmed(delivery_id), self.apply)
            case GetBalance():
                self.context.sender.tell(
                    Balance(
                        self.account_id,
                        self.balance,
                        self.number_of_unconfirmed,
                        len(self.received),
                        self.duplicates,
                    )
                )
            case _:
                self.unhandled(command)

    def _sent(self, event: TransferSent) -> None:
        self.apply(event)
        if self.faults.crash_after_send:
            self.faults.crash_after_send -= 1
            raise InjectedCrash(f"{self.account_id} crashed after storing {event.transfer_id}")

    def _credit(self, sender: str, delivery_id: int, amount: Decimal) -> None:
        reply_to = self.context.sender
        if (sender, delivery_id) in self.received:
            self.duplicates += 1
            self._ack(reply_to, delivery_id)
            return
        if self.faults.crash_on_credit:
            self.faults.crash_on_credit -= 1
            raise InjectedCrash(f"{self.account_id} crashed before storing credit {delivery_id}")

        def stored(event: TransferReceived) -> None:
            self.apply(event)
            self._ack(reply_to, delivery_id)

        self.persist(TransferReceived(sender, delivery_id, amount), stored)

    def _ack(self, reply_to: ActorRef, delivery_id: int) -> None:
        if self.faults.drop_acks:
            self.faults.drop_acks -= 1
            return
        reply_to.tell(CreditAck(delivery_id), self.context.self)


class Bank(Actor):
    """Parent of the accounts: routes messages by account id (keeping the sender)."""

    def __init__(self, account_ids: list[str]) -> None:
        super().__init__()
        self.faults = {account_id: FaultPlan() for account_id in account_ids}

    def pre_start(self) -> None:
        for account_id, faults in self.faults.items():
            self.context.spawn(self._account_factory(account_id, faults), account_id)

    def _account_factory(self, account_id: str, faults: FaultPlan) -> Callable[[], Actor]:
        bank = self.context.self
        return lambda: TransferAccount(account_id, bank, faults)

    def receive(self, message: Any) -> None:
        match message:
            case Route(account_id=account_id, message=inner):
                account = self.context.child(account_id)
                if account is None:
                    self.unhandled(message)
                else:
                    self.context.forward(inner, account)
            case GetAccount(account_id=account_id):
                self.context.sender.tell(self.context.child(account_id))
            case _:
                self.unhandled(message)


# ---------------------------------------------------------------------- the scenario


async def _settled(accounts: list[ActorRef], within: float = 20.0) -> list[Balance]:
    async with asyncio.timeout(within):
        while True:
            balances = [await account.ask(GetBalance()) for account in accounts]
            if all(b.unconfirmed == 0 for b in balances):
                return balances
            await asyncio.sleep(0.05)


def _report(balances: list[Balance]) -> None:
    for b in balances:
        print(
            f"{b.account_id}: balance {b.balance:,.2f}, credits received {b.credits_received}, "
            f"duplicates ignored {b.duplicates_ignored}, unconfirmed {b.unconfirmed}"
        )
    print(f"total: {sum((b.balance for b in balances), Decimal('0.00')):,.2f}")


async def run(journal: str, phase: str, transfers: int) -> None:
    persistence = Persistence(journal, serializer=serializer)
    async with ActorSystem("transfers", extensions=[persistence]) as system:
        bank = system.spawn(lambda: Bank(["alice", "bob"]), "bank")
        alice = await bank.ask(GetAccount("alice"))
        bob = await bank.ask(GetAccount("bob"))
        if phase in ("demo", "send"):
            await alice.ask(Deposit(Decimal("1000.00")))
        if phase == "demo":
            alice.tell(Faults(crash_after_send=1))
            bob.tell(Faults(crash_on_credit=1, drop_acks=2))
        if phase in ("demo", "send"):
            for n in range(transfers):
                alice.tell(Transfer(f"t{n + 1}", "bob", Decimal("50.00")))
                if phase == "send":
                    print(f"sent t{n + 1}", flush=True)
                    await asyncio.sleep(0.01)
        _report(await _settled([alice, bob]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="At-least-once transfers between two accounts.")
    parser.add_argument("--journal", default="memory:")
    parser.add_argument(
        "--phase",
        choices=["demo", "send", "settle"],
        default="demo",
        help="demo: transfers with injected crashes; send: deposit and transfer; "
        "settle: only recover and finish redelivery",
    )
    parser.add_argument("--transfers", type=int, default=10)
    parser.add_argument("-v", "--verbose", action="store_true", help="log on stderr")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    actorsys.run(run(args.journal, args.phase, args.transfers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
