"""Persist cases: one actor persisting one event per command, many actors persisting at once.

Each journal runs in its durable default (SQLite ``synchronous="full"``, file ``fsync="always"``)
and its fast mode (SQLite ``"normal"``, file ``"never"``: both still survive a killed process), at
two levels: the journal called directly, and persistent actors on top of it. Baselines are raw
``sqlite3`` and raw file appends in the same durability, run without an event loop (``sync``);
the peer is the ``eventsourcing`` library's SQLite application.
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks import _raw
from benchmarks._common import Deposited, clock, rate
from benchmarks._harness import Bench, Result

JOURNALS = (("sqlite", "full"), ("sqlite", "normal"), ("file", "always"), ("file", "never"))
RAW = {
    ("sqlite", "full"): "raw sqlite3 full",
    ("sqlite", "normal"): "raw sqlite3 normal",
    ("file", "always"): "raw file fdatasync",
    ("file", "never"): "raw file no sync",
}


def raw_sqlite_one(n: int, path: str, synchronous: str) -> Result:
    """``n`` events, one INSERT and one COMMIT each."""
    conn = _raw.open_sqlite(path, synchronous)
    try:
        started = clock()
        for seq in range(1, n + 1):
            conn.execute("BEGIN")
            conn.execute(_raw.INSERT, _raw.row("acc-0", seq, Deposited(seq)))
            conn.execute("COMMIT")
        elapsed = clock() - started
    finally:
        conn.close()
    return {"events/s": rate(n, elapsed)}


def raw_file_one(n: int, path: str, durable: bool) -> Result:
    """``n`` events, one ``write`` (and ``fdatasync`` if durable) each."""
    fd = _raw.open_append(path)
    try:
        started = clock()
        for seq in range(1, n + 1):
            os.write(fd, _raw.frame(_raw.row("acc-0", seq, Deposited(seq))))
            if durable:
                _raw.sync(fd)
        elapsed = clock() - started
    finally:
        os.close(fd)
    return {"events/s": rate(n, elapsed)}


def raw_sqlite_many(n: int, path: str, synchronous: str, actors: int) -> Result:
    """Rounds of one event per actor, each round one ``executemany`` in one transaction."""
    per = n // actors
    conn = _raw.open_sqlite(path, synchronous)
    try:
        started = clock()
        for seq in range(1, per + 1):
            rows = [_raw.row(f"acc-{a}", seq, Deposited(seq)) for a in range(actors)]
            conn.execute("BEGIN")
            conn.executemany(_raw.INSERT, rows)
            conn.execute("COMMIT")
        elapsed = clock() - started
    finally:
        conn.close()
    return {"events/s": rate(actors * per, elapsed)}


def raw_file_many(n: int, path: str, durable: bool, actors: int) -> Result:
    """Rounds of one event per actor, each round one ``write`` (and one ``fdatasync``)."""
    per = n // actors
    fd = _raw.open_append(path)
    try:
        started = clock()
        for seq in range(1, per + 1):
            os.write(
                fd,
                b"".join(
                    _raw.frame(_raw.row(f"acc-{a}", seq, Deposited(seq))) for a in range(actors)
                ),
            )
            if durable:
                _raw.sync(fd)
        elapsed = clock() - started
    finally:
        os.close(fd)
    return {"events/s": rate(actors * per, elapsed)}


def _raw_baselines(bench: Bench, n: int, actors: int | None = None) -> None:
    many: dict[str, Any] = {} if actors is None else {"actors": actors}
    for kind, mode in JOURNALS:
        if kind == "sqlite":
            bench.measure(
                RAW[kind, mode],
                raw_sqlite_many if many else raw_sqlite_one,
                n=n,
                loop="sync",
                path=str(bench.path("raw.db")),
                synchronous=mode,
                **many,
            )
        else:
            bench.measure(
                RAW[kind, mode],
                raw_file_many if many else raw_file_one,
                n=n,
                loop="sync",
                path=str(bench.path("raw.log")),
                durable=mode == "always",
                **many,
            )


def _ours(bench: Bench, level: str, n: int, actors: int | None = None) -> None:
    many: dict[str, Any] = {} if actors is None else {"actors": actors}
    function = "write_many" if many else "write_one"
    for loop in bench.loops:
        for kind, mode in JOURNALS:
            baselines = [RAW[kind, mode]]
            if level == "actor":
                baselines.append(f"journal {kind} {mode}")
            bench.measure(
                f"{level} {kind} {mode}",
                f"benchmarks._ours_{level}:{function}",
                n=n,
                loop=loop,
                baselines=baselines,
                kind=kind,
                mode=mode,
                path=str(bench.path(f"{kind}-{mode}-{loop}")),
                **many,
            )


def one_actor(bench: Bench) -> None:
    """One actor persisting 10,000 events, one command (one event, one write) at a time.

    Journal level: each write awaited before the next. Actor level: the actor is told every
    command at once and persists them one by one. Baselines commit or sync once per event.
    """
    n = bench.size(10_000, 500)
    _raw_baselines(bench, n)
    _ours(bench, "journal", n)
    _ours(bench, "actor", n)
    bench.measure(
        "eventsourcing 1/save",
        "benchmarks._eventsourcing:save_one_per_save",
        n=n,
        loop="sync",
        baselines=[RAW["sqlite", "full"]],
        path=str(bench.path("eventsourcing.db")),
    )


def many_actors(bench: Bench) -> None:
    """1,000 actors x 100 events persisting concurrently (group commit).

    Baselines write a round of one event per actor in one transaction (``executemany``) or with
    one write and one sync: what an ideal group commit achieves. The peer saves each aggregate's
    100 events in one save.
    """
    actors = bench.size(1_000, 100)
    per = bench.size(100, 20)
    n = actors * per
    _raw_baselines(bench, n, actors=actors)
    _ours(bench, "journal", n, actors=actors)
    _ours(bench, "actor", n, actors=actors)
    bench.measure(
        f"eventsourcing {per}/save",
        "benchmarks._eventsourcing:save_batched",
        n=n,
        loop="sync",
        baselines=[RAW["sqlite", "full"]],
        path=str(bench.path("eventsourcing.db")),
        aggregates=actors,
    )


CASES = (one_actor, many_actors)
