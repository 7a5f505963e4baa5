"""A snapshot of an entity as it was at a given sequence number, taken from outside the entity:
eventsourcing's ``app.take_snapshot(aggregate_id, version=n)`` for a persistent actor that is not
running (a test's set-up, a maintenance script).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from actorsys import ActorSystem
from persistence._errors import PersistenceConfigError, PersistenceError
from persistence._extension import Persistence
from persistence._messages import RecoveryCompleted, SnapshotOffer
from persistence._persistent_actor import PersistentActor
from persistence._recovery import Recovery
from persistence.snapshot._protocol import SnapshotMetadata

__all__ = ["take_snapshot"]


async def take_snapshot(
    system: ActorSystem,
    factory: Callable[[], PersistentActor],
    sequence_nr: int | None = None,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - bounds the temporary incarnation's recovery
) -> SnapshotMetadata:
    """Save the state of the entity ``factory`` makes as it was right after event
    ``sequence_nr`` (default: its latest event), and return where it was stored.

    A temporary incarnation recovers up to that event (``Recovery.to(sequence_nr)``), its
    ``snapshot_state()`` is saved at that sequence number, and it stops. The entity must not be
    running (one writer per persistence id), and must have reached ``sequence_nr``.

    Inside a running actor, ``save_snapshot`` is the way: it stores the current state at the
    current sequence number. (Do not call it in an incarnation recovered with
    ``Recovery.to(n)``: the current sequence number is then the journal's highest, not ``n``.)
    """
    extension = Persistence.of(system)
    store = extension.snapshot_store
    if store is None:
        raise PersistenceConfigError(
            "cannot take a snapshot: no snapshot store configured: pass snapshot_store= to "
            "Persistence(...)"
        )
    if sequence_nr is not None and sequence_nr < 1:
        raise ValueError(f"sequence_nr must be at least 1, got {sequence_nr}")
    incarnation = _Incarnation(factory, extension, sequence_nr)
    ref = system.spawn(incarnation)
    try:
        async with asyncio.timeout(timeout):
            pid, last, state = await incarnation.reached
    except TimeoutError:
        raise TimeoutError(
            f"cannot take a snapshot: the entity did not recover within {timeout:g} s"
        ) from None
    finally:
        if ref.is_alive:
            await system.stop(ref)
    if last == 0 or (sequence_nr is not None and last < sequence_nr):
        raise PersistenceError(
            f"cannot take a snapshot of persistence_id={pid!r} at sequence_nr="
            f"{sequence_nr or 'latest'}: its events end at sequence_nr={last}"
        )
    manifest, payload = extension.serializer.encode(state)
    return await store.save(SnapshotMetadata(pid, last), manifest, payload)


class _Incarnation:
    """Makes the temporary incarnation: recovers up to the wanted event, then reports its
    persistence id, the last sequence number it recovered and its ``snapshot_state()``."""

    def __init__(
        self,
        factory: Callable[[], PersistentActor],
        extension: Persistence,
        sequence_nr: int | None,
    ) -> None:
        self.factory = factory
        self.extension = extension
        self.sequence_nr = sequence_nr
        self.reached: asyncio.Future[tuple[str, int, Any]] = (
            asyncio.get_running_loop().create_future()
        )

    def fail(self, error: BaseException) -> None:
        if not self.reached.done():
            self.reached.set_exception(error)

    def __call__(self) -> PersistentActor:
        actor = self.factory()
        pid = actor.persistence_id
        if type(actor).snapshot_state is PersistentActor.snapshot_state:
            self._refuse(
                PersistenceConfigError(
                    f"cannot take a snapshot of persistence_id={pid!r}: {type(actor).__name__} "
                    "has no snapshot_state(); override it to return the state to snapshot"
                )
            )
        holder = self.extension._writers.get(pid)
        if holder is not None and holder.is_alive:
            self._refuse(
                PersistenceError(
                    f"cannot take a snapshot of persistence_id={pid!r}: the entity is running "
                    f"({holder.path}); stop it first, or save_snapshot from inside it"
                )
            )
        sequence_nr = self.sequence_nr
        actor.recovery = Recovery() if sequence_nr is None else Recovery.to(sequence_nr)
        receive_recover = actor.receive_recover
        on_recovery_failure = actor.on_recovery_failure
        reached = self.reached
        last = 0

        def recover(message: Any) -> None:
            nonlocal last
            if message is RecoveryCompleted:
                state = actor.snapshot_state()
                if not reached.done():
                    reached.set_result((pid, last, state))
            elif isinstance(message, SnapshotOffer):
                last = message.metadata.sequence_nr
            else:
                last = actor.last_sequence_nr  # the replayed event's own number
            receive_recover(message)

        def recovery_failed(cause: BaseException, message: Any) -> None:
            self.fail(cause)
            on_recovery_failure(cause, message)

        # instance attributes shadow the methods for this incarnation only
        vars(actor).update(receive_recover=recover, on_recovery_failure=recovery_failed)
        return actor

    def _refuse(self, error: PersistenceError) -> None:
        self.fail(error)
        raise error
