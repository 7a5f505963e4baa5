"""Hidden-cost counters: GC-tracked allocations and function calls made while a workload runs.

**GC-tracked allocations.** CPython counts the objects its cyclic GC's allocator hands out in
``generations[0].count`` (what ``gc.get_count()[0]`` reports), but every free of such an object
takes one off again while the count is positive, so ``gc.get_count()`` deltas are *net*: a
workload that allocates a hundred objects per event and frees them shows close to zero. To count
allocations, not survivors, :func:`gc_allocations` finds that counter in the interpreter's state
(by its neighbours, the thresholds, set to marker values for the search) and starts it at a large
negative number: allocations still add one each, frees subtract nothing (the count is not
positive), and the collector never runs (the count never exceeds the threshold). Objects that
CPython takes from its free lists (small tuples, lists, dicts) bypass that allocator and are not
counted. Where the counter cannot be found (another Python version or implementation), the
counter raises :class:`~benchmarks._harness.Unavailable`.

**Calls.** :func:`calls` counts the ``call`` and ``c_call`` events ``sys.setprofile`` sees on
this thread: Python functions (and coroutines resumed) and C functions called from Python.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any

from benchmarks._harness import Unavailable

_MARKERS = (7919, 7907, 7901)  # thresholds nobody sets, to find the generations in memory
_SEARCHED_BYTES = 1 << 13
_START = -(1 << 30)

_address: int | None = None


def _gen0_count_address() -> int:
    """The address of ``generations[0].count`` in this interpreter's GC state."""
    global _address
    if _address is not None:
        return _address
    if platform.python_implementation() != "CPython" or sys.version_info[:2] not in (
        (3, 11),
        (3, 12),
    ):
        raise Unavailable(
            f"counting GC allocations needs CPython 3.11 or 3.12, not "
            f"{platform.python_implementation()} {platform.python_version()}"
        )
    get_interpreter = ctypes.pythonapi.PyInterpreterState_Get
    get_interpreter.restype = ctypes.c_void_p
    interpreter = get_interpreter()
    thresholds = gc.get_threshold()
    gc.set_threshold(*_MARKERS)
    try:
        ints = memoryview(ctypes.string_at(interpreter, _SEARCHED_BYTES)).cast("i")
        # struct gc_generation {PyGC_Head head (4 ints); int threshold; int count;} x 3
        found = [
            i for i in range(len(ints) - 12) if (ints[i], ints[i + 6], ints[i + 12]) == _MARKERS
        ]
    finally:
        gc.set_threshold(*thresholds)
    if len(found) != 1:
        raise Unavailable("cannot find the GC's allocation counter in the interpreter state")
    _address = interpreter + 4 * (found[0] + 1)
    return _address


class Count:
    """What a counter counted; :attr:`value` is set when its block ends."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


Counter = Callable[[], AbstractContextManager[Count]]
""":func:`gc_allocations` or :func:`calls`."""


@contextmanager
def gc_allocations() -> Iterator[Count]:
    """Count GC-tracked allocations (not net of frees) made in the block, by any thread.

    The collector does not run in the block.
    """
    counter = ctypes.c_int.from_address(_gen0_count_address())
    counted = Count()
    counter.value = _START
    try:
        yield counted
    finally:
        counted.value = counter.value - _START
        counter.value = 0


@contextmanager
def calls() -> Iterator[Count]:
    """Count the function calls made on this thread in the block (see the module docstring)."""
    counter = itertools.count()
    tick = counter.__next__

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event in {"call", "c_call"}:
            tick()

    counted = Count()
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield counted
    finally:
        sys.setprofile(previous)
        counted.value = tick()
