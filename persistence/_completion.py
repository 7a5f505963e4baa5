"""An awaitable outcome that costs no Future unless somebody awaits it."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PENDING, _RESOLVED, _FAILED = 0, 1, 2


class Completion(Generic[T]):
    """The result of ``persist``, ``save_snapshot`` or ``delete_events``.

    Ignore it (the actor is told the outcome as a message or through its handler), or ``await`` it
    to continue once the work is done: it returns the value or raises the failure.
    """

    __slots__ = ("_future", "_state", "_value")

    def __init__(self) -> None:
        self._future: asyncio.Future[T] | None = None
        self._state = _PENDING
        self._value: Any = None

    def done(self) -> bool:
        return self._state != _PENDING

    def resolve(self, value: T) -> None:
        if self._state != _PENDING:
            return
        self._state, self._value = _RESOLVED, value
        future = self._future
        if future is not None and not future.done():
            future.set_result(value)

    def fail(self, error: BaseException) -> None:
        if self._state != _PENDING:
            return
        self._state, self._value = _FAILED, error
        future = self._future
        if future is not None and not future.done():
            future.set_exception(error)

    def __await__(self) -> Generator[Any, None, T]:
        if self._future is None:
            # awaited from a coroutine, so on the loop that resolves it: no loop kept per object
            self._future = asyncio.get_running_loop().create_future()
            if self._state == _RESOLVED:
                self._future.set_result(self._value)
            elif self._state == _FAILED:
                self._future.set_exception(self._value)
        return self._future.__await__()

    def __repr__(self) -> str:
        state = ("pending", "resolved", "failed")[self._state]
        return f"<Completion {state}>"
