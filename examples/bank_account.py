"""The talk's canonical example: a bank account register, event-sourced.

Each transaction is persisted as an event; the balance is never stored, it is derived by
replaying the transactions. Run ``python -m examples.bank_account`` to print the register from the
slide, the balance at earlier points (by recovering up to a sequence number), and an overdraft
being rejected. Money is ``Decimal``, serialized exactly.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import actorsys
from actorsys import ActorSystem
from examples._logging import configure_logging
from persistence import Persistence, PersistentActor, Recovery, Serializer

serializer = Serializer()

# ---------------------------------------------------------------------- commands and events


@dataclass(frozen=True, slots=True)
class OpenAccount:
    owner: str


@dataclass(frozen=True, slots=True)
class Deposit:
    date: str
    comment: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Withdraw:
    date: str
    comment: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class GetRegister:
    pass


@serializer.type("AccountOpened")
@dataclass(frozen=True, slots=True)
class AccountOpened:
    owner: str


@serializer.type("Deposited")
@dataclass(frozen=True, slots=True)
class Deposited:
    date: str
    comment: str
    amount: Decimal


@serializer.type("Withdrawn")
@dataclass(frozen=True, slots=True)
class Withdrawn:
    date: str
    comment: str
    amount: Decimal


Transaction = Deposited | Withdrawn


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


@dataclass(frozen=True, slots=True)
class Register:
    """The account as derived from its events: each transaction with the balance after it."""

    owner: str
    rows: tuple[tuple[Transaction, Decimal], ...]
    version: int

    @property
    def balance(self) -> Decimal:
        return self.rows[-1][1] if self.rows else Decimal("0.00")


# ---------------------------------------------------------------------- the entity


class Account(PersistentActor):
    """A bank account: deposits and withdrawals, no overdraft."""

    def __init__(self, account_id: str, recovery: Recovery | None = None) -> None:
        super().__init__()
        self.persistence_id = f"account-{account_id}"
        if recovery is not None:
            self.recovery = recovery
        self.owner = ""
        self.rows: list[tuple[Transaction, Decimal]] = []

    @property
    def balance(self) -> Decimal:
        return self.rows[-1][1] if self.rows else Decimal("0.00")

    def apply(self, event: Any) -> None:
        match event:
            case AccountOpened(owner=owner):
                self.owner = owner
            case Deposited(amount=amount):
                self.rows.append((event, self.balance + amount))
            case Withdrawn(amount=amount):
                self.rows.append((event, self.balance - amount))

    def receive_recover(self, message: Any) -> None:
        self.apply(message)

    def receive_command(self, command: Any) -> None:
        sender = self.context.sender
        match command:
            case OpenAccount(owner=owner):
                if self.owner:
                    sender.tell(Rejected(f"account already opened for {self.owner}"))
                else:
                    self.persist(AccountOpened(owner), lambda e: self._reply(e, sender))
            case Deposit(date=date, comment=comment, amount=amount):
                if not self.owner:
                    sender.tell(Rejected("open the account first"))
                elif amount <= 0:
                    sender.tell(Rejected(f"a deposit must be positive, got {amount}"))
                else:
                    self.persist(Deposited(date, comment, amount), lambda e: self._reply(e, sender))
            case Withdraw(date=date, comment=comment, amount=amount):
                if amount > self.balance:
                    sender.tell(
                        Rejected(
                            f"insufficient funds: balance {self.balance:,.2f}, "
                            f"requested {amount:,.2f}"
                        )
                    )
                else:
                    self.persist(Withdrawn(date, comment, amount), lambda e: self._reply(e, sender))
            case GetRegister():
                sender.tell(Register(self.owner, tuple(self.rows), self.last_sequence_nr))
            case _:
                self.unhandled(command)

    def _reply(self, event: Any, sender: actorsys.ActorRef) -> None:
        self.apply(event)
        sender.tell(Register(self.owner, tuple(self.rows), self.last_sequence_nr))


# ---------------------------------------------------------------------- the slide

TRANSACTIONS: list[Deposit | Withdraw] = [
    Deposit("7/1/2014", "Deposit from 3300", Decimal("10000.00")),
    Withdraw("7/3/2014", "Check 001", Decimal("4000.00")),
    Withdraw("7/4/2014", "ATM Withdrawal", Decimal("3.00")),
    Withdraw("7/11/2014", "Check 002", Decimal("5.00")),
    Deposit("7/12/2014", "Deposit from 3301", Decimal("2000.00")),
]


def format_register(register: Register) -> str:
    """The register as on the slide: date, comment, change, balance."""
    lines = [f"{'Date':<10} {'Comment':<18} {'Change':>11} {'Balance':>10}"]
    for event, balance in register.rows:
        sign = "+" if isinstance(event, Deposited) else "-"
        lines.append(
            f"{event.date:<10} {event.comment:<18} {sign} {event.amount:>9,.2f} {balance:>10,.2f}"
        )
    return "\n".join(lines)


async def main(journal: str) -> None:
    async with ActorSystem(
        "bank", extensions=[Persistence(journal, "memory:", serializer=serializer)]
    ) as system:
        account = system.spawn(lambda: Account("3300"), "account-3300")
        await account.ask(OpenAccount("Duncan"))
        register: Any = None
        for transaction in TRANSACTIONS:
            register = await account.ask(transaction)
        print(format_register(register))
        print(f"balance: {register.balance:,.2f} (derived by applying {len(register.rows)} events)")

        reply = await account.ask(Withdraw("7/13/2014", "Check 003", Decimal("10000.00")))
        print(f"overdraft rejected: {reply.reason}")

        await system.stop(account)
        print("balance at earlier points, each by recovering up to a sequence number:")
        for sequence_nr in range(2, register.version + 1):
            past = system.spawn(lambda n=sequence_nr: Account("3300", Recovery.to(n)))  # type: ignore[misc]
            state = await past.ask(GetRegister())
            print(f"  after event {sequence_nr}: {state.balance:,.2f}")
            await system.stop(past)

        replayed = system.spawn(lambda: Account("3300"))
        state = await replayed.ask(GetRegister())
        print(f"full replay: balance {state.balance!r} after {state.version} events")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The talk's bank account register.")
    parser.add_argument("--journal", default="memory:", help="journal URL (default memory:)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log on stderr")
    args = parser.parse_args()
    configure_logging(args.verbose)
    actorsys.run(main(args.journal))
    sys.exit(0)
