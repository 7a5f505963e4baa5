"""Progress on stderr while variants run, and how figures are written."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO


def describe(values: Mapping[str, float]) -> str:
    """``values`` as ``"812,345 msg/s, 120 B/actor"``."""
    return ", ".join(f"{format_value(value)} {unit}" for unit, value in values.items())


def format_value(value: float | None) -> str:
    """A figure with three significant digits at most, thousands separated."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


class Progress:
    """Progress on stderr: a line per variant, with a tick every few seconds while it runs."""

    def __init__(self, stream: TextIO | None = None, tick_seconds: float = 5.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tick_seconds = tick_seconds

    def write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    @contextmanager
    def step(self, label: str) -> Iterator[Callable[[str], None]]:
        """Show ``label`` now and ticks while the body runs; call the yielded function to finish."""
        self.write(label)
        started = time.perf_counter()
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(self._tick_seconds):
                self.write(f" .. {time.perf_counter() - started:.0f}s")

        ticker = threading.Thread(target=tick, name="benchmark-progress", daemon=True)
        ticker.start()
        outcome: list[str] = []
        try:
            yield outcome.append
        finally:
            stop.set()
            ticker.join()
            summary = outcome[-1] if outcome else "interrupted"
            self.write(f" -> {summary} ({time.perf_counter() - started:.2f} s)\n")
