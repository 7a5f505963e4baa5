"""Reporting: the machine the run was on, the table, the JSON file and RESULTS.md."""

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

_COLUMNS = ("case", "loop", "variant", "n", "value", "unit", "ratio", "baseline")
_READING = (
    "ratio = value / baseline value, measured in the same run. For rates (…/s) higher is "
    "better; for times (us/…) and memory (B/…, MiB) lower is better. A row whose baseline is "
    "itself is a reference (ratio 1). `sync` rows run without an event loop, `threads` rows "
    "on OS threads; `@loop` names the loop a baseline ran on when it is not the row's own."
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


def _git_commit() -> str:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip()


def _row(record: Record) -> tuple[str, ...]:
    if record.value is None:
        return (record.case, record.loop, record.variant, f"{record.n:,}", "-", "", "", record.note)
    ratio = "-" if record.ratio is None else f"{record.ratio:.2f}"
    baseline = record.baseline if not record.note else f"{record.baseline} ({record.note})"
    return (
        record.case,
        record.loop,
        record.variant,
        f"{record.n:,}",
        format_value(record.value),
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
    right = {3, 4, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
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
    machine: dict[str, Any], *, quick: bool, loops: Sequence[str], command: str
) -> dict[str, Any]:
    """The header stored with the records."""
    return {
        "command": command,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "loops": [machine["loops"][loop] for loop in loops],
        "machine": machine,
    }


def write_json(path: Path, info: dict[str, Any], records: Sequence[Record]) -> None:
    """``{"run": info, "records": [...]}`` with one object per record."""
    document = {"run": info, "records": [asdict(record) for record in records]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def write_results(
    path: Path, info: dict[str, Any], cases: Sequence[Case], records: Sequence[Record]
) -> None:
    """RESULTS.md: how the run was made, on what, and one table per case."""
    machine = info["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Regenerate from the repository root, with the `bench` extra installed:",
        "",
        f"    {info['command']}",
        "",
        "| | |",
        "|---|---|",
        f"| date (UTC) | {info['started']} |",
        f"| commit | {machine['commit']} |",
        f"| mode | {'quick' if info['quick'] else 'full'} |",
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
        _READING,
        "",
    ]
    targets = Path(__file__).with_name("TARGETS.md")
    if targets.exists():
        lines += [targets.read_text(encoding="utf-8").rstrip(), ""]
    for case in cases:
        rows = [_row(record) for record in records if record.case == case.name]
        if not rows:
            continue
        lines += [f"## {case.name}", "", case.summary, ""]
        lines.append("| " + " | ".join(_COLUMNS[1:]) + " |")
        lines.append(
            "|"
            + "|".join("---:" if i in {2, 3, 5} else "---" for i in range(len(_COLUMNS) - 1))
            + "|"
        )
        lines += [
            "| " + " | ".join(cell.replace("|", "\\|") for cell in row[1:]) + " |" for row in rows
        ]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
