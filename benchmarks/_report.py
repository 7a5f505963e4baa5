"""Reporting: the machine the run was on, the table, the targets, the JSON file and RESULTS.md."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

from benchmarks._harness import Case, Record
from benchmarks._progress import format_value
from benchmarks._targets import evaluate, format_targets

_COLUMNS = ("case", "loop", "variant", "n", "median", "min - max", "unit", "ratio", "baseline")
_RIGHT = {3, 4, 5, 7}
_READING = (
    "Every variant ran {repeats} times, interleaved with its baselines (each repetition starts "
    "at another variant); median = the median of its runs, min - max their spread. ratio = "
    "median / the baseline's median, both from this run. For rates (…/s) higher is better; for "
    "times (us/…, ms), memory (B/…, MiB) and counts (…/event) lower is better. A row whose "
    "baseline is itself is a reference (ratio 1). `sync` rows run without an event loop, "
    "`threads` rows on OS threads; `@loop` names the loop a baseline ran on when it is not the "
    "row's own."
)


def machine_info(scratch: Path) -> dict[str, Any]:
    """What the results depend on: CPU, cores, memory, OS, Python, event loops, versions."""
    loop = asyncio.new_event_loop()
    loop_class = type(loop).__name__
    loop.close()
    return {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "loops": {"asyncio": f"asyncio {loop_class}", "uvloop": f"uvloop {_version('uvloop')}"},
        "sqlite": sqlite3.sqlite_version,
        "scratch_filesystem": _filesystem(scratch),
        "packages": {name: _version(name) for name in ("msgpack", "pykka", "eventsourcing")},
        "commit": _git_commit(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _filesystem(path: Path) -> str:
    best = ""
    fstype = "unknown"
    resolved = str(path.resolve())
    for partition in psutil.disk_partitions(all=True):
        mount = partition.mountpoint
        if resolved.startswith(mount) and len(mount) > len(best):
            best, fstype = mount, partition.fstype
    return fstype


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10, cwd=_ROOT
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout


def _git_commit() -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    return commit.strip() if commit else "unknown"


def uncommitted_changes(ignore: Path | None = None) -> list[str]:
    """The tracked files of the repository that differ from its commit (``ignore`` aside)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    if not status:
        return []
    ignored = None
    if ignore is not None and ignore.resolve().is_relative_to(_ROOT):
        ignored = ignore.resolve().relative_to(_ROOT).as_posix()
    changed = [line[3:].split(" -> ")[-1] for line in status.splitlines() if line.strip()]
    return [path for path in changed if path != ignored]


def _row(record: Record) -> tuple[str, ...]:
    if record.value is None:
        return (
            record.case,
            record.loop,
            record.variant,
            f"{record.n:,}",
            "-",
            "",
            "",
            "",
            record.note,
        )
    ratio = "-" if record.ratio is None else f"{record.ratio:.2f}"
    baseline = record.baseline if not record.note else f"{record.baseline} ({record.note})"
    spread = f"{format_value(record.min)} - {format_value(record.max)}"
    return (
        record.case,
        record.loop,
        record.variant,
        f"{record.n:,}",
        format_value(record.value),
        spread,
        record.unit,
        ratio,
        baseline,
    )


def format_table(records: Sequence[Record]) -> str:
    """The records as an aligned plain-text table, a blank line between cases."""
    rows = [_row(record) for record in records]
    widths = [
        max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(_COLUMNS)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in _RIGHT else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(_COLUMNS), line(["-" * width for width in widths])]
    previous = None
    for record, row in zip(records, rows, strict=True):
        if previous is not None and record.case != previous:
            out.append("")
        previous = record.case
        out.append(line(row))
    return "\n".join(out)


def run_info(
    machine: dict[str, Any],
    *,
    quick: bool,
    loops: Sequence[str],
    command: str,
    repeats: int,
    isolation: str,
    uncommitted: Sequence[str] = (),
) -> dict[str, Any]:
    """The header stored with the records."""
    return {
        "command": command,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "repeats": repeats,
        "isolation": isolation,
        "loops": [machine["loops"][loop] for loop in loops],
        "uncommitted_changes": list(uncommitted),
        "machine": machine,
    }


def write_json(path: Path, info: dict[str, Any], records: Sequence[Record]) -> None:
    """``{"run": info, "records": [...], "targets": [...]}``, one object per record/target."""
    document = {
        "run": info,
        "records": [asdict(record) for record in records],
        "targets": [
            {"figure": s.target.figure, "target": s.target.goal, "now": s.now, "status": s.status}
            for s in evaluate(records)
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


_ISOLATION = {
    "all": "every run in a fresh process",
    "memory": "memory figures in a fresh process, the rest in the parent",
    "none": "every run in one process",
}


def write_results(
    path: Path, info: dict[str, Any], cases: Sequence[Case], records: Sequence[Record]
) -> None:
    """RESULTS.md: how the run was made, on what, the targets, and one table per case."""
    machine = info["machine"]
    commit = machine["commit"]
    if info["uncommitted_changes"]:
        commit += " with uncommitted changes to " + ", ".join(
            f"`{name}`" for name in info["uncommitted_changes"]
        )
    lines = [
        "# Benchmark results",
        "",
        "Generated by this command, run from the repository root with the `bench` extra "
        "installed (`make bench ARGS=...` runs `python -m benchmarks all ...`); it refuses to "
        "write this file from a working tree with uncommitted changes, so the commit below is "
        "what was measured:",
        "",
        f"    {info['command']}",
        "",
        "| | |",
        "|---|---|",
        f"| date (UTC) | {info['started']} |",
        f"| commit | {commit} |",
        f"| mode | {'quick' if info['quick'] else 'full'}, {info['repeats']} runs per variant, "
        f"{_ISOLATION[info['isolation']]} |",
        f"| CPU | {machine['cpu']} |",
        f"| cores | {machine['cores_logical']} logical, {machine['cores_physical']} physical |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| OS | {machine['os']} |",
        f"| Python | {machine['python_implementation']} {machine['python']} |",
        f"| event loops | {', '.join(info['loops'])} |",
        f"| SQLite | {machine['sqlite']} |",
        f"| scratch filesystem | {machine['scratch_filesystem']} |",
        "| peers | " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()) + " |",
        "",
        _READING.format(repeats=info["repeats"]),
        "",
        "## Targets",
        "",
        "Computed from the records below (see `benchmarks/_targets.py` for which rows each "
        "target reads); a target is met when it is met on every loop.",
        "",
        format_targets(evaluate(records)),
        "",
    ]
    for case in cases:
        rows = [_row(record) for record in records if record.case == case.name]
        if not rows:
            continue
        lines += [f"## {case.name}", "", case.summary, ""]
        lines.append("| " + " | ".join(_COLUMNS[1:]) + " |")
        lines.append(
            "|"
            + "|".join("---:" if i + 1 in _RIGHT else "---" for i in range(len(_COLUMNS) - 1))
            + "|"
        )
        lines += [
            "| " + " | ".join(cell.replace("|", "\\|") for cell in row[1:]) + " |" for row in rows
        ]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
