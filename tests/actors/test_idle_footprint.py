"""What an idle actor costs: memory held per spawned actor that has handled nothing yet."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from actorsys import Actor, ActorSystem
from actorsys.testing import settle


class Idle(Actor):
    def receive(self, message: Any) -> None:
        pass


async def test_a_thousand_started_idle_actors_hold_under_450_bytes_each(
    system: ActorSystem,
) -> None:
    warm_up = [system.spawn(Idle) for _ in range(100)]
    await settle()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refs = [system.spawn(Idle) for _ in range(1000)]
        await settle()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(ref.is_alive for ref in refs + warm_up)
    assert held / len(refs) < 450  # cell, ref, name, actor instance, its entry in the parent
