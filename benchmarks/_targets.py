"""The issue's targets, evaluated against the run's own records.

Each target names one or more checks: a figure (case, variant, unit) as a ratio of medians to a
baseline, or as a value of its own. A check is evaluated on every loop its variant ran on; a
target is met when every evaluated check meets it on every loop, so a target can only look
better than one loop's figure if every loop's figure is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks._harness import LOOPS, Record
from benchmarks._progress import format_value


@dataclass(frozen=True, slots=True)
class Check:
    """One figure: ``variant``'s median ``unit`` in ``case``, over ``baseline``'s (if any)."""

    case: str
    variant: str
    unit: str
    baseline: str | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """``figure`` must be ``>= bound`` (``at_least``) or ``<= bound`` for every check."""

    figure: str
    bound: float
    at_least: bool
    checks: tuple[Check, ...]
    unit: str = "x"

    @property
    def goal(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}{self._suffix}"

    @property
    def _suffix(self) -> str:
        return "x" if self.unit == "x" else f" {self.unit}"

    def meets(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound


_ACTOR_LEVEL_ALLOCATIONS = tuple(
    Check(
        "persist.hidden_costs",
        f"actor {journal}, {shape}",
        "GC allocs/event",
        label=f"{journal}, {shape}",
    )
    for journal in ("sqlite full", "file always")
    for shape in ("1 actor", "100 actors")
)

TARGETS: tuple[Target, ...] = (
    Target(
        "tell vs naive asyncio actor",
        2.0,
        True,
        (Check("mailbox.tell", "actorsys", "msg/s", "naive (Queue+task)"),),
    ),
    Target(
        "tell vs bare deque drain, same handler",
        0.5,
        True,
        (Check("mailbox.tell", "actorsys", "msg/s", "bare deque drain"),),
    ),
    Target(
        "ask vs Future answered by call_soon",
        0.6,
        True,
        (Check("mailbox.ask", "actorsys", "round trips/s", "Future answered by call_soon"),),
    ),
    Target(
        "idle actor",
        500,
        False,
        (Check("mailbox.spawn_idle", "actorsys", "B/actor"),),
        unit="B",
    ),
    Target(
        "concurrent persist, SQLite: actor level vs raw executemany on the journal's schema",
        0.6,
        True,
        tuple(
            Check(
                "persist.many_actors",
                f"actor sqlite {mode}",
                "events/s",
                f"raw sqlite {mode}",
                mode,
            )
            for mode in ("full", "normal")
        ),
    ),
    Target(
        "concurrent persist, SQLite: actor level vs journal level",
        0.8,
        True,
        tuple(
            Check(
                "persist.many_actors",
                f"actor sqlite {mode}",
                "events/s",
                f"journal sqlite {mode}",
                mode,
            )
            for mode in ("full", "normal")
        ),
    ),
    Target(
        "concurrent persist, file (fsync=always): journal level vs raw group commit",
        0.5,
        True,
        (Check("persist.many_actors", "journal file always", "events/s", "raw file fdatasync"),),
    ),
    Target(
        "sequential persist vs one raw commit per event (SQLite full; file always)",
        0.8,
        True,
        (
            Check(
                "persist.one_actor", "actor sqlite full", "events/s", "raw sqlite full", "SQLite"
            ),
            Check(
                "persist.one_actor", "actor file always", "events/s", "raw file fdatasync", "file"
            ),
        ),
    ),
    Target(
        "sequential persist, SQLite synchronous=normal vs raw",
        0.6,
        True,
        (Check("persist.one_actor", "actor sqlite normal", "events/s", "raw sqlite normal"),),
    ),
    Target(
        "replay one id, SQLite, interleaved data, vs raw SELECT + decode",
        0.6,
        True,
        (Check("replay.one_actor", "actor sqlite", "events/s", "raw sqlite SELECT+decode"),),
    ),
    Target(
        "replay vs eventsourcing (SQLite)",
        12.0,
        True,
        (
            Check("replay.one_actor", "actor sqlite", "events/s", "eventsourcing", "one id"),
            Check("replay.many_actors", "actor sqlite", "events/s", "eventsourcing", "1,000 ids"),
        ),
    ),
    Target(
        "concurrent persist, PostgreSQL, 1,000 actors x 100 events: vs raw executemany rounds",
        0.5,
        True,
        (
            Check(
                "postgres.many_actors",
                "actor postgres",
                "events/s",
                "raw asyncpg executemany per round",
            ),
        ),
    ),
    Target(
        "sequential persist, PostgreSQL: vs one raw INSERT commit per event",
        0.8,
        True,
        (
            Check(
                "postgres.one_actor", "actor postgres", "events/s", "raw asyncpg INSERT per event"
            ),
        ),
    ),
    Target(
        "replay one id, PostgreSQL, 1,000,000 events: vs raw fetch + decode",
        0.5,
        True,
        (Check("postgres.replay_one", "actor postgres", "events/s", "raw asyncpg fetch+decode"),),
    ),
    Target(
        "routed ask across 3 node processes vs raw NATS request-reply, 100 in flight",
        0.5,
        True,
        (Check("cluster.routed_ask", "routed ask", "round trips/s", "raw NATS request-reply"),),
    ),
    Target(
        "local-mode sharding tell vs direct ActorRef.tell",
        0.7,
        True,
        (
            Check(
                "cluster.local_tell",
                "sharding tell (local mode)",
                "msg/s",
                "direct ActorRef.tell",
            ),
        ),
    ),
    Target(
        "failover after SIGKILL of a node, default settings (p50, max)",
        5,
        False,
        (
            Check("cluster.failover", "failover after SIGKILL", "p50 s", label="p50"),
            Check("cluster.failover", "failover after SIGKILL", "max s", label="max"),
        ),
        unit="s",
    ),
    Target(
        "GC-tracked allocations per persisted event, actor level",
        8,
        False,
        _ACTOR_LEVEL_ALLOCATIONS,
        unit="allocs",
    ),
)
"""The figures the issue sets targets for, in its order, and the allocation budget of the
optimisation work that follows it. Actor-level figures are what users get; journal-level ones
where the issue asks for them."""


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one target stands in a run."""

    target: Target
    now: str
    status: str


def _medians(records: Sequence[Record]) -> dict[tuple[str, str, str, str], float]:
    """``(case, variant, loop, unit) -> median`` of every measured figure."""
    return {(r.case, r.variant, r.loop, r.unit): r.value for r in records if r.value is not None}


def _loops(medians: dict[tuple[str, str, str, str], float], case: str, variant: str) -> list[str]:
    return sorted({loop for (c, v, loop, _) in medians if c == case and v == variant})


def evaluate(records: Sequence[Record]) -> list[Standing]:
    """Every target with its figures from ``records`` ("now") and whether it is met."""
    medians = _medians(records)
    standings = []
    for target in TARGETS:
        parts: list[str] = []
        verdicts: list[bool] = []
        for check in target.checks:
            measured = []
            for loop in _loops(medians, check.case, check.variant):
                value = medians.get((check.case, check.variant, loop, check.unit))
                if value is None:
                    continue
                if check.baseline is not None:
                    base = medians.get((check.case, check.baseline, loop, check.unit))
                    if base is None:  # a baseline that runs without an event loop (sync, threads)
                        loopless = [
                            other
                            for other in _loops(medians, check.case, check.baseline)
                            if other not in LOOPS
                        ]
                        if loopless:
                            base = medians.get(
                                (check.case, check.baseline, loopless[0], check.unit)
                            )
                    if not base:
                        continue
                    value /= base
                verdicts.append(target.meets(value))
                shown = (
                    f"{value:.2f}x"
                    if check.baseline is not None
                    else f"{format_value(value)} {target.unit}"
                )
                measured.append(f"{shown} {loop}")
            if measured:
                prefix = f"{check.label}: " if check.label else ""
                parts.append(prefix + ", ".join(measured))
        if not verdicts:
            standings.append(Standing(target, "not measured", "not measured"))
            continue
        standings.append(Standing(target, "; ".join(parts), "met" if all(verdicts) else "missed"))
    return standings


def format_targets(standings: Sequence[Standing]) -> str:
    """The targets as a Markdown table."""
    lines = ["| figure | target | now (median ratio per loop) | status |", "|---|---|---|---|"]
    for standing in standings:
        lines.append(
            f"| {standing.target.figure} | {standing.target.goal} | {standing.now} "
            f"| {standing.status} |"
        )
    return "\n".join(lines)
