"""The runtime of one actor: its mailbox, lifecycle, children and supervision.

The cell is also the actor's ``context``. Its mailbox queue exists only while mail is waiting, and
it is drained by a plain callback scheduled with ``call_soon`` when mail arrives: an idle actor
holds no queue and no task, and a plain-function handler costs no ``await`` per message. Only when
a handler (or a lifecycle hook) returns an awaitable does the cell switch to a task, which awaits it
and then resumes the plain drain. System messages (create, failed, resume, restart, stop) are
processed before user messages, always between two user messages.

Lifecycle: NEW -> RUNNING <-> (failed: suspended until the parent decides) -> STOPPING -> DEAD.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from actorsys._clock import Cancellable
from actorsys._errors import (
    ActorDeadError,
    ActorInitializationError,
    ActorKilledError,
    ActorSystemError,
    InvalidActorNameError,
    StashError,
)
from actorsys._logging import get_logger
from actorsys._mailbox import Mailbox, Overflow
from actorsys._messages import Kill, PoisonPill, ReceiveTimeout, Terminated
from actorsys._ref import ActorRef, BoundedActorRef, _PromiseRef
from actorsys._supervision import DEFAULT_STRATEGY, Directive, SupervisorStrategy
from actorsys._timers import TimerScheduler, _TimerMessage

if TYPE_CHECKING:
    from actorsys._actor import Actor
    from actorsys._system import ActorSystem

log = get_logger("actorsys")

ActorFactory = Callable[[], "Actor"]
Behavior = Callable[[Any], Awaitable[None] | None]
Envelope = tuple[Any, ActorRef | None]

_THROUGHPUT = 300
"""Messages one actor handles before it yields the loop to others."""

_NO_ENVELOPE: Envelope = (None, None)


class _State(enum.IntEnum):
    NEW = 0
    RUNNING = 1
    RESTARTING = 2
    STOPPING = 3
    DEAD = 4


class _Sys(enum.Enum):
    CREATE = 0
    FAILED = 1
    RESUME = 2
    RESTART = 3
    STOP = 4


_STOP = (_Sys.STOP,)
_RESUME = (_Sys.RESUME, None)

_SPECIAL = frozenset(
    {type(PoisonPill), type(Kill), Terminated, _TimerMessage, type(ReceiveTimeout)}
)

_constructing: ActorCell | None = None
"""The cell whose actor instance is being constructed (read by ``Actor.__init__``)."""


def constructing_cell() -> ActorCell | None:
    return _constructing


_VALID_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@&=+,!~*'$;%()"
)


def _check_name(name: str) -> None:
    if not name or name.startswith("$") or not set(name) <= _VALID_NAME_CHARS:
        raise InvalidActorNameError(
            f"invalid actor name {name!r}: use letters, digits and -_.:@&=+,!~*'$;%() "
            "(not empty, not starting with '$')"
        )


class ActorCell:
    """One actor's runtime state; exposed to the actor as ``self.context``."""

    __slots__ = (
        "_actor",
        "_behavior",
        "_behavior_stack",
        "_capacity",
        "_children",
        "_children_changed",
        "_current",
        "_death_cause",
        "_factory",
        "_idle_since",
        "_log",
        "_loop",
        "_mail",
        "_name_counter",
        "_overflow",
        "_parent",
        "_processed",
        "_receive_timeout",
        "_restarts",
        "_scheduled",
        "_stash",
        "_state",
        "_suspended",
        "_sys",
        "_task",
        "_termination",
        "_timeout_handle",
        "_timers",
        "_watchers",
        "_watching",
        "name",
        "ref",
        "system",
    )

    def __init__(
        self,
        system: ActorSystem,
        parent: ActorCell | None,
        name: str,
        factory: ActorFactory | None,
        mailbox: Mailbox | None = None,
    ) -> None:
        self.system = system
        self._loop = system._loop
        self._parent = parent
        self.name = name
        bounded = mailbox is not None and mailbox.capacity is not None
        self.ref = BoundedActorRef(self) if bounded else ActorRef(self)
        self._factory = factory
        self._actor: Actor | None = None
        self._behavior: Behavior | None = None
        self._behavior_stack: list[Behavior] | None = None
        self._mail: deque[Envelope] | None = None
        # A list, not a deque: system queues hold one or two entries, and an empty deque costs
        # 600 bytes per spawned actor while its creation is pending.
        self._sys: list[tuple[Any, ...]] | None = None
        self._scheduled = False
        self._suspended = True
        self._state = _State.NEW
        self._current: Envelope = _NO_ENVELOPE
        self._processed = 0
        self._capacity: int | None = None
        self._overflow = Overflow.DROP
        if mailbox is not None and mailbox.capacity is not None:
            self._capacity = mailbox.capacity
            self._overflow = mailbox.overflow
        self._children: dict[str, ActorCell] | None = None
        self._children_changed: asyncio.Future[None] | None = None
        self._name_counter = 0
        self._watchers: set[ActorRef] | None = None
        self._watching: set[ActorRef] | None = None
        self._stash: list[Envelope] | None = None
        self._timers: TimerScheduler | None = None
        self._receive_timeout: float | None = None
        self._timeout_handle: Cancellable | None = None
        self._idle_since = 0.0
        self._restarts: list[float] | None = None
        self._task: asyncio.Task[None] | None = None
        self._termination: asyncio.Future[None] | None = None
        self._log: Any = None
        self._death_cause: BaseException | None = None

    @property
    def path(self) -> str:
        """The actor's path, e.g. ``/user/bank/account-7`` (computed: idle actors stay small)."""
        parent = self._parent
        return f"{parent.path}/{self.name}" if parent is not None else f"/{self.name}"

    # ------------------------------------------------------------------ context API

    @property
    def self(self) -> ActorRef:
        """This actor's own ref."""
        return self.ref

    @property
    def sender(self) -> ActorRef:
        """The sender of the message being handled (dead letters when there is none)."""
        sender = self._current[1]
        return sender if sender is not None else self.system.dead_letters

    @property
    def parent(self) -> ActorRef:
        """The parent's ref (the guardian's own parent is dead letters)."""
        return self._parent.ref if self._parent is not None else self.system.dead_letters

    @property
    def children(self) -> tuple[ActorRef, ...]:
        """Refs of the live children."""
        return tuple(c.ref for c in self._children.values()) if self._children else ()

    def child(self, name: str) -> ActorRef | None:
        """The child with this name, if alive."""
        cell = self._children.get(name) if self._children else None
        return cell.ref if cell is not None else None

    @property
    def log(self) -> Any:
        """A structlog logger bound to this actor's path."""
        if self._log is None:
            self._log = log.bind(actor_path=self.path)
        return self._log

    @property
    def timers(self) -> TimerScheduler:
        """This actor's keyed timers (cancelled when it stops or restarts)."""
        if self._timers is None:
            self._timers = TimerScheduler(self)
        return self._timers

    def spawn(
        self, factory: ActorFactory, name: str | None = None, *, mailbox: Mailbox | None = None
    ) -> ActorRef:
        """Start a child actor; ``factory`` is an Actor subclass or a zero-argument callable."""
        if self._state is _State.DEAD:
            raise ActorSystemError(
                f"cannot spawn a child of {self.path}: it has stopped (an actor's context is "
                "usable only while the actor runs; keep its ActorRef, not the instance)"
            )
        if self._state >= _State.STOPPING:
            raise ActorSystemError(f"cannot spawn a child of {self.path}: it is stopping")
        if not callable(factory):
            raise TypeError(
                f"spawn needs an Actor subclass or a zero-argument callable, got {factory!r}"
            )
        children = self._children
        if children is None:
            children = self._children = {}
        if name is None:
            name = self._next_name()
        else:
            _check_name(name)
            if name in children:
                raise InvalidActorNameError(
                    f"actor name {name!r} is already in use by {children[name].path}: stop it and "
                    "wait for it to terminate (await system.stop(ref)) before reusing the name"
                )
        child = ActorCell(self.system, self, name, factory, mailbox)
        children[name] = child
        child._post_system((_Sys.CREATE,))
        return child.ref

    def forward(self, message: Any, ref: ActorRef) -> None:
        """Tell ``ref`` the ``message`` with the sender of the message being handled, so that
        ``ref`` answers the original sender (Akka's ``forward``)."""
        ref.tell(message, self._current[1])

    def stop(self, ref: ActorRef) -> None:
        """Stop ``ref`` (this actor or a child) after its current message."""
        ref._cell._post_system(_STOP)

    def watch(self, ref: ActorRef) -> ActorRef:
        """Receive ``Terminated(ref)`` once ``ref`` stops (at once if it is already dead)."""
        if ref is self.ref:
            return ref
        if self._watching is None:
            self._watching = set()
        if ref in self._watching:
            return ref
        self._watching.add(ref)
        target = ref._cell
        if target.dead:
            self.ref.tell(Terminated(ref))
        else:
            if target._watchers is None:
                target._watchers = set()
            target._watchers.add(self.ref)
        return ref

    def unwatch(self, ref: ActorRef) -> ActorRef:
        """Stop watching ``ref``; a ``Terminated`` already queued is dropped."""
        if self._watching is not None:
            self._watching.discard(ref)
        watchers = ref._cell._watchers
        if watchers is not None:
            watchers.discard(self.ref)
        return ref

    def become(self, behavior: Behavior, *, discard_old: bool = True) -> None:
        """Handle the next messages with ``behavior`` instead of ``receive``.

        With ``discard_old`` the current behavior is replaced (``receive`` itself stays
        below); otherwise it is kept, and ``unbecome`` returns to it.
        """
        if self._behavior is None:
            raise ActorSystemError(f"cannot become: {self.path} is not running")
        stack = self._behavior_stack
        if stack is None:
            stack = self._behavior_stack = []
        if not (discard_old and stack):
            stack.append(self._behavior)
        assert self._actor is not None
        self._behavior = self._actor._wrap_behavior(behavior)

    def unbecome(self) -> None:
        """Go back to the previous behavior (never below ``receive``)."""
        if self._behavior_stack:
            self._behavior = self._behavior_stack.pop()

    def stash(self) -> None:
        """Put the current message aside until ``unstash_all``."""
        current = self._current
        if current is _NO_ENVELOPE:
            raise StashError(f"cannot stash: {self.path} is not handling a message")
        if self._stash is None:
            self._stash = []
        elif self._stash and self._stash[-1] is current:
            raise StashError(
                f"cannot stash {current[0]!r} twice: {self.path} already stashed this message"
            )
        self._stash.append(current)

    def unstash_all(self) -> None:
        """Return every stashed message to the front of the mailbox, in original order."""
        stash = self._stash
        if not stash:
            return
        self._stash = None
        self._prepend(stash)

    def set_receive_timeout(self, timeout: float | None) -> None:
        """Receive ``ReceiveTimeout`` after each idle period of ``timeout`` seconds (None: off)."""
        if timeout is not None and not timeout > 0:
            raise ValueError(f"receive timeout must be positive or None, got {timeout!r}")
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        self._receive_timeout = timeout
        if timeout is not None:
            clock = self.system._clock
            self._idle_since = clock.time()
            self._timeout_handle = clock.call_later(timeout, self._check_receive_timeout)

    @property
    def receive_timeout(self) -> float | None:
        """The receive timeout in seconds, or None when off."""
        return self._receive_timeout

    # ------------------------------------------------------------------ state

    @property
    def dead(self) -> bool:
        return self._state is _State.DEAD

    def termination(self) -> asyncio.Future[None]:
        """A future resolved once this actor has terminated."""
        if self._termination is None:
            self._termination = self._loop.create_future()
            if self._state is _State.DEAD:
                self._termination.set_result(None)
        return self._termination

    def iter_descendants(self) -> Iterator[ActorCell]:
        for child in list(self._children.values()) if self._children else ():
            yield child
            yield from child.iter_descendants()

    def _next_name(self) -> str:
        self._name_counter += 1
        n = self._name_counter
        digits = []
        while n:
            n, r = divmod(n - 1, 26)
            digits.append(chr(97 + r))
        return "$" + "".join(reversed(digits))

    # ------------------------------------------------------------------ the drain

    def _post_system(self, message: tuple[Any, ...]) -> None:
        if self._state is _State.DEAD:
            return
        task = self._task
        if task is not None:
            if task.done():
                # The task was cancelled before its first step (the loop's teardown cancels
                # every task), so it never cleaned up: recover here, or this actor could never
                # stop.
                self._interrupted()
            elif (
                message is _STOP
                and self._state is _State.NEW
                and task is not asyncio.current_task()
            ):
                # A stop does not wait for a start that may never finish (a persistent actor
                # recovering from a journal that does not answer): the start is cancelled, and
                # the cancelled task stops the actor (post_stop, watchers, see _interrupted).
                task.cancel()
        if self._sys is None:
            self._sys = []
        self._sys.append(message)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        budget = _THROUGHPUT
        try:
            while True:
                sys_queue = self._sys
                if sys_queue:
                    pending = self._system_message(sys_queue.pop(0))
                    if pending is not None:
                        self._continue_in_task(pending, None)
                        return
                    continue
                mail = self._mail
                if not mail or self._suspended:
                    break
                # The hot loop: plain handlers, no per-message bookkeeping beyond the sender.
                popleft = mail.popleft
                special = _SPECIAL
                while mail and budget:
                    budget -= 1
                    envelope = popleft()
                    self._current = envelope
                    message = envelope[0]
                    try:
                        if message.__class__ in special:
                            pending = self._special(message)
                        else:
                            pending = self._behavior(message)  # type: ignore[misc]
                    except Exception as error:
                        self._fail(error, envelope)
                        break
                    if pending is not None and inspect.isawaitable(pending):
                        self._processed += _THROUGHPUT - budget
                        self._continue_in_task(pending, envelope)
                        return
                    if self._sys:  # the handler posted lifecycle work (stop, ...)
                        break
                if not budget:
                    self._processed += _THROUGHPUT
                    self._current = _NO_ENVELOPE
                    self._loop.call_soon(self._run)
                    return
        except BaseException:
            # Not a failure to supervise (KeyboardInterrupt, SystemExit, cancellation, or a
            # runtime bug): stop this actor so a shutdown can still complete, and re-raise.
            self._processed += _THROUGHPUT - budget
            self._interrupted()
            raise
        self._processed += _THROUGHPUT - budget
        self._current = _NO_ENVELOPE
        self._scheduled = False
        self._idle()

    def _continue_in_task(self, pending: Awaitable[Any], envelope: Envelope | None) -> None:
        self._task = self._loop.create_task(self._await_then_run(pending, envelope))

    async def _await_then_run(self, pending: Awaitable[Any], envelope: Envelope | None) -> None:
        try:
            await pending
        except Exception as error:
            self._current = _NO_ENVELOPE
            if envelope is not None:
                self._fail(error, envelope)
            else:
                self.log.error("actor_lifecycle_failed", error=repr(error), exc_info=error)
        except BaseException:
            self._interrupted()
            raise
        self._current = _NO_ENVELOPE
        self._task = None
        self._run()

    def _interrupted(self) -> None:
        """A BaseException escaped a handler or hook, or this actor's task was cancelled.

        That is no failure to supervise: the actor stops, so that a shutdown still completes.
        """
        sender = self._current[1]
        if sender.__class__ is _PromiseRef:
            sender.fail(ActorDeadError(self.path))
        self._current = _NO_ENVELOPE
        self._task = None
        if self._state is _State.STOPPING:
            self._continue_in_task(self._terminate(), None)  # termination was cut short: again
        else:
            self._scheduled = False
            self._post_system(_STOP)

    def _idle(self) -> None:
        mail = self._mail
        if mail is not None and not mail:
            self._mail = None
        if self._sys is not None and not self._sys:
            self._sys = None
        if self._receive_timeout is not None:
            self._idle_since = self.system._clock.time()

    def _prepend(self, envelopes: list[Envelope]) -> None:
        if self._mail is None:
            self._mail = deque(envelopes)
        else:
            self._mail.extendleft(reversed(envelopes))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _special(self, message: Any) -> Awaitable[None] | None:
        cls = message.__class__
        behavior: Behavior = self._behavior  # type: ignore[assignment]
        if cls is Terminated:
            watching = self._watching
            if watching is None or message.ref not in watching:
                return None  # unwatched after it was queued
            watching.discard(message.ref)
            return behavior(message)
        if cls is _TimerMessage:
            if self._timers is None:
                return None
            current, payload = self._timers.accept(message)
            return behavior(payload) if current else None
        if message is PoisonPill:
            self._post_system(_STOP)
            return None
        if message is Kill:
            raise ActorKilledError(f"{self.path} received Kill")
        return behavior(message)  # ReceiveTimeout

    def _check_receive_timeout(self) -> None:
        timeout = self._receive_timeout
        if timeout is None or self._state >= _State.STOPPING:
            return
        clock = self.system._clock
        now = clock.time()
        busy = self._scheduled or bool(self._mail)
        due = self._idle_since + timeout
        if busy or now < due:
            self._timeout_handle = clock.call_later(
                timeout if busy else due - now, self._check_receive_timeout
            )
            return
        self._timeout_handle = clock.call_later(timeout, self._check_receive_timeout)
        self.ref.tell(ReceiveTimeout)

    # ------------------------------------------------------------------ failure

    def _fail(
        self, error: Exception, envelope: Envelope | None, perpetrator: ActorCell | None = None
    ) -> None:
        """Suspend this actor and ask the parent what to do (the parent logs the failure once it
        has decided, at a level that depends on the decision).

        ``perpetrator`` is the child whose failure this actor escalated: it stays suspended until
        this actor is resumed (then it is resumed too) or restarted (then it is restarted too).
        """
        self._suspended = True
        message = None
        if envelope is not None:
            message, sender = envelope
            if sender.__class__ is _PromiseRef:
                sender.fail(error)
        if self._parent is None:
            self.system._guardian_failed(error)
        else:
            self._parent._post_system((_Sys.FAILED, self, error, message, perpetrator))

    def _system_message(self, message: tuple[Any, ...]) -> Awaitable[None] | None:
        kind = message[0]
        if kind is _Sys.CREATE:
            return self._create()
        if kind is _Sys.STOP:
            return self._stop()
        if self._state >= _State.STOPPING:
            return None
        if kind is _Sys.FAILED:
            self._child_failed(message[1], message[2], message[3], message[4])
            return None
        if kind is _Sys.RESUME:
            if self._state is _State.RUNNING:
                self._suspended = False
            perpetrator = message[1]
            if perpetrator is not None:  # the child whose failure this actor escalated
                perpetrator._post_system(_RESUME)
            return None
        if kind is _Sys.RESTART:
            return self._restart(message[1], message[2])
        raise AssertionError(f"unknown system message {message!r}")

    def _child_failed(
        self, child: ActorCell, error: Exception, message: Any, perpetrator: ActorCell | None
    ) -> None:
        children = self._children
        if children is None or children.get(child.name) is not child or child.dead:
            _log_failure(child, error, message, None, perpetrator)  # it is gone already
            return
        actor = self._actor
        strategy: SupervisorStrategy = (
            getattr(actor, "supervisor_strategy", None) or DEFAULT_STRATEGY
        )
        directive = strategy.decide(error)
        targets = list(children.values()) if strategy.applies_to_all else [child]
        if directive is Directive.RESTART:
            if child._restarts is None:
                child._restarts = []
            if not strategy.restart_allowed(child._restarts, self.system._clock.time()):
                self.log.warning(
                    "restart_limit_reached", child=child.path, max_restarts=strategy.max_restarts
                )
                directive = Directive.STOP
        _log_failure(child, error, message, directive, perpetrator)
        if directive is Directive.RESUME:
            child._post_system((_Sys.RESUME, perpetrator))
        elif directive is Directive.RESTART:
            for target in targets:
                target._post_system((_Sys.RESTART, error, message if target is child else None))
        elif directive is Directive.STOP:
            for target in targets:
                target._stop_for(error)
        else:
            self._fail(error, None, child)

    # ------------------------------------------------------------------ lifecycle

    def _new_instance(self) -> Actor:
        # Imported here: actorsys._actor imports this module to find the cell being constructed.
        from actorsys._actor import Actor

        global _constructing
        previous, _constructing = _constructing, self
        try:
            actor = self._factory()  # type: ignore[misc]
        finally:
            _constructing = previous
        if not isinstance(actor, Actor):
            raise TypeError(
                f"the factory of {self.path} returned {actor!r}, not an Actor: pass an Actor "
                "subclass or a callable returning a new instance"
            )
        if getattr(actor, "_actor_cell", None) is not self:
            raise ActorSystemError(
                f"{type(actor).__name__}.__init__ did not call Actor.__init__: "
                "did you forget super().__init__()?"
            )
        self._actor = actor
        self._behavior = actor.receive
        self._behavior_stack = None
        return actor

    def _create(self) -> Awaitable[None] | None:
        if self._state is not _State.NEW:
            return None
        try:
            pending = self._new_instance()._around_start(None)
        except Exception as error:
            self._fail(ActorInitializationError(self.path, error), None)
            return None
        if pending is not None:
            return self._finish_start(pending)
        self._started()
        return None

    async def _finish_start(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception as error:
            self._fail(ActorInitializationError(self.path, error), None)
            return
        self._started()

    def _started(self) -> None:
        self._state = _State.RUNNING
        self._suspended = False

    async def _restart(self, reason: Exception, message: Any) -> None:
        self._state = _State.RESTARTING
        self._suspended = True
        self._cancel_timers()
        old = self._actor
        if old is not None:
            try:
                pending = old._around_restart(reason, message)
                if pending is not None:
                    await pending
            except Exception as error:
                self.log.error("pre_restart_failed", error=repr(error), exc_info=error)
        await self._await_children(ActorCell._stopping)
        # Children that pre_restart kept are restarted once this actor is up again (Akka's
        # finishRecreate): one of them may be the child whose escalated failure caused this
        # restart, suspended until then.
        survivors = list(self._children.values()) if self._children else None
        if self._stash:
            stash, self._stash = self._stash, None
            self._prepend(stash)
        self._behavior = self._behavior_stack = None
        self._state = _State.NEW
        try:
            pending = self._new_instance()._around_start(reason)
            if pending is not None:
                await pending
        except Exception as error:
            self._fail(ActorInitializationError(self.path, error), None)
            return
        self.log.info("actor_restarted", reason=repr(reason))
        self._started()
        for child in survivors or ():
            child._post_system((_Sys.RESTART, reason, None))

    def _stop(self) -> Awaitable[None] | None:
        if self._state >= _State.STOPPING:
            return None
        self._state = _State.STOPPING
        self._suspended = True
        self._cancel_timers()
        return self._terminate()

    async def _terminate(self) -> None:
        self.stop_children()
        await self._await_children(lambda c: True)
        actor = self._actor
        if actor is not None and self._behavior is not None:
            try:
                pending = actor._around_stop()
                if pending is not None:
                    await pending
            except Exception as error:
                self.log.error("post_stop_failed", error=repr(error), exc_info=error)
        self._finish_termination()

    def _stop_for(self, cause: BaseException) -> None:
        """Stop this actor because of ``cause``, which asks to it then report (ActorDeadError).

        For a supervisor's stop after a failure, and for library actors that stop on an error
        (the persistent actor, when its journal fails).
        """
        if self._state < _State.STOPPING and self._death_cause is None:
            self._death_cause = cause
        self._post_system(_STOP)

    def stop_children(self) -> None:
        """Ask every child to stop (the default ``pre_restart`` does this)."""
        for child in list(self._children.values()) if self._children else ():
            child._post_system(_STOP)

    def _stopping(self) -> bool:
        """Whether this actor is stopping, or has a stop request waiting to be processed."""
        return self._state is _State.STOPPING or (self._sys is not None and _STOP in self._sys)

    async def _await_children(self, condition: Callable[[ActorCell], bool]) -> None:
        while self._children and any(condition(c) for c in self._children.values()):
            self._children_changed = self._loop.create_future()
            await self._children_changed

    def _child_terminated(self, child: ActorCell) -> None:
        children = self._children
        if children is not None and children.get(child.name) is child:
            del children[child.name]
        waiter = self._children_changed
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _cancel_timers(self) -> None:
        if self._timers is not None:
            self._timers.cancel_all()
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        self._receive_timeout = None

    def _finish_termination(self) -> None:
        self._state = _State.DEAD
        for pending in self._sys or ():
            if pending[0] is _Sys.FAILED:  # a child failed while this actor stopped: no decision
                _log_failure(pending[1], pending[2], pending[3], None, pending[4])
        self._sys = None
        mail, self._mail = self._mail, None
        stash, self._stash = self._stash, None
        system = self.system
        for envelope in itertools.chain(stash or (), mail or ()):
            message, sender = envelope
            if sender.__class__ is _PromiseRef:
                sender.fail(ActorDeadError(self.path, self._death_cause))
            elif message.__class__ not in _SPECIAL:
                system._dead_letter(message, sender, self.ref)
        for watcher in self._watchers or ():
            watcher.tell(Terminated(self.ref))
        self._watchers = None
        for watched in self._watching or ():
            watchers = watched._cell._watchers
            if watchers is not None:
                watchers.discard(self.ref)
        self._watching = None
        self._actor = None
        self._behavior = self._behavior_stack = None
        if self._parent is not None:
            self._parent._child_terminated(self)
        if self._termination is not None and not self._termination.done():
            self._termination.set_result(None)

    def __repr__(self) -> str:
        return f"<ActorCell {self.path} {self._state.name}>"


def _log_failure(
    child: ActorCell,
    error: Exception,
    message: Any,
    directive: Directive | None,
    perpetrator: ActorCell | None,
) -> None:
    """Log a child's failure once its parent decided (Akka's levels).

    Resumed: a warning, without traceback. Escalated: not here, but where it is decided. Restarted,
    stopped, or not decided because the child is gone: an error with the exception.
    """
    if directive is Directive.ESCALATE:
        return
    fields: dict[str, Any] = {"error": repr(error), "message": repr(message)[:200]}
    if perpetrator is not None:
        fields["escalated_from"] = perpetrator.path
    if directive is Directive.RESUME:
        child.log.warning("actor_failed", directive=directive.value, **fields)
    else:
        decided = directive.value if directive is not None else None
        child.log.error("actor_failed", directive=decided, exc_info=error, **fields)
