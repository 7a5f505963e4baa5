"""Actor-level persistence variants: persistent actors on an actor system with a journal."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from actorsys import ActorSystem
from benchmarks._common import (
    AccountState,
    Countdown,
    Deposited,
    clock,
    rate,
    recovery_result,
    rss_bytes,
)
from benchmarks._counters import Counter, calls, gc_allocations
from benchmarks._harness import Result
from benchmarks._ours_journal import open_journal, open_snapshot_store, serializer, snapshot_path
from persistence import Persistence, PersistentActor, SnapshotOffer

_ASK_TIMEOUT = 3600.0
STATE = "state?"


class Account(PersistentActor):
    """Persists one ``Deposited`` per command (an int amount); answers ``"state?"``."""

    def __init__(self, persistence_id: str, countdown: Countdown | None = None) -> None:
        super().__init__()
        self.persistence_id = persistence_id
        self._countdown = countdown
        self.events = 0
        self.balance = 0

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited):
            self.events += 1
            self.balance += message.amount
        elif isinstance(message, SnapshotOffer):
            state: AccountState = message.snapshot
            self.events, self.balance = state.events, state.balance

    def receive_command(self, command: Any) -> None:
        if command == STATE:
            self.context.sender.tell((self.events, self.balance))
        else:
            self.persist(Deposited(command), self._deposited)

    def _deposited(self, event: Deposited) -> None:
        self.events += 1
        self.balance += event.amount
        if self._countdown is not None:
            self._countdown.tick()


async def _system(kind: str, mode: str, path: str, snapshots: bool = False) -> ActorSystem:
    journal = open_journal(kind, mode, path)
    await journal.highest_sequence_nr("acc-0")  # opens it (and builds any index) untimed
    store = open_snapshot_store(kind, snapshot_path(kind, path)) if snapshots else None
    return ActorSystem("bench", extensions=[Persistence(journal, store, serializer=serializer())])


async def write_one(n: int, kind: str, mode: str, path: str) -> Result:
    """One persistent actor told ``n`` commands, each persisting one event before the next."""
    async with await _system(kind, mode, path) as system:
        countdown = Countdown(n)
        ref = system.spawn(lambda: Account("acc-0", countdown))
        await ref.ask(STATE, timeout=_ASK_TIMEOUT)  # recovered (nothing) before the timing
        started = clock()
        for amount in range(1, n + 1):
            ref.tell(amount)
        await countdown.done
        elapsed = clock() - started
    return {"events/s": rate(n, elapsed)}


async def write_rounds(n: int, kind: str, mode: str, path: str, actors: int) -> Result:
    """``actors`` persistent actors, each told its commands, round-robin (group commit)."""
    per = n // actors
    async with await _system(kind, mode, path) as system:
        countdown = Countdown(actors * per)
        refs = [system.spawn(partial(Account, f"acc-{a}", countdown)) for a in range(actors)]
        await asyncio.gather(*(ref.ask(STATE, timeout=_ASK_TIMEOUT) for ref in refs))
        started = clock()
        for amount in range(1, per + 1):
            for ref in refs:
                ref.tell(amount)
        await countdown.done
        elapsed = clock() - started
    return {"events/s": rate(actors * per, elapsed)}


async def _counted(counter: Counter, n: int, kind: str, mode: str, path: str, actors: int) -> int:
    per = n // actors
    async with await _system(kind, mode, path) as system:
        countdown = Countdown(actors * per)
        refs = [system.spawn(partial(Account, f"acc-{a}", countdown)) for a in range(actors)]
        await asyncio.gather(*(ref.ask(STATE, timeout=_ASK_TIMEOUT) for ref in refs))
        with counter() as counted:
            for amount in range(1, per + 1):
                for ref in refs:
                    ref.tell(amount)
            await countdown.done
    return counted.value


async def hidden_costs(n: int, kind: str, mode: str, path: str, actors: int) -> Result:
    """GC-tracked allocations and calls per event (see :mod:`benchmarks._counters`) of
    :func:`write_one` (one actor) or :func:`write_rounds`, each counted in a run of its own."""
    allocations = await _counted(gc_allocations, n, kind, mode, f"{path}-allocs", actors)
    called = await _counted(calls, n, kind, mode, f"{path}-calls", actors)
    events = n // actors * actors
    return {"GC allocs/event": allocations / events, "calls/event": called / events}


async def replay(n: int, kind: str, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """Start ``actors`` persistent actors at once and wait until each has recovered."""
    per = n // actors
    before = rss_bytes()
    mode = "full" if kind == "sqlite" else "always"
    async with await _system(kind, mode, path, snapshots=snapshot_before_end > 0) as system:
        started = clock()
        refs = [system.spawn(partial(Account, f"acc-{a}")) for a in range(actors)]
        states = await asyncio.gather(*(ref.ask(STATE, timeout=_ASK_TIMEOUT) for ref in refs))
        elapsed = clock() - started
    wrong = [state for state in states if state[0] != per]
    if wrong:
        raise AssertionError(f"recovered {wrong[0][0]} events, expected {per}")
    return recovery_result(n, elapsed, before, snapshot_before_end * actors)
