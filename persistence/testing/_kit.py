"""An event-sourced test kit: drive one persistent actor with commands and check the events it
persisted, its replies and its state, and that replaying them reaches the same state.

::

    async with EventSourcedTestKit(lambda: Account("acc-1"), serializer=serializer,
                                   state_of=lambda account: account.balance) as kit:
        result = await kit.run_command(Deposit(Decimal(10)))
        assert result.events == (Deposited(Decimal(10)),)
        assert result.reply == Accepted(1)
        assert result.state == Decimal(10)
        assert await kit.restart() == Decimal(10)  # stop, respawn, replay: the same state

The kit owns an actor system with an in-memory journal and snapshot store, so every event goes
through the serializer (an event that cannot be stored shows up as a rejection, as it would in
production). It reads the state inside the actor's own turn, after the command's handlers ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from actorsys import ActorRef, ActorSystem, Terminated
from actorsys.testing import TestProbe
from persistence._extension import Persistence
from persistence._persistent_actor import PersistentActor
from persistence.journal._memory import InMemoryJournal
from persistence.serialization import Serializer
from persistence.snapshot._memory import InMemorySnapshotStore

A = TypeVar("A", bound=PersistentActor)
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class CommandResult(Generic[S]):
    """What one command did: the events it persisted, the replies to its sender, the state
    after its handlers ran."""

    command: Any
    events: tuple[Any, ...]
    replies: tuple[Any, ...]
    state: S

    @property
    def event(self) -> Any:
        """The one event the command persisted (AssertionError unless exactly one)."""
        if len(self.events) != 1:
            raise AssertionError(
                f"{self.command!r} persisted {len(self.events)} events, not one: {self.events!r}"
            )
        return self.events[0]

    @property
    def reply(self) -> Any:
        """The one reply the command's sender got (AssertionError unless exactly one)."""
        if len(self.replies) != 1:
            raise AssertionError(
                f"{self.command!r} got {len(self.replies)} replies, not one: {self.replies!r}"
            )
        return self.replies[0]


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Answered by the actor once it handles it: after every pending handler has run."""

    read_state: bool


@dataclass(frozen=True, slots=True)
class _Reached:
    state: Any
    error: Exception | None = None


def _state_attribute(actor: PersistentActor) -> Any:
    try:
        return actor.state  # type: ignore[attr-defined]
    except AttributeError:
        raise AssertionError(
            f"{type(actor).__name__} has no attribute 'state': pass state_of=... to "
            "EventSourcedTestKit to say how to read its state"
        ) from None


class EventSourcedTestKit(Generic[A, S]):
    """Runs one persistent actor made by ``factory`` (called again on every restart).

    ``state_of`` reads the state from the actor (default: its ``state`` attribute); it should
    return a value, or a copy, that later commands do not change. Use it as ``async with``
    (or ``await kit.start()`` ... ``await kit.close()``).
    """

    __test__ = False  # not a pytest test class

    @overload
    def __init__(
        self: EventSourcedTestKit[A, Any],
        factory: Callable[[], A],
        *,
        state_of: None = None,
        serializer: Serializer | None = None,
        timeout: float = 3.0,
    ) -> None: ...

    @overload
    def __init__(
        self,
        factory: Callable[[], A],
        *,
        state_of: Callable[[A], S],
        serializer: Serializer | None = None,
        timeout: float = 3.0,
    ) -> None: ...

    def __init__(
        self,
        factory: Callable[[], A],
        *,
        state_of: Callable[[A], S] | None = None,
        serializer: Serializer | None = None,
        timeout: float = 3.0,
    ) -> None:
        self._factory = factory
        self._state_of: Callable[[A], Any] = state_of or _state_attribute
        self._timeout = timeout
        self.journal = InMemoryJournal()
        """The kit's journal: inspect what was stored."""
        self.snapshot_store = InMemorySnapshotStore()
        self._persistence = Persistence(self.journal, self.snapshot_store, serializer=serializer)
        self.system = ActorSystem("eventsourced-test-kit", extensions=[self._persistence])
        self._probe: TestProbe | None = None
        self._ref: ActorRef | None = None
        self._actor: A | None = None
        self._failure: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> EventSourcedTestKit[A, S]:
        """Start the system and the actor; return once the actor has recovered."""
        await self.system.start()
        try:
            self._probe = TestProbe(self.system, "kit")
            await self._spawn()
        except BaseException:
            await self.system.shutdown()
            raise
        return self

    async def close(self) -> None:
        """Shut the system down (flushing the journal)."""
        await self.system.shutdown()

    async def __aenter__(self) -> EventSourcedTestKit[A, S]:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def ref(self) -> ActorRef:
        """The actor's ref (a new one after :meth:`restart`)."""
        if self._ref is None:
            raise AssertionError("the test kit is not started: use `async with` or start()")
        return self._ref

    @property
    def actor(self) -> A:
        """The current actor instance (for reading, between commands)."""
        if self._actor is None:
            raise AssertionError("the test kit is not started: use `async with` or start()")
        return self._actor

    # ------------------------------------------------------------------ driving the actor

    async def run_command(self, command: Any) -> CommandResult[S]:
        """Send ``command`` and wait until its handlers (also ``persist_async`` ones) ran."""
        actor = self.actor
        persistence_id = actor.persistence_id
        before = await self.journal.highest_sequence_nr(persistence_id)
        probe = self._started_probe()
        probe.send(self.ref, command)
        replies, _ = await self._barrier(f"handling {command!r}", read_state=False)
        await self._persistence.writes_settled()  # persist_async writes, then their handlers
        more, state = await self._barrier(f"handling {command!r}")
        if self._actor is not actor:
            raise AssertionError(
                f"{self.ref.path} failed while handling {command!r} and was restarted "
                "(see the actor_failed log)"
            )
        events = await self._events(persistence_id, before + 1)
        return CommandResult(command, tuple(events), (*replies, *more), state)

    async def state(self) -> S:
        """The actor's current state, read in its own turn."""
        _, state = await self._barrier("reading its state")
        result: S = state
        return result

    async def restart(self, *, check_state: bool = True) -> S:
        """Stop the actor, start a fresh one from the factory and let it recover; return the
        recovered state. With ``check_state`` (default) the recovered state must equal the state
        before the restart: replaying the events must reach the same state."""
        before = await self.state()
        await self.system.stop(self.ref)
        await self._spawn()
        after = await self.state()
        if check_state and after != before:
            raise AssertionError(
                f"replay reached a different state:\n  before restart: {before!r}\n"
                f"  after recovery: {after!r}"
            )
        return after

    async def persisted_events(self) -> list[Any]:
        """Every event stored for the actor's persistence id so far (deleted ones excepted)."""
        return await self._events(self.actor.persistence_id, 1)

    # ------------------------------------------------------------------ internals

    def _started_probe(self) -> TestProbe:
        if self._probe is None:
            raise AssertionError("the test kit is not started: use `async with` or start()")
        return self._probe

    async def _spawn(self) -> None:
        self._failure = None
        self._ref = self.system.spawn(self._instrumented)
        self._started_probe().watch(self._ref)
        await self._barrier("recovering", read_state=False)

    def _instrumented(self) -> A:
        """Make the actor, teaching this instance to answer the kit's barrier."""
        actor = self._factory()
        receive_command = actor.receive_command
        on_recovery_failure = actor.on_recovery_failure
        on_persist_failure = actor.on_persist_failure
        state_of = self._state_of

        def receive_barrier(command: Any) -> Any:
            if command.__class__ is not _Barrier:
                return receive_command(command)
            try:
                reached = _Reached(state_of(actor) if command.read_state else None)
            except Exception as error:  # raised in the test, not in the actor
                reached = _Reached(None, error)
            actor.context.sender.tell(reached, actor.context.self)
            return None

        def recovery_failed(cause: BaseException, message: Any) -> None:
            self._failure = cause
            on_recovery_failure(cause, message)

        def persist_failed(cause: BaseException, event: Any, sequence_nr: int) -> None:
            self._failure = cause
            on_persist_failure(cause, event, sequence_nr)

        # instance attributes shadow the methods for this incarnation only
        vars(actor).update(
            receive_command=receive_barrier,
            on_recovery_failure=recovery_failed,
            on_persist_failure=persist_failed,
        )
        self._actor = actor
        return actor

    async def _barrier(self, doing: str, *, read_state: bool = True) -> tuple[list[Any], Any]:
        """Replies received until the actor answered a barrier, and the state it reported."""
        probe = self._started_probe()
        ref = self.ref
        probe.send(ref, _Barrier(read_state))
        replies: list[Any] = []
        while True:
            message = await probe.receive(self._timeout)
            if isinstance(message, _Reached):
                if message.error is not None:
                    raise message.error
                return replies, message.state
            if isinstance(message, Terminated):
                if message.ref != ref:
                    continue  # an earlier incarnation's termination
                raise AssertionError(
                    f"{ref.path} stopped while {doing}: {self._failure!r}"
                ) from self._failure
            replies.append(message)

    async def _events(self, persistence_id: str, from_sequence_nr: int) -> list[Any]:
        decode = self._persistence.serializer.decode
        return [
            event
            async for page in self.journal.replay(persistence_id, from_sequence_nr)
            for record in page
            for event in decode(record.manifest, record.payload, persistence_id)
        ]
