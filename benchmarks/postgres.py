"""PostgreSQL cases: the PostgreSQL journal next to raw asyncpg on the same server, in the same
run (see :mod:`benchmarks._postgres` for the server, the databases and the baselines).

Every variant runs on each event loop, the raw baselines too (asyncpg needs one): ratios compare
figures of the same loop.
"""

from __future__ import annotations

from benchmarks import _postgres
from benchmarks._harness import Bench, Unavailable

RAW_ONE = "raw asyncpg INSERT per event"
RAW_ROUNDS = "raw asyncpg executemany per round"
RAW_REPLAY = "raw asyncpg fetch+decode"


def _server(bench: Bench) -> tuple[str, str | None]:
    try:
        return _postgres.server_dsn(), None
    except Unavailable as exc:
        return "", f"unavailable: {exc}"


def one_actor(bench: Bench) -> None:
    """One writer persisting one event per command (each awaited), durable commits."""
    admin, skip = _server(bench)
    n = bench.size(3_000, 200)
    for loop in bench.loops:
        bench.variant(RAW_ONE, _postgres.raw_one, n=n, loop=loop, skip=skip, admin=admin)
        for level in ("journal", "actor"):
            bench.variant(
                f"{level} postgres",
                _postgres.ours,
                n=n,
                loop=loop,
                baselines=[RAW_ONE],
                skip=skip,
                admin=admin,
                level=level,
                shape="one",
            )


def many_actors(bench: Bench) -> None:
    """1,000 writers x 100 events, concurrently (group commit), durable commits."""
    admin, skip = _server(bench)
    actors = bench.size(1_000, 50)
    n = actors * bench.size(100, 10)
    for loop in bench.loops:
        bench.variant(
            RAW_ROUNDS, _postgres.raw_rounds, n=n, loop=loop, skip=skip, admin=admin, actors=actors
        )
        for level in ("journal", "actor"):
            bench.variant(
                f"{level} postgres",
                _postgres.ours,
                n=n,
                loop=loop,
                baselines=[RAW_ROUNDS],
                skip=skip,
                admin=admin,
                level=level,
                shape="rounds",
                actors=actors,
            )


def replay_one(bench: Bench) -> None:
    """Recovery of one id with 1,000,000 events (interleaved with 1,000,000 of 100 other ids):
    events/s and peak memory."""
    admin, skip = _server(bench)
    n = bench.size(1_000_000, 5_000)
    path, prepared = (
        bench.dataset(
            f"postgres-history-{n}",
            _postgres.prepare_history,
            n=n,
            admin=admin,
            actors=1,
            background=100,
        )
        if skip is None
        else ("", skip)
    )
    for loop in bench.loops:
        bench.variant(
            RAW_REPLAY,
            _postgres.raw_replay,
            n=n,
            loop=loop,
            memory=True,
            skip=prepared,
            path=path,
            actors=1,
        )
        for level in ("journal", "actor"):
            bench.variant(
                f"{level} postgres",
                _postgres.ours_replay,
                n=n,
                loop=loop,
                baselines=[RAW_REPLAY],
                memory=True,
                skip=prepared,
                path=path,
                level=level,
                actors=1,
            )


CASES = (one_actor, many_actors, replay_one)
