"""The peer for the persistence cases: the ``eventsourcing`` library's SQLite application.

Its SQLite recorder runs in WAL mode with SQLite's default ``synchronous`` (FULL): each save is
one durable transaction, like our durable default. It is synchronous, so it runs without a loop.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from benchmarks._common import clock, rate, recovery_result, rss_bytes
from benchmarks._harness import Result


class Account(Aggregate):
    """One account: opened, then a deposit per event."""

    @staticmethod
    def create_id(name: str) -> uuid.UUID:
        return account_id(name)

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.events = 0
        self.balance = 0

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        self.events += 1
        self.balance += amount


def account_id(name: str) -> uuid.UUID:
    """The aggregate id of the account called ``name`` (stable across processes)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"actorsys-bench:{name}")


def _application(path: str, *, snapshots: bool = False) -> Application[Any]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    if snapshots:
        env["IS_SNAPSHOTTING_ENABLED"] = "y"
    return Application(env=env)


def save_one_per_save(n: int, path: str) -> Result:
    """``n`` deposits on one account, each saved on its own (one transaction per event)."""
    app = _application(path)
    try:
        account = Account("acc-0")
        app.save(account)
        started = clock()
        for i in range(n):
            account.deposit(i)
            app.save(account)
        elapsed = clock() - started
    finally:
        app.close()
    return {"events/s": rate(n, elapsed)}


def save_batched(n: int, path: str, aggregates: int) -> Result:
    """``aggregates`` accounts, each saving its ``n // aggregates`` deposits in one save."""
    per = n // aggregates
    app = _application(path)
    try:
        accounts = [Account(f"acc-{i}") for i in range(aggregates)]
        app.save(*accounts)
        started = clock()
        for account in accounts:
            for i in range(per):
                account.deposit(i)
            app.save(account)
        elapsed = clock() - started
    finally:
        app.close()
    return {"events/s": rate(aggregates * per, elapsed)}


def prepare(
    n: int, path: str, aggregates: int, background: int = 0, snapshot_before_end: int = 0
) -> Result:
    """Store ``aggregates`` accounts of ``n // aggregates`` deposits, maybe with a snapshot each.

    Interleaved as :func:`benchmarks._ours_journal.history` writes: rounds of one deposit per
    account (and one on one of ``background`` other accounts in turn), saved together about
    every 1,000 deposits (the store keeps each aggregate's events together whatever the order).
    """
    per = n // aggregates
    app = _application(path, snapshots=snapshot_before_end > 0)
    try:
        accounts = [Account(f"acc-{a}") for a in range(aggregates)]
        others = [Account(f"bg-{b}") for b in range(background)]
        app.save(*accounts, *others)
        rounds_per_save = max(1, 1000 // (aggregates + (1 if background else 0)))
        for seq in range(1, per + 1):
            for account in accounts:
                account.deposit(seq)
            if others:
                others[(seq - 1) % len(others)].deposit(seq)
            if seq % rounds_per_save == 0 or seq == per:
                app.save(*accounts, *others)
        if snapshot_before_end:
            for account in accounts:
                # version 1 is the Opened event, deposits follow
                app.take_snapshot(account.id, version=1 + per - snapshot_before_end)
    finally:
        app.close()
    return {}


def replay(n: int, path: str, aggregates: int, snapshot_before_end: int = 0) -> Result:
    """Reconstruct every account (one after another); speed and peak memory growth."""
    per = n // aggregates
    before = rss_bytes()
    app = _application(path, snapshots=snapshot_before_end > 0)
    try:
        started = clock()
        for a in range(aggregates):
            account: Account = app.repository.get(account_id(f"acc-{a}"))
            if account.events != per:
                raise AssertionError(f"replayed {account.events} deposits, expected {per}")
        elapsed = clock() - started
    finally:
        app.close()
    return recovery_result(n, elapsed, before, snapshot_before_end * aggregates)
