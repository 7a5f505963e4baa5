"""Child process of the hostile-payload tests: recovers a persistent actor whose journal holds
payloads nested thousands of levels deep (a decoder that recursed per level killed the
interpreter with SIGSEGV here).

``python -m tests._hostile_child DIR PERSISTENCE_ID`` recovers ``PERSISTENCE_ID`` from the
:class:`~persistence.journal.FileJournal` in ``DIR`` and prints one line per replayed event
(``replayed <sequence_nr>``) and then either ``recovered <last_sequence_nr>`` or
``recovery failed: <error type>: <message>``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import msgpack

from actorsys import ActorSystem
from persistence import Persistence, PersistentActor, RecoveryCompleted, Serializer
from persistence.journal import FileJournal

serializer = Serializer()


@serializer.type("Holder")
@dataclass(frozen=True)
class Holder:
    value: Any


def nested_tuples(levels: int) -> bytes:
    """A Holder payload whose value is ``levels`` tuples inside each other (ext 7 in ext 7...)."""
    data: bytes = msgpack.packb([1])
    for _ in range(levels - 1):
        data = msgpack.packb([msgpack.ExtType(7, data)])
    payload: bytes = msgpack.packb({"value": msgpack.ExtType(7, data)})
    return payload


def nested_objects(levels: int) -> bytes:
    """A Holder payload whose value is ``levels`` Holders inside each other (ext 1 in ext 1...)."""
    form: Any = {"value": 1}
    for _ in range(levels):
        form = {"value": msgpack.ExtType(1, msgpack.packb(["Holder", form]))}
    payload: bytes = msgpack.packb(form)
    return payload


class Victim(PersistentActor):
    def __init__(self, persistence_id: str, done: asyncio.Future[str]) -> None:
        super().__init__()
        self.persistence_id = persistence_id
        self.done = done

    def receive_recover(self, message: Any) -> None:
        if message is RecoveryCompleted:
            self.done.set_result(f"recovered {self.last_sequence_nr}")
        else:
            sys.stdout.write(f"replayed {self.last_sequence_nr}\n")

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        return None

    def on_recovery_failure(self, cause: BaseException, message: Any) -> None:
        self.done.set_result(f"recovery failed: {type(cause).__name__}: {cause}")


async def main(directory: str, persistence_id: str) -> None:
    persistence = Persistence(FileJournal(directory), serializer=serializer)
    async with ActorSystem("hostile", extensions=[persistence]) as system:
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        system.spawn(lambda: Victim(persistence_id, done))
        sys.stdout.write(await done + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
