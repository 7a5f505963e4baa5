"""The peer for the mailbox cases: Pykka's ``ThreadingActor`` (one OS thread per actor)."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from benchmarks._common import clock, rate, rss_bytes, work
from benchmarks._harness import Result
from benchmarks._isolation import finish_early

_TIMEOUT = 600.0


class _Counter(pykka.ThreadingActor):
    def __init__(self, n: int, done: threading.Event) -> None:
        super().__init__()
        self._n = n
        self._seen = 0
        self._done = done

    def on_receive(self, message: Any) -> None:
        work(message)
        self._seen += 1
        if self._seen == self._n:
            self._done.set()


class _Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


def tell(n: int) -> Result:
    """``n`` tells from this thread to one Pykka actor."""
    done = threading.Event()
    ref = _Counter.start(n, done)
    try:
        started = clock()
        for i in range(n):
            ref.tell(i)
        if not done.wait(_TIMEOUT):
            raise TimeoutError(f"pykka actor saw fewer than {n} messages")
        elapsed = clock() - started
    finally:
        ref.stop()
    return {"msg/s": rate(n, elapsed)}


def ask(n: int) -> Result:
    """``n`` sequential blocking asks to one Pykka actor that answers with the message."""
    ref = _Echo.start()
    try:
        started = clock()
        for i in range(n):
            ref.ask(i, timeout=_TIMEOUT)
        elapsed = clock() - started
    finally:
        ref.stop()
    return {"round trips/s": rate(n, elapsed)}


def spawn_idle(n: int) -> Result:
    """Start ``n`` idle Pykka actors; time and RSS per actor (run in a fresh process)."""
    before = rss_bytes()
    started = clock()
    refs = [_Echo.start() for _ in range(n)]
    elapsed = clock() - started
    grown = rss_bytes() - before
    result = finish_early({"us/actor": elapsed / n * 1e6, "B/actor": grown / n})
    for ref in refs:
        ref.stop(block=False)
    pykka.ActorRegistry.stop_all()
    return result
