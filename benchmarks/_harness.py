"""Running cases: every variant several times, interleaved, in-process or in fresh processes.

A *case* is a function taking a :class:`Bench`; it declares its variants with
:meth:`Bench.variant` (baselines, peer libraries, actorsys variants, each on a loop) and may
prepare stored data sets first (:meth:`Bench.dataset`, not measured). A *variant* is a function
``fn(n, **kwargs) -> {unit: value}``: ``async`` ones run on a fresh event loop of the given kind
(``asyncio.Runner(loop_factory=...)``), plain ones run as they are and are labelled ``sync`` or
``threads``. Variants may be given as ``"module:function"`` strings, imported only when they run:
a variant whose import fails (actorsys or a peer missing) is reported as ``unavailable: <reason>``
and the run goes on. A variant that raises anything else is reported as ``failed`` and makes the
run exit with status 1.

Once a case has declared its variants they run ``repeats`` times, interleaved: repetition ``r``
runs every variant once, starting at the ``r``-th one (a rotation), so no variant (and no
baseline) always runs first, right after a data set was written, or on a cold cache. Each run
gets fresh scratch paths (:meth:`Bench.fresh`), removed after it. With ``isolation="all"`` every
run is its own ``python`` process (what pyperf does with its workers); with ``"memory"`` only
the variants that measure memory are; with ``"none"`` nothing is.

A figure is reported as the median of its runs, with their minimum and maximum. Ratios are
``median / baseline median`` for the same unit; a variant is compared with each of its baselines,
on the same loop when the baseline ran there, otherwise with the baseline's first declaration.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import logging
import re
import shutil
import statistics
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import structlog
import uvloop

from benchmarks._isolation import run_isolated
from benchmarks._progress import Progress, describe

Result = dict[str, float]
"""What a variant returns: measured values keyed by unit, e.g. ``{"msg/s": 812345.0}``."""

VariantFn = Callable[..., Awaitable[Result]] | Callable[..., Result]
Target = VariantFn | str
Isolation = Literal["all", "memory", "none"]

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def reason(exc: BaseException) -> str:
    """``exc`` as one short line, without the absolute paths import errors carry."""
    text = re.sub(r" \((?:/|[A-Za-z]:\\)[^)]*\)", "", str(exc))
    return text.splitlines()[0] if text else type(exc).__name__


class Unavailable(Exception):
    """A variant cannot run here (a package or an API it needs is missing)."""


class VariantFailed(Exception):
    """A variant run in a subprocess raised; the message carries its traceback's last line."""


@dataclass(frozen=True, slots=True)
class Record:
    """One reported figure, as written to JSON: the median of ``runs`` next to one baseline."""

    case: str
    variant: str
    loop: str
    n: int
    value: float | None
    """The median of the runs' values."""
    unit: str
    baseline: str
    baseline_value: float | None
    """The baseline's median."""
    ratio: float | None
    """``value / baseline_value``: a ratio of medians."""
    min: float | None = None
    max: float | None = None
    runs: tuple[float, ...] = ()
    """Every run's value, in the order the runs were made."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Fresh:
    """A scratch path that every run of a variant gets anew (see :meth:`Bench.fresh`)."""

    name: str


MEMORY_UNITS = frozenset({"B/actor", "peak MiB"})
"""Units measured from the process's memory: only meaningful from a fresh process per run."""


@dataclass(slots=True)
class Variant:
    """One declared variant of a case and what its runs measured."""

    name: str
    target: Target
    n: int
    loop: str
    baselines: tuple[str, ...]
    isolated: bool
    kwargs: dict[str, Any]
    note: str = ""
    runs: list[Result] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.loop:<8} {self.name} n={self.n:,}"

    def medians(self) -> dict[str, tuple[float, float, float, tuple[float, ...]]]:
        """Per unit: median, min, max and every run's value (units every run reported)."""
        units = [unit for unit in self.runs[0] if all(unit in run for run in self.runs)]
        out = {}
        for unit in units:
            values = tuple(run[unit] for run in self.runs)
            out[unit] = (statistics.median(values), min(values), max(values), values)
        return out


def resolve(target: Target) -> VariantFn:
    """The variant function named by ``target`` (``"package.module:function"``) or itself."""
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return cast(VariantFn, getattr(module, attribute))


def target_name(target: Target) -> str:
    """``target`` as a ``"module:function"`` string a subprocess can import."""
    if isinstance(target, str):
        return target
    return f"{target.__module__}:{target.__qualname__}"


def invoke(target: Target, loop: str, n: int, kwargs: Mapping[str, Any], timeout: float) -> Result:
    """Run one variant to completion: ``async`` ones on a fresh loop of kind ``loop``."""
    fn = resolve(target)
    if inspect.iscoroutinefunction(fn):
        if loop not in LOOPS:
            raise ValueError(f"async variant {target_name(target)} needs a loop, got {loop!r}")

        async def bounded() -> Result:
            async with asyncio.timeout(timeout):
                return await cast(Awaitable[Result], fn(n, **kwargs))

        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            return runner.run(bounded())
    return cast(Result, fn(n, **kwargs))


def quiet_logging() -> None:
    """Route structlog (the library's logs) to stderr, warnings and errors only."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def rotations(count: int, repeats: int) -> Iterator[list[int]]:
    """The order of each repetition: ``0..count-1`` rotated to start at the repetition's number."""
    for repeat in range(repeats):
        start = repeat % count if count else 0
        yield [*range(start, count), *range(start)]


@dataclass
class Bench:
    """What a case function gets: sizes, scratch space, data sets and :meth:`variant`."""

    case: str
    quick: bool
    loops: tuple[str, ...]
    scratch: Path
    timeout: float
    progress: Progress
    repeats: int = 5
    isolation: Isolation = "none"
    shared: Path | None = None
    failures: int = 0
    variants: list[Variant] = field(default_factory=list)
    _paths: int = 0
    _datasets: dict[str, str | None] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        """``full`` in a full run, ``quick`` with ``--quick``."""
        return quick if self.quick else full

    def fresh(self, name: str) -> Fresh:
        """A scratch path (file or directory) that each run of a variant gets new, and loses."""
        return Fresh(name)

    def dataset(
        self, name: str, target: Target, *, n: int, **kwargs: Any
    ) -> tuple[str, str | None]:
        """A stored data set shared by the cases of this run, prepared by ``target`` once.

        ``target(n, path=..., **kwargs)`` fills ``path``; returns the path and, when preparing
        it did not work, why (pass it as ``skip`` to the variants that need it).
        """
        root = self.shared if self.shared is not None else self.scratch
        path = root / name
        if name not in self._datasets:
            self._datasets[name] = self.prepare(name, target, n=n, path=str(path), **kwargs)
        return str(path), self._datasets[name]

    def prepare(self, label: str, target: Target, *, n: int, **kwargs: Any) -> str | None:
        """Run a setup step (not measured); ``None`` when it worked, else why it did not."""
        with self.progress.step(f"{self.case:<30} setup    {label} n={n:,}") as done:
            try:
                invoke(target, "asyncio", n, kwargs, self.timeout)
            except (ImportError, Unavailable) as exc:
                done(f"unavailable: {reason(exc)}")
                return f"unavailable: {reason(exc)}"
            except Exception as exc:
                self._fail(exc)
                done(f"failed: {type(exc).__name__}: {reason(exc)}")
                return f"setup failed: {type(exc).__name__}: {reason(exc)}"
            done("ready")
            return None

    def variant(
        self,
        name: str,
        target: Target,
        *,
        n: int,
        loop: str,
        baselines: Sequence[str] = (),
        memory: bool = False,
        skip: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Declare one variant; it runs :attr:`repeats` times once the case function returned.

        ``loop`` is a key of :data:`LOOPS` for ``async`` variants, a label (``sync``,
        ``threads``) otherwise. ``memory`` marks variants that measure memory: they run in a
        fresh process unless isolation is ``"none"`` (``kwargs`` then go as JSON). ``skip``
        records the variant as not run, with that reason. :class:`Fresh` values in ``kwargs``
        become a new path for every run.
        """
        isolated = self.isolation == "all" or (memory and self.isolation == "memory")
        variant = Variant(name, target, n, loop, tuple(baselines), isolated, kwargs)
        if skip is not None:
            variant.note = skip
        self.variants.append(variant)

    def run(self) -> None:
        """Run the declared variants :attr:`repeats` times each, interleaved (see the module)."""
        runnable = [variant for variant in self.variants if not variant.note]
        for repeat, order in enumerate(rotations(len(runnable), self.repeats), 1):
            for index in order:
                variant = runnable[index]
                if variant.note:  # failed or unavailable in an earlier repetition
                    continue
                self._run_once(variant, repeat)

    def _run_once(self, variant: Variant, repeat: int) -> None:
        label = f"{self.case:<30} {variant.label} [{repeat}/{self.repeats}]"
        with self.progress.step(label) as done:
            kwargs, made = self._materialize(variant.kwargs)
            try:
                if variant.isolated:
                    values = self._run_child(variant.target, variant.loop, variant.n, kwargs)
                else:
                    gc.collect()
                    values = invoke(variant.target, variant.loop, variant.n, kwargs, self.timeout)
            except (ImportError, Unavailable) as exc:
                variant.note = f"unavailable: {reason(exc)}"
                done(variant.note)
            except Exception as exc:
                self._fail(exc)
                variant.note = f"failed: {type(exc).__name__}: {reason(exc)}"
                done(variant.note)
            else:
                variant.runs.append(values)
                done(describe(values))
            finally:
                for path in made:
                    _remove(path)

    def _materialize(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], list[Path]]:
        out: dict[str, Any] = {}
        made: list[Path] = []
        for key, value in kwargs.items():
            if isinstance(value, Fresh):
                self._paths += 1
                path = self.scratch / f"{self._paths:04d}-{value.name}"
                made.append(path)
                out[key] = str(path)
            else:
                out[key] = value
        return out, made

    def records(self) -> list[Record]:
        """Every figure measured, each next to each of its baselines."""
        records: list[Record] = []
        for variant in self.variants:
            if variant.note or not variant.runs:
                records.append(
                    Record(
                        self.case,
                        variant.name,
                        variant.loop,
                        variant.n,
                        None,
                        "",
                        "",
                        None,
                        None,
                        note=variant.note or "not run",
                    )
                )
                continue
            for unit, (median, low, high, values) in variant.medians().items():
                if unit in MEMORY_UNITS and not variant.isolated:
                    # RSS grown inside a process that ran other variants says nothing
                    records.append(
                        Record(
                            self.case,
                            variant.name,
                            variant.loop,
                            variant.n,
                            None,
                            unit,
                            "",
                            None,
                            None,
                            note="not measured: memory needs a fresh process (--isolation memory)",
                        )
                    )
                    continue
                if not variant.baselines:
                    records.append(
                        Record(
                            self.case,
                            variant.name,
                            variant.loop,
                            variant.n,
                            median,
                            unit,
                            variant.name,
                            median,
                            1.0,
                            low,
                            high,
                            values,
                        )
                    )
                for name in variant.baselines:
                    records.append(self._compare(variant, unit, median, low, high, values, name))
        return records

    def _compare(
        self,
        variant: Variant,
        unit: str,
        median: float,
        low: float,
        high: float,
        values: tuple[float, ...],
        name: str,
    ) -> Record:
        reference = self._find(name, variant.loop)
        label = name
        if reference is not None and reference.loop != variant.loop:
            label = f"{name} @{reference.loop}"
        base = None
        if reference is not None and reference.runs and not reference.note:
            stats = reference.medians().get(unit)
            base = None if stats is None else stats[0]
        ratio = median / base if base else None
        note = "baseline not measured" if base is None else "" if base else "baseline is 0"
        return Record(
            self.case,
            variant.name,
            variant.loop,
            variant.n,
            median,
            unit,
            label,
            base,
            ratio,
            low,
            high,
            values,
            note,
        )

    def _find(self, name: str, loop: str) -> Variant | None:
        same_name = [v for v in self.variants if v.name == name]
        for variant in same_name:
            if variant.loop == loop:
                return variant
        return same_name[0] if same_name else None

    def _fail(self, exc: BaseException) -> None:
        self.failures += 1
        self.progress.write("\n")
        traceback.print_exception(exc, file=sys.stderr)

    def _run_child(self, target: Target, loop: str, n: int, kwargs: Mapping[str, Any]) -> Result:
        answer = run_isolated(target_name(target), loop, n, kwargs, self.timeout)
        if "unavailable" in answer:
            raise Unavailable(str(answer["unavailable"]))
        if "failed" in answer:
            raise VariantFailed(str(answer["failed"]))
        values = cast(Mapping[str, float], answer["values"])
        return {str(unit): float(value) for unit, value in values.items()}


def _remove(path: Path) -> None:
    """Delete a run's scratch path and what SQLite and the snapshot stores put beside it."""
    for candidate in [path, *path.parent.glob(f"{path.name}*")]:
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)


CaseFn = Callable[[Bench], None]


@dataclass(frozen=True, slots=True)
class Case:
    """A registered case: its group (module) and function."""

    group: str
    fn: CaseFn

    @property
    def name(self) -> str:
        return f"{self.group}.{self.fn.__name__}"

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.split("\n\n")[0].replace("\n", " ")


@dataclass
class RunOutcome:
    """All records of a run and how many variants failed."""

    records: list[Record]
    failures: int


def run_cases(
    cases: Sequence[Case],
    *,
    quick: bool,
    loops: tuple[str, ...],
    scratch: Path,
    progress: Progress,
    repeats: int,
    isolation: Isolation,
) -> RunOutcome:
    """Run ``cases`` in order, each in its own scratch directory (removed afterwards)."""
    records: list[Record] = []
    failures = 0
    timeout = 120.0 if quick else 3600.0
    shared = scratch / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    datasets: dict[str, str | None] = {}
    for number, case in enumerate(cases, 1):
        directory = scratch / case.name
        directory.mkdir(parents=True, exist_ok=True)
        bench = Bench(
            case.name,
            quick,
            loops,
            directory,
            timeout,
            progress,
            repeats=repeats,
            isolation=isolation,
            shared=shared,
            _datasets=datasets,
        )
        try:
            case.fn(bench)
            runnable = sum(1 for variant in bench.variants if not variant.note)
            progress.write(
                f"== {case.name} ({number}/{len(cases)}): {runnable} variants x {repeats} runs, "
                "interleaved\n"
            )
            bench.run()
        except Exception as exc:
            bench._fail(exc)
            note = f"failed: {type(exc).__name__}: {reason(exc)}"
            bench.variants.append(Variant("(case)", "-", 0, "-", (), False, {}, note))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        records.extend(bench.records())
        failures += bench.failures
    return RunOutcome(records, failures)
