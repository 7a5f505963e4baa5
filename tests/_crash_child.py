"""Child process of the crash tests: writes atomic batches until it is killed.

``python -m tests._crash_child BACKEND PATH WRITERS SEED`` opens the journal (``file-always``,
``file-batch``, ``file-never`` or ``sqlite``), continues each writer's id after its highest
sequence number, and prints ``ack <persistence_id> <lowest> <highest>`` (flushed) after each
acknowledged atomic write. Every payload names its id, number and atomic write, so the parent can
check what it replays.
"""

from __future__ import annotations

import asyncio
import random
import sys

import msgpack

from persistence.journal import AtomicWrite, FileJournal, Journal, PersistentRecord, SqliteJournal


def open_journal(backend: str, path: str) -> Journal:
    if backend == "sqlite":
        return SqliteJournal(path)
    fsync = backend.removeprefix("file-")
    return FileJournal(path, fsync=fsync, segment_size=16 * 1024)  # type: ignore[arg-type]


def payload(persistence_id: str, seq: int, lowest: int, highest: int) -> bytes:
    data: bytes = msgpack.packb(
        {"id": persistence_id, "seq": seq, "write": [lowest, highest], "pad": "x" * (seq % 97)}
    )
    return data


async def writer(journal: Journal, persistence_id: str, rng: random.Random) -> None:
    seq = await journal.highest_sequence_nr(persistence_id) + 1
    while True:
        lowest, highest = seq, seq + rng.randint(0, 4)
        records = [
            PersistentRecord(
                persistence_id,
                n,
                "CrashEvent",
                payload(persistence_id, n, lowest, highest),
                "crash-child",
                n,
                ("crash",) if n % 3 == 0 else (),
            )
            for n in range(lowest, highest + 1)
        ]
        [result] = await journal.write([AtomicWrite(records)])
        if result is not None:
            raise result
        sys.stdout.write(f"ack {persistence_id} {lowest} {highest}\n")
        sys.stdout.flush()
        seq = highest + 1


async def main(backend: str, path: str, writers: int, seed: int) -> None:
    journal = open_journal(backend, path)
    rng = random.Random(seed)
    await asyncio.gather(
        *(writer(journal, f"crash-{n}", random.Random(rng.random())) for n in range(writers))
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
