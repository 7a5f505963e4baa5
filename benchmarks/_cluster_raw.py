"""Raw NATS baselines of the cluster cases: what nats-py itself does between processes.

Three responder processes (``python -m benchmarks._cluster_raw URL SUBJECT``) each subscribe to
their own subject: a request is answered with its payload, a publish is counted, and a request to
``SUBJECT.count`` is answered with the count so far. The measuring process sends to them as the
routed variants send to three node processes: requests with 100 in flight, or publishes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchmarks._cluster_procs import READY, children
from benchmarks._common import clock, rate
from benchmarks._harness import Result

RESPONDERS = 3
IN_FLIGHT = 100


def _subjects(prefix: str) -> list[str]:
    return [f"{prefix}.{i}" for i in range(RESPONDERS)]


def _specs(url: str, prefix: str) -> list[tuple[str, str, list[str]]]:
    return [
        (f"responder-{i}", "benchmarks._cluster_raw", [url, subject])
        for i, subject in enumerate(_subjects(prefix))
    ]


async def _connect(url: str) -> Any:
    import nats

    return await nats.connect(url, allow_reconnect=False)


async def raw_ask(n: int, url: str, prefix: str) -> Result:
    """``n`` requests spread over three responder processes, ``IN_FLIGHT`` at a time."""
    async with children(_specs(url, prefix)):
        nc = await _connect(url)
        try:
            subjects = _subjects(prefix)
            counter = iter(range(n))

            async def worker() -> None:
                for i in counter:
                    reply = await nc.request(subjects[i % RESPONDERS], b"%d" % i, timeout=30)
                    if reply.data != b"%d" % i:
                        raise AssertionError(f"request {i} answered with {reply.data!r}")

            started = clock()
            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
            elapsed = clock() - started
        finally:
            await nc.close()
    return {"round trips/s": rate(n, elapsed)}


async def raw_publish(n: int, url: str, prefix: str) -> Result:
    """``n`` publishes spread over three responder processes, timed until all counted them."""
    async with children(_specs(url, prefix)):
        nc = await _connect(url)
        try:
            subjects = _subjects(prefix)
            started = clock()
            for i in range(n):
                await nc.publish(subjects[i % RESPONDERS], b"%d" % i)
            await nc.flush()
            while True:
                counts = [
                    int((await nc.request(f"{s}.count", b"", timeout=30)).data) for s in subjects
                ]
                if sum(counts) >= n:
                    break
                await asyncio.sleep(0.001)
            elapsed = clock() - started
        finally:
            await nc.close()
    return {"msg/s": rate(n, elapsed)}


async def _respond(url: str, subject: str) -> None:
    nc = await _connect(url)
    received = 0

    async def on_message(msg: Any) -> None:
        nonlocal received
        if msg.reply:
            await msg.respond(msg.data)
        else:
            received += 1

    async def on_count(msg: Any) -> None:
        await msg.respond(b"%d" % received)

    await nc.subscribe(subject, cb=on_message)
    await nc.subscribe(f"{subject}.count", cb=on_count)
    await nc.flush()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(READY, flush=True)
    await reader.read()  # until EOF
    await nc.close()


if __name__ == "__main__":
    import uvloop

    uvloop.run(_respond(sys.argv[1], sys.argv[2]))
