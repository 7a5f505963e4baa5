"""Persist cases: one actor persisting one event per command, many actors persisting at once, and
the hidden costs per persisted event.

Each journal runs in its durable default (SQLite ``synchronous="full"``, file ``fsync="always"``)
and its fast mode (SQLite ``"normal"``, file ``"never"``: both still survive a killed process), at
two levels: the journal called directly (one ``write()`` per batch, as the actor layer calls it),
and persistent actors on top of it.

Baselines (see :mod:`benchmarks._raw`) write the same rows into the journal's own SQLite schema,
or the same records into the file journal's format, with the same payloads and the same
durability, without an event loop (``sync``): one commit (or one ``write`` + ``fdatasync``) per
event in the sequential case, one per round of one event per actor in the concurrent case (an
ideal group commit). A looser bound, the SQLite journal's own transaction function called on
this thread (no thread hop, no group committer), shows how much of the gap is the journal's SQL
and how much its plumbing. The peer is the ``eventsourcing`` library's SQLite application.
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks import _raw
from benchmarks._common import Deposited, clock, rate
from benchmarks._harness import Bench, Result

JOURNALS = (("sqlite", "full"), ("sqlite", "normal"), ("file", "always"), ("file", "never"))
RAW = {
    ("sqlite", "full"): "raw sqlite full",
    ("sqlite", "normal"): "raw sqlite normal",
    ("file", "always"): "raw file fdatasync",
    ("file", "never"): "raw file no sync",
}
WRITE_BATCH = "journal's transaction, sync"


def raw_sqlite_one(n: int, path: str, synchronous: str) -> Result:
    """``n`` events, one transaction (``BEGIN IMMEDIATE``, ``INSERT``, ``COMMIT``) each."""
    _raw.create_sqlite_journal(path, synchronous)
    conn = _raw.open_sqlite(path, synchronous)
    try:
        started = clock()
        for seq in range(1, n + 1):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_raw.INSERT, _raw.row("acc-0", seq, Deposited(seq)))
            conn.execute("COMMIT")
        elapsed = clock() - started
    finally:
        conn.close()
    return {"events/s": rate(n, elapsed)}


def raw_file_one(n: int, path: str, durable: bool) -> Result:
    """``n`` events, one record, one ``write`` (and one ``fdatasync`` if durable) each."""
    fd = _raw.open_append(_raw.create_file_journal(path))
    try:
        started = clock()
        for seq in range(1, n + 1):
            os.write(fd, _raw.frame(seq, _raw.row("acc-0", seq, Deposited(seq))))
            if durable:
                _raw.sync(fd)
        elapsed = clock() - started
    finally:
        os.close(fd)
    return {"events/s": rate(n, elapsed)}


def raw_sqlite_rounds(n: int, path: str, synchronous: str, actors: int) -> Result:
    """Rounds of one event per actor, each round one ``executemany`` in one transaction."""
    per = n // actors
    _raw.create_sqlite_journal(path, synchronous)
    conn = _raw.open_sqlite(path, synchronous)
    try:
        started = clock()
        for seq in range(1, per + 1):
            rows = [_raw.row(f"acc-{a}", seq, Deposited(seq)) for a in range(actors)]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_raw.INSERT, rows)
            conn.execute("COMMIT")
        elapsed = clock() - started
    finally:
        conn.close()
    return {"events/s": rate(actors * per, elapsed)}


def raw_file_rounds(n: int, path: str, durable: bool, actors: int) -> Result:
    """Rounds of one event per actor, each round one ``write`` (and one ``fdatasync``)."""
    per = n // actors
    fd = _raw.open_append(_raw.create_file_journal(path))
    ordering = 0
    try:
        started = clock()
        for seq in range(1, per + 1):
            frames = []
            for a in range(actors):
                ordering += 1
                frames.append(_raw.frame(ordering, _raw.row(f"acc-{a}", seq, Deposited(seq))))
            os.write(fd, b"".join(frames))
            if durable:
                _raw.sync(fd)
        elapsed = clock() - started
    finally:
        os.close(fd)
    return {"events/s": rate(actors * per, elapsed)}


def _baselines(bench: Bench, n: int, actors: int | None = None) -> None:
    rounds: dict[str, Any] = {} if actors is None else {"actors": actors}
    for kind, mode in JOURNALS:
        if kind == "sqlite":
            bench.variant(
                RAW[kind, mode],
                raw_sqlite_rounds if rounds else raw_sqlite_one,
                n=n,
                loop="sync",
                path=bench.fresh("raw.db"),
                synchronous=mode,
                **rounds,
            )
            bench.variant(
                f"{WRITE_BATCH} {mode}",
                "benchmarks._ours_journal:write_batch_sync",
                n=n,
                loop="sync",
                baselines=[RAW[kind, mode]],
                mode=mode,
                path=bench.fresh("write-batch.db"),
                actors=actors or 1,
            )
        else:
            bench.variant(
                RAW[kind, mode],
                raw_file_rounds if rounds else raw_file_one,
                n=n,
                loop="sync",
                path=bench.fresh("raw-journal"),
                durable=mode == "always",
                **rounds,
            )


def _ours(bench: Bench, level: str, n: int, actors: int | None = None) -> None:
    rounds: dict[str, Any] = {} if actors is None else {"actors": actors}
    function = "write_rounds" if rounds else "write_one"
    for loop in bench.loops:
        for kind, mode in JOURNALS:
            baselines = [RAW[kind, mode]]
            if level == "actor":
                baselines.append(f"journal {kind} {mode}")
            bench.variant(
                f"{level} {kind} {mode}",
                f"benchmarks._ours_{level}:{function}",
                n=n,
                loop=loop,
                baselines=baselines,
                kind=kind,
                mode=mode,
                path=bench.fresh(f"{kind}-{mode}-{loop}"),
                **rounds,
            )


def one_actor(bench: Bench) -> None:
    """One actor persisting 10,000 events, one command (one event, one write) at a time.

    Journal level: each write awaited before the next. Actor level: the actor is told every
    command at once and persists them one by one. Baselines commit or sync once per event.
    """
    n = bench.size(10_000, 20)
    _baselines(bench, n)
    _ours(bench, "journal", n)
    _ours(bench, "actor", n)
    bench.variant(
        "eventsourcing 1/save",
        "benchmarks._eventsourcing:save_one_per_save",
        n=n,
        loop="sync",
        baselines=[RAW["sqlite", "full"]],
        path=bench.fresh("eventsourcing.db"),
    )


def many_actors(bench: Bench) -> None:
    """1,000 actors x 100 events persisting concurrently (group commit).

    Journal level: rounds of one event per id, each round one ``write()`` call with one atomic
    write per id, as the actor layer batches the persists of one loop turn. Baselines write a
    round in one transaction (``executemany``) or with one write and one sync: what an ideal
    group commit achieves. The peer saves each aggregate's 100 events in one save.
    """
    actors = bench.size(1_000, 20)
    per = bench.size(100, 3)
    n = actors * per
    _baselines(bench, n, actors=actors)
    _ours(bench, "journal", n, actors=actors)
    _ours(bench, "actor", n, actors=actors)
    bench.variant(
        f"eventsourcing {per}/save",
        "benchmarks._eventsourcing:save_batched",
        n=n,
        loop="sync",
        baselines=[RAW["sqlite", "full"]],
        path=bench.fresh("eventsourcing.db"),
        aggregates=actors,
    )


def hidden_costs(bench: Bench) -> None:
    """What each persisted event costs besides the storage: GC-tracked allocations and calls.

    Durable defaults (SQLite full, file always), one actor persisting one event per command and
    100 actors persisting at once. ``GC allocs/event`` counts every object the cyclic GC's
    allocator hands out in the process (not net of frees; objects CPython reuses from its free
    lists of small tuples, lists and dicts are not counted); ``calls/event`` counts the Python
    and C function calls made on the event loop's thread (a separate run under
    ``sys.setprofile``). Neither is timed.
    """
    shapes = (("1 actor", 1, bench.size(2_000, 10)), ("100 actors", 100, bench.size(10_000, 100)))
    for loop in bench.loops:
        for shape, actors, n in shapes:
            for kind, mode in (("sqlite", "full"), ("file", "always")):
                for level in ("journal", "actor"):
                    bench.variant(
                        f"{level} {kind} {mode}, {shape}",
                        f"benchmarks._ours_{level}:hidden_costs",
                        n=n,
                        loop=loop,
                        baselines=[f"journal {kind} {mode}, {shape}"] if level == "actor" else [],
                        kind=kind,
                        mode=mode,
                        path=bench.fresh(f"{kind}-{loop}"),
                        actors=actors,
                    )


CASES = (one_actor, many_actors, hidden_costs)
