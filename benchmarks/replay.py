"""Replay cases: recovering one actor from a long history, from a snapshot, many actors at once.

Every variant runs in a fresh process so its peak memory (growth of the peak RSS over the RSS
before it started) is its own. Histories are stored once per run and shared by the cases.
Baselines read the same events from a minimal SQLite table (``SELECT`` + msgpack decode into event
objects) and from plain files of msgpack records (sequential read + decode); the peer is the
``eventsourcing`` library reconstructing its aggregates from its SQLite store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import msgpack

from benchmarks import _raw
from benchmarks._common import Deposited, clock, recovery_result, rss_bytes
from benchmarks._harness import Bench, Result

SNAPSHOT_GAP = 10_000
"""Events stored after the snapshot in the snapshot case."""

RAW_SQLITE = "raw sqlite3 SELECT+decode"
RAW_FILE = "raw file read+decode"
RAW = {"sqlite": RAW_SQLITE, "file": RAW_FILE}


def _state(events: int) -> tuple[int, int]:
    """The state after deposits 1..events (each deposit's amount is its sequence number)."""
    return events, events * (events + 1) // 2


def raw_sqlite_prepare(n: int, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """Store ``n // actors`` events per id in the raw table, and maybe a snapshot per id."""
    per = n // actors
    conn = _raw.open_sqlite(path, "normal")
    try:
        conn.execute(
            "CREATE TABLE snapshots (persistence_id TEXT PRIMARY KEY, "
            "sequence_nr INTEGER NOT NULL, payload BLOB NOT NULL)"
        )
        for a in range(actors):
            for start in range(1, per + 1, 10_000):
                rows = [
                    _raw.row(f"acc-{a}", seq, Deposited(seq))
                    for seq in range(start, min(start + 10_000, per + 1))
                ]
                conn.execute("BEGIN")
                conn.executemany(_raw.INSERT, rows)
                conn.execute("COMMIT")
            if snapshot_before_end:
                at = per - snapshot_before_end
                conn.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?)",
                    (f"acc-{a}", at, msgpack.packb(_state(at))),
                )
    finally:
        conn.close()
    return {}


def raw_sqlite_replay(n: int, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """For each id: load the snapshot if asked, SELECT the events after it, decode, apply."""
    per = n // actors
    before = rss_bytes()
    conn = sqlite3.connect(path)
    try:
        started = clock()
        for a in range(actors):
            persistence_id = f"acc-{a}"
            events = balance = 0
            if snapshot_before_end:
                (payload,) = conn.execute(
                    "SELECT payload FROM snapshots WHERE persistence_id = ?", (persistence_id,)
                ).fetchone()
                events, balance = msgpack.unpackb(payload)
            decode = _raw.decode
            for manifest, payload in conn.execute(_raw.SELECT, (persistence_id, events + 1)):
                event = decode(manifest, payload)
                events += 1
                balance += event.amount
            if events != per:
                raise AssertionError(f"{persistence_id}: {events} events, expected {per}")
        elapsed = clock() - started
    finally:
        conn.close()
    return recovery_result(n, elapsed, before, snapshot_before_end * actors)


def raw_file_prepare(n: int, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """One file of records per id, and maybe a snapshot file holding state and file offset."""
    per = n // actors
    directory = Path(path)
    directory.mkdir(parents=True)
    at = per - snapshot_before_end
    for a in range(actors):
        snapshot = (0, 0, 0)
        with open(directory / f"acc-{a}.log", "wb") as log:
            for seq in range(1, per + 1):
                log.write(_raw.frame(_raw.row(f"acc-{a}", seq, Deposited(seq))))
                if snapshot_before_end and seq == at:
                    snapshot = (log.tell(), *_state(at))
            log.flush()
            os.fsync(log.fileno())
        if snapshot_before_end:
            (directory / f"acc-{a}.snapshot").write_bytes(msgpack.packb(snapshot))
    return {}


def raw_file_replay(n: int, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """For each id: read the snapshot if asked, then the records after it, decode, apply."""
    per = n // actors
    directory = Path(path)
    before = rss_bytes()
    started = clock()
    for a in range(actors):
        offset = events = balance = 0
        if snapshot_before_end:
            offset, events, balance = msgpack.unpackb(
                (directory / f"acc-{a}.snapshot").read_bytes()
            )
        decode = _raw.decode
        for stored in _raw.read_records(str(directory / f"acc-{a}.log"), offset):
            event = decode(stored[2], stored[3])
            events += 1
            balance += event.amount
        if events != per:
            raise AssertionError(f"acc-{a}: {events} events, expected {per}")
    elapsed = clock() - started
    return recovery_result(n, elapsed, before, snapshot_before_end * actors)


RAW_REPLAY = {"sqlite": raw_sqlite_replay, "file": raw_file_replay}


def _recovery(bench: Bench, *, actors: int, per: int, peer_per: int, snapshot: bool) -> None:
    """Every variant of one replay case: baselines, journals, actors on each loop, the peer."""
    n = actors * per
    gap = SNAPSHOT_GAP if snapshot else 0
    # one-actor histories carry a snapshot, used only by the snapshot case
    stored_gap = SNAPSHOT_GAP if actors == 1 else 0
    key = f"{actors}x{per}"
    raw = {
        "sqlite": bench.dataset(
            f"raw-sqlite-{key}.db",
            raw_sqlite_prepare,
            n=n,
            actors=actors,
            snapshot_before_end=stored_gap,
        ),
        "file": bench.dataset(
            f"raw-file-{key}", raw_file_prepare, n=n, actors=actors, snapshot_before_end=stored_gap
        ),
    }
    ours = {
        kind: bench.dataset(
            f"ours-{kind}-{key}" + (".db" if kind == "sqlite" else ""),
            "benchmarks._ours_journal:prepare",
            n=n,
            kind=kind,
            actors=actors,
            snapshot_before_end=stored_gap,
        )
        for kind in ("sqlite", "file")
    }
    for kind, (path, skip) in raw.items():
        bench.measure(
            RAW[kind],
            RAW_REPLAY[kind],
            n=n,
            loop="sync",
            isolated=True,
            skip=skip,
            path=path,
            actors=actors,
            snapshot_before_end=gap,
        )
    for loop in bench.loops:
        for level in ("journal", "actor"):
            for kind, (path, skip) in ours.items():
                baselines = [RAW[kind]] if level == "journal" else [RAW[kind], f"journal {kind}"]
                bench.measure(
                    f"{level} {kind}",
                    f"benchmarks._ours_{level}:replay",
                    n=n,
                    loop=loop,
                    baselines=baselines,
                    isolated=True,
                    skip=skip,
                    kind=kind,
                    path=path,
                    actors=actors,
                    snapshot_before_end=gap,
                )
    peer_n = actors * peer_per
    peer_path, skip = bench.dataset(
        f"eventsourcing-{actors}x{peer_per}.db",
        "benchmarks._eventsourcing:prepare",
        n=peer_n,
        aggregates=actors,
        snapshot_before_end=stored_gap,
    )
    bench.measure(
        "eventsourcing",
        "benchmarks._eventsourcing:replay",
        n=peer_n,
        loop="sync",
        baselines=[RAW_SQLITE],
        isolated=True,
        skip=skip,
        path=peer_path,
        aggregates=actors,
        snapshot_before_end=gap,
    )


def one_actor(bench: Bench) -> None:
    """Recovery of one actor with 1,000,000 events: events/s and peak memory.

    Timed from asking for the recovery until the state is complete; opening the store is not
    timed (its memory counts).
    """
    per = bench.size(1_000_000, 100_000)
    _recovery(bench, actors=1, per=per, peer_per=bench.size(per, 20_000), snapshot=False)


def one_actor_snapshot(bench: Bench) -> None:
    """The same recovery from a snapshot taken 10,000 events before the end: time and memory."""
    per = bench.size(1_000_000, 100_000)
    _recovery(bench, actors=1, per=per, peer_per=bench.size(per, 20_000), snapshot=True)


def many_actors(bench: Bench) -> None:
    """1,000 actors x 1,000 events recovering concurrently: events/s and peak memory.

    The baselines and the peer recover the ids one after another (they have no concurrency).
    """
    actors = bench.size(1_000, 100)
    per = bench.size(1_000, 100)
    _recovery(bench, actors=actors, per=per, peer_per=per, snapshot=False)


CASES = (one_actor, one_actor_snapshot, many_actors)
