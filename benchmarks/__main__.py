"""``python -m benchmarks {mailbox,persist,replay,postgres,cluster,all} [--quick] [--json PATH]
[--results PATH]``.

Prints one table and the targets on stdout (progress goes to stderr), optionally writes the
records as JSON and the full report as Markdown (``benchmarks/RESULTS.md``). Exits 1 when a
variant failed, 2 when asked to write the report from a working tree with uncommitted changes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks import cluster, mailbox, persist, postgres, replay
from benchmarks._harness import LOOPS, Case, Isolation, quiet_logging, run_cases
from benchmarks._progress import Progress
from benchmarks._report import (
    format_table,
    machine_info,
    run_info,
    uncommitted_changes,
    write_json,
    write_results,
)
from benchmarks._targets import evaluate, format_targets

GROUPS = {
    "mailbox": mailbox.CASES,
    "persist": persist.CASES,
    "replay": replay.CASES,
    "postgres": postgres.CASES,
    "cluster": cluster.CASES,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of actorsys next to baselines and peers measured in the same run.",
    )
    parser.add_argument("group", choices=[*GROUPS, "all"], help="which cases to run")
    parser.add_argument(
        "--quick", action="store_true", help="scale every case down to seconds (CI smoke runs)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the records as JSON")
    parser.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        help="write the Markdown report (e.g. benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--loop",
        choices=[*LOOPS, "both"],
        default="both",
        help="run the loop-bound variants on this loop only (default: both)",
    )
    parser.add_argument(
        "--only",
        metavar="TEXT",
        help="run only the cases whose name contains TEXT (e.g. replay.one)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="runs per variant, interleaved (default: 5; 3 with --quick)",
    )
    parser.add_argument(
        "--isolation",
        choices=["all", "memory", "none"],
        help="which runs get a fresh process: every run (default), only those measuring "
        "memory, or none (default with --quick)",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write --results even with uncommitted changes (the report lists them)",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        metavar="DIR",
        help="where journals and data files go (default: the system temp dir)",
    )
    return parser


def _command(args: argparse.Namespace) -> str:
    """The command that makes this report, without machine-specific paths."""
    parts = ["python -m benchmarks", args.group]
    if args.quick:
        parts.append("--quick")
    if args.repeats is not None:
        parts += ["--repeats", str(args.repeats)]
    if args.isolation is not None:
        parts += ["--isolation", args.isolation]
    if args.loop != "both":
        parts += ["--loop", args.loop]
    if args.only:
        parts += ["--only", args.only]
    if args.results is not None:
        results = args.results.resolve()
        root = Path(__file__).resolve().parent.parent
        shown = results.relative_to(root) if results.is_relative_to(root) else results.name
        parts += ["--results", str(shown)]
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else 3 if args.quick else 5
    if repeats < 1:
        parser.error(f"--repeats must be at least 1, got {repeats}")
    isolation: Isolation = args.isolation or ("none" if args.quick else "all")
    uncommitted: list[str] = []
    if args.results is not None:
        uncommitted = uncommitted_changes(ignore=args.results)
        if uncommitted and not args.allow_dirty:
            print(
                f"cannot write {args.results}: it must be measured at the commit it names, and "
                f"these files have uncommitted changes: {', '.join(uncommitted)}; commit them "
                "first (or pass --allow-dirty: the report then lists them)",
                file=sys.stderr,
            )
            return 2
    groups = list(GROUPS) if args.group == "all" else [args.group]
    cases = [Case(group, fn) for group in groups for fn in GROUPS[group]]
    if args.only:
        cases = [case for case in cases if args.only in case.name]
    loops = tuple(LOOPS) if args.loop == "both" else (args.loop,)
    command = _command(args)
    quiet_logging()
    progress = Progress()
    with tempfile.TemporaryDirectory(prefix="actorsys-bench-", dir=args.scratch) as scratch:
        machine = machine_info(Path(scratch))
        progress.write(
            f"machine: {machine['cpu']}, {machine['cores_logical']} cores, "
            f"Python {machine['python']}, scratch on {machine['scratch_filesystem']}; "
            f"{repeats} runs per variant, isolation {isolation}\n"
        )
        outcome = run_cases(
            cases,
            quick=args.quick,
            loops=loops,
            scratch=Path(scratch),
            progress=progress,
            repeats=repeats,
            isolation=isolation,
        )
    info = run_info(
        machine,
        quick=args.quick,
        loops=loops,
        command=command,
        repeats=repeats,
        isolation=isolation,
        uncommitted=uncommitted,
    )
    print(format_table(outcome.records))
    print()
    print(format_targets(evaluate(outcome.records)))
    if args.json is not None:
        write_json(args.json, info, outcome.records)
    if args.results is not None:
        write_results(args.results, info, cases, outcome.records)
    if outcome.failures:
        progress.write(f"{outcome.failures} variant(s) failed; see the tracebacks above\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
