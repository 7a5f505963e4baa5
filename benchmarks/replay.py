"""Replay cases: recovering one actor from a long history, from a snapshot, many actors at once.

Every variant measures its peak memory too (growth of the peak RSS over the RSS before it
started), so it runs in a fresh process unless isolation is off. Histories are stored once per
run, by the journals themselves, and shared by the cases; they are written interleaved, as
running actors write them (see :func:`benchmarks._ours_journal.history`): the replayed ids take
turns, and a replayed id that recovers alone shares the log with as many events of 100 other ids.

Baselines read the very files the journal variants read: the SQLite journal's file with one
``SELECT`` per id (+ msgpack decode into event objects), and the file journal's segments through
an index of the id's records built before the timing (+ checksum check and decode), with the
snapshot read directly from the snapshot store's file. The peer is the ``eventsourcing`` library
reconstructing its aggregates from its SQLite store, holding the same interleaved history.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack

from benchmarks import _raw
from benchmarks._common import clock, recovery_result, rss_bytes
from benchmarks._harness import Bench, Result

BACKGROUND = 100
"""Other ids whose events are interleaved with the history of an actor that recovers alone."""

RAW_SQLITE = "raw sqlite SELECT+decode"
RAW_FILE = "raw file read+decode"
RAW = {"sqlite": RAW_SQLITE, "file": RAW_FILE}
PEER = "eventsourcing"


def _sqlite_snapshot_path(path: str) -> str:
    return f"{path}.snapshots.db"


def _file_snapshot_path(path: str) -> str:
    return f"{path}.snapshots"


def raw_sqlite_replay(n: int, path: str, actors: int, snapshot_before_end: int = 0) -> Result:
    """For each id: load the snapshot if asked, SELECT the events after it, decode, apply."""
    per = n // actors
    before = rss_bytes()
    conn = sqlite3.connect(path)
    snapshots = sqlite3.connect(_sqlite_snapshot_path(path)) if snapshot_before_end else None
    try:
        started = clock()
        for a in range(actors):
            persistence_id = f"acc-{a}"
            events = balance = 0
            if snapshots is not None:
                _, manifest, payload = snapshots.execute(
                    _raw.SELECT_SNAPSHOT, (persistence_id,)
                ).fetchone()
                state = _raw.decode_state(manifest, payload)
                events, balance = state.events, state.balance
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
        if snapshots is not None:
            snapshots.close()
    return recovery_result(n, elapsed, before, snapshot_before_end * actors)


def raw_file_index(n: int, path: str, journal: str) -> Result:
    """Store the index of the file journal at ``journal`` (every id's records) at ``path``."""
    index = _raw.index_file_journal(journal)
    Path(path).write_bytes(msgpack.packb(index))
    return {}


def raw_file_replay(
    n: int, path: str, index: str, actors: int, snapshot_before_end: int = 0
) -> Result:
    """For each id: read the snapshot if asked, then the id's records after it (checksums
    checked), decode, apply. Loading the index is not timed (the journal builds its own when
    it opens, also untimed)."""
    per = n // actors
    before = rss_bytes()
    entries: dict[str, list[_raw.IndexEntry]] = {
        persistence_id: [tuple(entry) for entry in found]
        for persistence_id, found in msgpack.unpackb(Path(index).read_bytes()).items()
    }
    started = clock()
    for a in range(actors):
        persistence_id = f"acc-{a}"
        events = balance = 0
        if snapshot_before_end:
            loaded = _raw.load_file_snapshot(_file_snapshot_path(path), persistence_id)
            if loaded is None:
                raise AssertionError(f"{persistence_id}: no snapshot stored")
            _, state = loaded
            events, balance = state.events, state.balance
        decode = _raw.decode
        for stored in _raw.read_events(path, entries[persistence_id], events + 1):
            event = decode(stored[1], stored[2])
            events += 1
            balance += event.amount
        if events != per:
            raise AssertionError(f"{persistence_id}: {events} events, expected {per}")
    elapsed = clock() - started
    return recovery_result(n, elapsed, before, snapshot_before_end * actors)


def _recovery(bench: Bench, *, actors: int, per: int, gap: int, snapshot: bool) -> None:
    """Every variant of one replay case: baselines, journals, actors on each loop, the peer."""
    n = actors * per
    background = BACKGROUND if actors == 1 else 0
    # one-actor histories carry a snapshot, used only by the snapshot case
    stored_gap = gap if actors == 1 else 0
    replayed_gap = gap if snapshot else 0
    key = f"{actors}x{per}"
    ours = {
        kind: bench.dataset(
            f"ours-{kind}-{key}" + (".db" if kind == "sqlite" else ""),
            "benchmarks._ours_journal:prepare",
            n=n,
            kind=kind,
            actors=actors,
            background=background,
            snapshot_before_end=stored_gap,
        )
        for kind in ("sqlite", "file")
    }
    sqlite_path, sqlite_skip = ours["sqlite"]
    file_path, file_skip = ours["file"]
    index_path, index_skip = (
        bench.dataset(f"ours-file-{key}.raw-index", raw_file_index, n=n, journal=file_path)
        if file_skip is None
        else ("", file_skip)
    )
    bench.variant(
        RAW_SQLITE,
        raw_sqlite_replay,
        n=n,
        loop="sync",
        memory=True,
        skip=sqlite_skip,
        path=sqlite_path,
        actors=actors,
        snapshot_before_end=replayed_gap,
    )
    bench.variant(
        RAW_FILE,
        raw_file_replay,
        n=n,
        loop="sync",
        memory=True,
        skip=index_skip,
        path=file_path,
        index=index_path,
        actors=actors,
        snapshot_before_end=replayed_gap,
    )
    for loop in bench.loops:
        for level in ("journal", "actor"):
            for kind, (path, skip) in ours.items():
                baselines = [RAW[kind]]
                if level == "actor":
                    baselines.append(f"journal {kind}")
                    if kind == "sqlite":
                        baselines.append(PEER)
                bench.variant(
                    f"{level} {kind}",
                    f"benchmarks._ours_{level}:replay",
                    n=n,
                    loop=loop,
                    baselines=baselines,
                    memory=True,
                    skip=skip,
                    kind=kind,
                    path=path,
                    actors=actors,
                    snapshot_before_end=replayed_gap,
                )
    peer_path, skip = bench.dataset(
        f"eventsourcing-{key}.db",
        "benchmarks._eventsourcing:prepare",
        n=n,
        aggregates=actors,
        background=background,
        snapshot_before_end=stored_gap,
    )
    bench.variant(
        PEER,
        "benchmarks._eventsourcing:replay",
        n=n,
        loop="sync",
        baselines=[RAW_SQLITE],
        memory=True,
        skip=skip,
        path=peer_path,
        aggregates=actors,
        snapshot_before_end=replayed_gap,
    )


def one_actor(bench: Bench) -> None:
    """Recovery of one actor with 1,000,000 events: events/s and peak memory.

    The history is interleaved with 1,000,000 events of 100 other ids. Timed from asking for
    the recovery until the state is complete; opening the store is not timed (its memory counts).
    """
    per = bench.size(1_000_000, 2_000)
    _recovery(bench, actors=1, per=per, gap=bench.size(10_000, 1_000), snapshot=False)


def one_actor_snapshot(bench: Bench) -> None:
    """The same recovery from a snapshot taken 10,000 events before the end: time and memory."""
    per = bench.size(1_000_000, 2_000)
    _recovery(bench, actors=1, per=per, gap=bench.size(10_000, 1_000), snapshot=True)


def many_actors(bench: Bench) -> None:
    """1,000 actors x 1,000 events recovering concurrently: events/s and peak memory.

    The histories were written in rounds of one event per actor. The baselines and the peer
    recover the ids one after another (they have no concurrency).
    """
    actors = bench.size(1_000, 40)
    per = bench.size(1_000, 100)
    _recovery(bench, actors=actors, per=per, gap=0, snapshot=False)


CASES = (one_actor, one_actor_snapshot, many_actors)
