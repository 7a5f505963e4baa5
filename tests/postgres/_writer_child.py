"""Child process of the PostgreSQL crash tests: writes atomic batches until it is killed.

``python -m tests.postgres._writer_child DSN SCHEMA WRITERS SEED``: the writers of
:mod:`tests._crash_child` (each continues its id after its highest sequence number and prints
``ack <persistence_id> <lowest> <highest>`` after each acknowledged atomic write), on a
:class:`~persistence.journal.PostgresJournal`.
"""

from __future__ import annotations

import asyncio
import random
import sys

from persistence.journal import PostgresJournal
from tests._crash_child import writer


async def main(dsn: str, schema: str, writers: int, seed: int) -> None:
    journal = PostgresJournal(dsn, schema=schema)
    rng = random.Random(seed)
    try:
        await asyncio.gather(
            *(writer(journal, f"crash-{n}", random.Random(rng.random())) for n in range(writers))
        )
    finally:
        await journal.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
