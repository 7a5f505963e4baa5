"""Running cases: every variant on each event loop, in-process or in a fresh subprocess.

A *case* is a function taking a :class:`Bench`; it calls :meth:`Bench.measure` once per variant
(a baseline, a peer library, an actorsys variant) and loop. A *variant* is a function
``fn(n, **kwargs) -> {unit: value}``: ``async`` ones run on a fresh event loop of the given kind
(``asyncio.Runner(loop_factory=...)``), plain ones run as they are and are labelled ``sync`` or
``threads``. Variants may be given as ``"module:function"`` strings, imported only when they run:
a variant whose import fails (actorsys or a peer missing) is reported as ``unavailable: <reason>``
and the run goes on. A variant that raises anything else is reported as ``failed`` and makes the
run exit with status 1.

Ratios are ``value / baseline_value`` for the same unit; a variant is compared with each of its
baselines, on the same loop when the baseline ran there, otherwise with the baseline's first run.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import logging
import re
import shutil
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import structlog
import uvloop

from benchmarks._isolation import run_isolated
from benchmarks._progress import Progress, describe

Result = dict[str, float]
"""What a variant returns: measured values keyed by unit, e.g. ``{"msg/s": 812345.0}``."""

VariantFn = Callable[..., Awaitable[Result]] | Callable[..., Result]
Target = VariantFn | str

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
    """One reported figure, as written to JSON."""

    case: str
    variant: str
    loop: str
    n: int
    value: float | None
    unit: str
    baseline: str
    baseline_value: float | None
    ratio: float | None
    note: str = ""


@dataclass(slots=True)
class _Measured:
    variant: str
    loop: str
    n: int
    values: Result | None
    note: str
    baselines: tuple[str, ...]


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


@dataclass
class Bench:
    """What a case function gets: sizes, scratch space, and :meth:`measure`."""

    case: str
    quick: bool
    loops: tuple[str, ...]
    scratch: Path
    timeout: float
    progress: Progress
    shared: Path | None = None
    failures: int = 0
    _measured: list[_Measured] = field(default_factory=list)
    _paths: int = 0
    _datasets: dict[str, str | None] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        """``full`` in a full run, ``quick`` with ``--quick``."""
        return quick if self.quick else full

    def path(self, name: str) -> Path:
        """A fresh, not yet existing path in this case's scratch directory."""
        self._paths += 1
        return self.scratch / f"{self._paths:03d}-{name}"

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

    def measure(
        self,
        variant: str,
        target: Target,
        *,
        n: int,
        loop: str,
        baselines: Sequence[str] = (),
        isolated: bool = False,
        skip: str | None = None,
        **kwargs: Any,
    ) -> Result | None:
        """Run one variant and keep its figures for the report.

        ``loop`` is a key of :data:`LOOPS` for ``async`` variants, a label (``sync``, ``threads``)
        otherwise. ``isolated`` runs it in a fresh subprocess (for memory figures), with
        ``kwargs`` passed as JSON. ``skip`` records the variant as not run, with that reason.
        """
        values: Result | None = None
        note = ""
        with self.progress.step(f"{self.case:<30} {loop:<8} {variant} n={n:,}") as done:
            if skip is not None:
                note = skip
            else:
                try:
                    if isolated:
                        values = self._run_child(target, loop, n, kwargs)
                    else:
                        gc.collect()
                        values = invoke(target, loop, n, kwargs, self.timeout)
                except (ImportError, Unavailable) as exc:
                    note = f"unavailable: {reason(exc)}"
                except Exception as exc:
                    self._fail(exc)
                    note = f"failed: {type(exc).__name__}: {reason(exc)}"
            done(describe(values) if values is not None else note)
        self._measured.append(_Measured(variant, loop, n, values, note, tuple(baselines)))
        return values

    def records(self) -> list[Record]:
        """Every figure measured so far, each next to each of its baselines."""
        records: list[Record] = []
        for measured in self._measured:
            if measured.values is None:
                records.append(
                    Record(
                        self.case,
                        measured.variant,
                        measured.loop,
                        measured.n,
                        None,
                        "",
                        "",
                        None,
                        None,
                        measured.note,
                    )
                )
                continue
            for unit, value in measured.values.items():
                if not measured.baselines:
                    records.append(
                        Record(
                            self.case,
                            measured.variant,
                            measured.loop,
                            measured.n,
                            value,
                            unit,
                            measured.variant,
                            value,
                            1.0,
                        )
                    )
                for name in measured.baselines:
                    records.append(self._compare(measured, unit, value, name))
        return records

    def _compare(self, measured: _Measured, unit: str, value: float, name: str) -> Record:
        reference = self._find(name, measured.loop)
        label = name
        if reference is not None and reference.loop != measured.loop:
            label = f"{name} @{reference.loop}"
        base = None if reference is None or reference.values is None else reference.values.get(unit)
        ratio = value / base if base else None
        note = "" if base else "baseline not measured"
        return Record(
            self.case,
            measured.variant,
            measured.loop,
            measured.n,
            value,
            unit,
            label,
            base,
            ratio,
            note,
        )

    def _find(self, name: str, loop: str) -> _Measured | None:
        same_name = [m for m in self._measured if m.variant == name]
        for measured in same_name:
            if measured.loop == loop:
                return measured
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
) -> RunOutcome:
    """Run ``cases`` in order, each in its own scratch directory (removed afterwards)."""
    records: list[Record] = []
    failures = 0
    timeout = 120.0 if quick else 3600.0
    shared = scratch / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    datasets: dict[str, str | None] = {}
    for case in cases:
        directory = scratch / case.name
        directory.mkdir(parents=True, exist_ok=True)
        bench = Bench(
            case.name, quick, loops, directory, timeout, progress, shared, _datasets=datasets
        )
        try:
            case.fn(bench)
        except Exception as exc:
            bench._fail(exc)
            note = f"failed: {type(exc).__name__}: {reason(exc)}"
            bench._measured.append(_Measured("(case)", "-", 0, None, note, ()))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        records.extend(bench.records())
        failures += bench.failures
    return RunOutcome(records, failures)
