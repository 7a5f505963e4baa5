"""The benchmark harness: a quick run end to end, and the rules that keep its figures honest
(repeats interleaved with their baselines, medians, fresh paths, raw baselines on the journals'
own formats, interleaved histories, counters that count, targets computed from the records)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as cli
from benchmarks import persist, replay
from benchmarks._common import Deposited
from benchmarks._counters import calls, gc_allocations
from benchmarks._harness import MEMORY_UNITS, Bench, Record, Result
from benchmarks._ours_journal import history, prepare, serializer
from benchmarks._progress import Progress
from benchmarks._report import write_results
from benchmarks._targets import TARGETS, evaluate
from persistence.journal import FileJournal, Journal, SqliteJournal

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_KEYS = {
    "case",
    "variant",
    "loop",
    "n",
    "value",
    "unit",
    "baseline",
    "baseline_value",
    "ratio",
    "min",
    "max",
    "runs",
}
GROUPS = ("mailbox", "persist", "replay", "postgres", "cluster")


@pytest.mark.slow
@pytest.mark.timeout(240)  # the cluster group starts node processes
def test_quick_run_of_all_cases_exits_0_and_writes_medians_of_three_interleaved_runs(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "all",
            "--quick",
            "--json",
            str(out),
            "--scratch",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    records = document["records"]
    assert records
    for record in records:
        assert record.keys() >= REQUIRED_KEYS, record
    measured = [r for r in records if r["value"] is not None]
    assert {r["case"].split(".")[0] for r in measured} == set(GROUPS)
    assert {r["loop"] for r in measured} >= {"asyncio", "uvloop"}
    unmeasured = [r for r in records if r["value"] is None]
    assert {r["unit"] for r in unmeasured} <= MEMORY_UNITS, "a variant did not run"
    assert all(r["note"].startswith("not measured: memory needs") for r in unmeasured)
    for record in measured:
        assert len(record["runs"]) == 3, record
        assert record["value"] == statistics.median(record["runs"])
        assert record["min"] == min(record["runs"])
        assert record["max"] == max(record["runs"])
        if record["unit"].endswith("/s"):
            assert record["value"] > 0, record
        if record["baseline"] == record["variant"]:
            assert record["ratio"] == 1.0
        elif record["ratio"] is not None:
            assert record["ratio"] == pytest.approx(record["value"] / record["baseline_value"])
    assert [t["figure"] for t in document["targets"]] == [t.figure for t in TARGETS]
    unmeasured_targets = [t["figure"] for t in document["targets"] if t["status"] == "not measured"]
    assert unmeasured_targets == ["idle actor"]  # memory: only with a fresh process per run
    machine = document["run"]["machine"]
    assert machine["cpu"]
    assert machine["python"] == sys.version.split()[0]
    assert document["run"]["repeats"] == 3
    assert "case" in completed.stdout.splitlines()[0]
    assert "| figure | target |" in completed.stdout


# -- repeats, interleaving, medians, fresh paths ----------------------------------------------

CALLS: list[tuple[str, int]] = []


def _variant(n: int, label: str, values: list[float]) -> Result:
    CALLS.append((label, n))
    return {"ops/s": values[sum(1 for called, _ in CALLS if called == label) - 1]}


def _bench(tmp_path: Path, repeats: int) -> Bench:
    return Bench("test.case", False, ("sync",), tmp_path, 60.0, Progress(), repeats=repeats)


def test_every_repetition_runs_each_variant_once_starting_at_another_variant(
    tmp_path: Path,
) -> None:
    CALLS.clear()
    bench = _bench(tmp_path, repeats=4)
    bench.variant("base", _variant, n=1, loop="sync", label="base", values=[10, 30, 20, 40])
    bench.variant("a", _variant, n=1, loop="sync", baselines=["base"], label="a", values=[1] * 4)
    bench.variant("b", _variant, n=1, loop="sync", baselines=["base"], label="b", values=[2] * 4)
    bench.run()
    assert [name for name, _ in CALLS] == [
        *("base", "a", "b"),
        *("a", "b", "base"),
        *("b", "base", "a"),
        *("base", "a", "b"),
    ]


def test_a_figure_is_the_median_of_its_runs_and_its_ratio_a_ratio_of_medians(
    tmp_path: Path,
) -> None:
    CALLS.clear()
    bench = _bench(tmp_path, repeats=5)
    bench.variant("base", _variant, n=1, loop="sync", label="base", values=[10, 50, 20, 40, 30])
    bench.variant(
        "ours", _variant, n=1, loop="sync", baselines=["base"], label="ours", values=[9, 1, 6, 3, 5]
    )
    bench.run()
    base, ours = bench.records()
    assert (base.value, base.min, base.max, base.runs) == (30, 10, 50, (10, 50, 20, 40, 30))
    assert (ours.value, ours.min, ours.max) == (5, 1, 9)
    assert ours.baseline_value == 30
    assert ours.ratio == pytest.approx(5 / 30)


def _grown(n: int) -> Result:
    return {"us/actor": 4.0, "B/actor": 0.0}


def test_memory_measured_inside_a_shared_process_is_reported_as_not_measured(
    tmp_path: Path,
) -> None:
    """RSS grown in a process that ran other variants is not a figure: no "0 B/actor, met"."""
    bench = _bench(tmp_path, repeats=3)  # isolation "none", as in a --quick run
    bench.variant("spawn", _grown, n=1, loop="sync", memory=True)
    bench.run()
    by_unit = {record.unit: record for record in bench.records()}
    assert by_unit["us/actor"].value == 4.0
    assert by_unit["B/actor"].value is None
    assert by_unit["B/actor"].note.startswith("not measured: memory needs a fresh process")


def _touch(n: int, path: str, seen: list[str]) -> Result:
    assert not Path(path).exists()
    Path(path).write_text("x", encoding="utf-8")
    Path(f"{path}-wal").write_text("x", encoding="utf-8")
    seen.append(path)
    return {"ops/s": 1.0}


def test_every_run_gets_a_fresh_scratch_path_removed_after_it(tmp_path: Path) -> None:
    seen: list[str] = []
    bench = _bench(tmp_path, repeats=3)
    bench.variant("touch", _touch, n=1, loop="sync", path=bench.fresh("db"), seen=seen)
    bench.run()
    assert len(set(seen)) == 3
    assert list(tmp_path.iterdir()) == []


def _fails(n: int) -> Result:
    raise RuntimeError("disk full")


def test_a_failing_variant_is_reported_once_and_not_run_again(tmp_path: Path) -> None:
    CALLS.clear()
    bench = _bench(tmp_path, repeats=3)
    bench.variant("broken", _fails, n=1, loop="sync")
    bench.variant("fine", _variant, n=1, loop="sync", label="fine", values=[1, 2, 3])
    bench.run()
    broken, fine = bench.records()
    assert bench.failures == 1
    assert (broken.value, broken.note) == (None, "failed: RuntimeError: disk full")
    assert fine.runs == (1, 2, 3)


def test_a_variant_run_in_a_fresh_process_reports_its_values(tmp_path: Path) -> None:
    bench = Bench(
        "mailbox.ask", False, ("asyncio",), tmp_path, 60.0, Progress(), 1, isolation="all"
    )
    bench.variant("call_soon", "benchmarks.mailbox:ask_call_soon", n=100, loop="asyncio")
    bench.run()
    [record] = bench.records()
    assert record.unit == "round trips/s"
    assert record.value is not None
    assert record.value > 0


# -- raw baselines on the journals' own formats -----------------------------------------------


async def _stored(journal: Journal, ids: list[str]) -> dict[str, list[tuple[int, Any, str]]]:
    codec = serializer()
    stored: dict[str, list[tuple[int, Any, str]]] = {}
    try:
        for persistence_id in ids:
            stored[persistence_id] = [
                (
                    record.sequence_nr,
                    codec.decode_one(record.manifest, record.payload),
                    record.writer_id,
                )
                async for page in journal.replay(persistence_id)
                for record in page
            ]
    finally:
        await journal.close()
    return stored


async def test_the_raw_sqlite_baseline_writes_rows_the_sqlite_journal_replays(
    tmp_path: Path,
) -> None:
    path = tmp_path / "raw.db"
    await asyncio.to_thread(
        persist.raw_sqlite_rounds, 6, path=str(path), synchronous="full", actors=3
    )
    stored = await _stored(SqliteJournal(path), ["acc-0", "acc-1", "acc-2"])
    assert stored["acc-2"] == [(1, Deposited(1), "bench"), (2, Deposited(2), "bench")]
    assert len(stored["acc-0"]) == len(stored["acc-1"]) == 2
    with sqlite3.connect(path) as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_the_raw_file_baselines_write_records_the_file_journal_replays(
    tmp_path: Path,
) -> None:
    rounds, one = tmp_path / "rounds", tmp_path / "one"
    await asyncio.to_thread(persist.raw_file_rounds, 6, path=str(rounds), durable=True, actors=3)
    await asyncio.to_thread(persist.raw_file_one, 3, path=str(one), durable=False)
    journal = FileJournal(rounds)
    assert await journal.highest_ordering() == 6
    stored = await _stored(journal, ["acc-0", "acc-1", "acc-2"])
    assert stored["acc-1"] == [(1, Deposited(1), "bench"), (2, Deposited(2), "bench")]
    stored = await _stored(FileJournal(one), ["acc-0"])
    assert [event for _, event, _ in stored["acc-0"]] == [Deposited(1), Deposited(2), Deposited(3)]


# -- replay data sets -------------------------------------------------------------------------


def test_histories_are_written_interleaved_as_running_actors_write_them() -> None:
    assert list(history(actors=2, per=2, background=0)) == [
        ("acc-0", 1),
        ("acc-1", 1),
        ("acc-0", 2),
        ("acc-1", 2),
    ]
    assert list(history(actors=1, per=3, background=2)) == [
        ("acc-0", 1),
        ("bg-0", 1),
        ("acc-0", 2),
        ("bg-1", 1),
        ("acc-0", 3),
        ("bg-0", 2),
    ]


async def test_a_stored_history_is_interleaved_in_the_journal_and_the_raw_replays_read_it(
    tmp_path: Path,
) -> None:
    sqlite_path, file_path = tmp_path / "h.db", tmp_path / "h"
    await prepare(200, "sqlite", str(sqlite_path), actors=1, background=3, snapshot_before_end=50)
    await prepare(200, "file", str(file_path), actors=1, background=3, snapshot_before_end=50)
    with sqlite3.connect(sqlite_path) as conn:
        ids = [
            pid for (pid,) in conn.execute("SELECT persistence_id FROM journal ORDER BY ordering")
        ]
    assert ids[:6] == ["acc-0", "bg-0", "acc-0", "bg-1", "acc-0", "bg-2"]
    assert len(ids) == 400
    index = tmp_path / "h.raw-index"
    await asyncio.to_thread(replay.raw_file_index, 200, path=str(index), journal=str(file_path))
    for snapshot_before_end, unit in ((0, "events/s"), (50, "recovery ms")):
        from_sqlite = await asyncio.to_thread(
            replay.raw_sqlite_replay,
            200,
            path=str(sqlite_path),
            actors=1,
            snapshot_before_end=snapshot_before_end,
        )
        from_file = await asyncio.to_thread(
            replay.raw_file_replay,
            200,
            path=str(file_path),
            index=str(index),
            actors=1,
            snapshot_before_end=snapshot_before_end,
        )
        assert from_sqlite[unit] > 0
        assert from_file[unit] > 0


# -- counters ---------------------------------------------------------------------------------


class _Tracked:
    """A plain class: its instances are GC-tracked."""


def test_the_gc_allocation_counter_counts_allocations_that_were_freed_again() -> None:
    with gc_allocations() as counted:
        for _ in range(1000):
            _Tracked()
    assert 1000 <= counted.value <= 1010


def _nothing() -> None:
    pass


def test_the_call_counter_counts_python_and_c_calls() -> None:
    with calls() as counted:
        for _ in range(1000):
            _nothing()
            len("")
    assert 2000 <= counted.value <= 2010


# -- targets and the report -------------------------------------------------------------------


def _record(variant: str, loop: str, value: float, case: str = "mailbox.tell") -> Record:
    unit = "msg/s"
    return Record(case, variant, loop, 1, value, unit, variant, value, 1.0, value, value, (value,))


def test_targets_are_ratios_of_medians_met_only_when_met_on_every_loop() -> None:
    records = [
        _record("naive (Queue+task)", "asyncio", 100.0),
        _record("actorsys", "asyncio", 210.0),
        _record("naive (Queue+task)", "uvloop", 100.0),
        _record("actorsys", "uvloop", 190.0),
        _record("bare deque drain", "asyncio", 300.0),
    ]
    standings = {standing.target.figure: standing for standing in evaluate(records)}
    naive = standings["tell vs naive asyncio actor"]
    assert (naive.now, naive.status) == ("2.10x asyncio, 1.90x uvloop", "missed")
    bare = standings["tell vs bare deque drain, same handler"]
    assert (bare.now, bare.status) == ("0.70x asyncio", "met")
    assert standings["idle actor"].status == "not measured"


def test_results_md_names_the_command_the_commit_the_runs_and_the_targets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "RESULTS.md"
    info = {
        "command": "python -m benchmarks all --results benchmarks/RESULTS.md",
        "started": "2026-01-01T00:00:00+00:00",
        "quick": False,
        "repeats": 5,
        "isolation": "all",
        "loops": ["asyncio _UnixSelectorEventLoop"],
        "uncommitted_changes": [],
        "machine": {
            "cpu": "CPU",
            "cores_logical": 2,
            "cores_physical": 2,
            "memory_gib": 1.0,
            "os": "OS",
            "python": "3.11.7",
            "python_implementation": "CPython",
            "sqlite": "3.40.1",
            "scratch_filesystem": "ext4",
            "packages": {},
            "commit": "abc1234",
        },
    }
    write_results(path, info, [], [_record("actorsys", "asyncio", 210.0)])
    text = path.read_text(encoding="utf-8")
    assert "    python -m benchmarks all --results benchmarks/RESULTS.md\n" in text
    assert "| commit | abc1234 |" in text
    assert "full, 5 runs per variant, every run in a fresh process" in text
    assert "| tell vs naive asyncio actor | >= 2x | not measured | not measured |" in text


def test_results_md_is_not_written_from_a_tree_with_uncommitted_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "uncommitted_changes", lambda ignore: ["actorsys/_cell.py"])
    results = tmp_path / "RESULTS.md"
    assert cli.main(["mailbox", "--results", str(results)]) == 2
    assert not results.exists()
    assert (
        f"cannot write {results}: it must be measured at the commit it names, and these files "
        "have uncommitted changes: actorsys/_cell.py; commit them first (or pass --allow-dirty: "
        "the report then lists them)"
    ) in capsys.readouterr().err
