"""A change counter live queries wait on, so that they wake when events are stored instead of
polling (polling remains the fallback, as a timeout).

A journal that has one exposes it as ``changes`` and calls :meth:`Changes.bump` after storing
events; a query reads :attr:`Changes.generation` before reading the journal and, when it found
nothing new, waits with :meth:`Changes.wait` for the generation to move on: a write between its
read and its wait is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Changes:
    """A generation counter with waiters."""

    __slots__ = ("_event", "_generation", "_on_first_wait")

    def __init__(self, on_first_wait: Callable[[], None] | None = None) -> None:
        self._generation = 0
        self._event: asyncio.Event | None = None
        self._on_first_wait = on_first_wait

    @property
    def generation(self) -> int:
        """How many times events were stored (as far as this process learnt)."""
        return self._generation

    def bump(self) -> None:
        """Events were stored: wake every waiter."""
        self._generation += 1
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self, since: int, at_most: float) -> None:
        """Return once the generation differs from ``since``, or after ``at_most`` seconds."""
        if self._on_first_wait is not None:
            start, self._on_first_wait = self._on_first_wait, None
            start()
        if self._generation != since:
            return
        event = self._event
        if event is None:
            event = self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), at_most)
