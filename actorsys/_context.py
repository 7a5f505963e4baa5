"""The public ``ActorContext``: what an actor may use of its runtime, and the state behind it.

That state is the actor's children, death watch, behaviors (become), stash, timers, receive
timeout and logger. An actor's runtime is one object: its cell (``_cell.ActorCell``) is a subclass
of ``ActorContext``, stacked Akka-style from this face, the mailbox queue (``_mailbox``) and fault
handling (``_fault_handling``). ``actor.context`` returns the cell typed as ``ActorContext``: an
actor sees this API and nothing of the runtime, and an actor costs no second object. Each layer
declares the slots it owns; what a layer reads of the layers above it is declared for the type
checker only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast, overload

from actorsys._clock import Cancellable
from actorsys._errors import ActorSystemError, InvalidActorNameError, StashError
from actorsys._lifecycle import CREATE, STOP, State
from actorsys._logging import get_logger
from actorsys._messages import ReceiveTimeout, Terminated
from actorsys._timers import TimerScheduler

if TYPE_CHECKING:
    from collections import deque

    from actorsys._actor import Actor
    from actorsys._cell import ActorCell
    from actorsys._mailbox import Mailbox
    from actorsys._ref import ActorRef
    from actorsys._system import ActorSystem

log = get_logger("actorsys")
T = TypeVar("T")

ActorFactory: TypeAlias = Callable[[], "Actor"]
Behavior: TypeAlias = Callable[[Any], Awaitable[None] | None]
Envelope: TypeAlias = tuple[Any, "ActorRef | None"]
"""``(message, sender)``: a message with its sender, as libraries see it (``actorsys.runtime``)."""

RECEIVE: Behavior = cast(Behavior, object())
"""The behavior of an actor that did not ``become``: its own ``receive``, called through the
instance. A marker, not the bound method: a bound method per actor costs 64 bytes."""

NO_ENVELOPE: Envelope = (None, None)
"""The current envelope between two messages."""


def envelope_of(entry: Any) -> Envelope:
    """The ``(message, sender)`` of a mailbox entry.

    A mailbox holds a message told without a sender as the message itself (a tell then allocates
    nothing), and every other message as an envelope tuple; so a plain ``tuple`` in a mailbox is
    always an envelope (``tell`` wraps a tuple message even without a sender).
    """
    return entry if entry.__class__ is tuple else (entry, None)


_VALID_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@&=+,!~*'$;%()"
)


def _check_name(name: str) -> None:
    if not name or name.startswith("$") or not set(name) <= _VALID_NAME_CHARS:
        raise InvalidActorNameError(
            f"invalid actor name {name!r}: use letters, digits and -_.:@&=+,!~*'$;%() "
            "(not empty, not starting with '$')"
        )


class _Rare:
    """An actor's rare state (see :class:`RareField`), created when a value is first set."""

    __slots__ = (
        "_behavior_stack",
        "_capacity",
        "_children_changed",
        "_death_cause",
        "_idle_since",
        "_log",
        "_name_counter",
        "_overflow",
        "_receive_timeout",
        "_restarts",
        "_stash",
        "_termination",
        "_timeout_handle",
        "_timers",
        "_watchers",
        "_watching",
    )


class RareField(Generic[T]):
    """An attribute of an actor's cell that most actors never set (become, stash, timers, death
    watch, a receive timeout, a bounded mailbox, restarts, stopping).

    It lives in a ``_Rare`` object created on the first set, and reads as its default until
    then: an idle actor holds one empty slot instead of sixteen.
    """

    __slots__ = ("_default", "_slot")

    def __init__(self, default: T) -> None:
        self._default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = getattr(_Rare, name)

    @overload
    def __get__(self, context: None, owner: type) -> RareField[T]: ...
    @overload
    def __get__(self, context: ActorContext, owner: type) -> T: ...
    def __get__(self, context: ActorContext | None, owner: type) -> T | RareField[T]:
        if context is None:
            return self
        rare = context._rare
        if rare is None:
            return self._default
        try:
            return self._slot.__get__(rare)  # type: ignore[no-any-return]
        except AttributeError:  # never set
            return self._default

    def __set__(self, context: ActorContext, value: T) -> None:
        rare = context._rare
        if rare is None:
            if value is self._default:
                return
            rare = context._rare = _Rare()
        self._slot.__set__(rare, value)


class ActorContext:
    """What an actor may use of its runtime, reached as ``self.context``.

    Its own ref (``self``) and ``path``, the ``sender`` of the message being handled, its
    ``parent``, ``children`` and ``child(name)``; ``spawn``, ``stop``, ``watch``/``unwatch``,
    ``forward``, ``become``/``unbecome``, ``stash``/``unstash_all``, ``timers``,
    ``set_receive_timeout``/``receive_timeout``, the ``system`` and a ``log`` bound to the actor's
    path. The system creates one per actor; keep the actor's ``ActorRef``, not its context, outside
    the actor.
    """

    __slots__ = (
        "_behavior",
        "_children",
        "_current",
        "_name",
        "_parent",
        "_rare",
        "_ref",
        "system",
    )

    system: ActorSystem
    """The actor system this actor belongs to."""

    # Not annotated: the public class annotates nothing private at run time.
    _behavior_stack = RareField["list[Behavior] | None"](None)
    _stash = RareField["list[Envelope] | None"](None)
    _timers = RareField["TimerScheduler | None"](None)
    _watchers = RareField["set[ActorRef] | None"](None)
    _watching = RareField["set[ActorRef] | None"](None)
    _receive_timeout = RareField["float | None"](None)
    _timeout_handle = RareField[Cancellable | None](None)
    _idle_since = RareField[float](0.0)
    _name_counter = RareField[int](0)
    _log = RareField[Any](None)

    # For the type checker only: at run time the public class annotates nothing private.
    if TYPE_CHECKING:
        _rare: _Rare | None
        _ref: ActorRef
        _current: Any  # the mailbox entry being handled (see envelope_of), NO_ENVELOPE between
        _parent: ActorCell | None
        _name: str
        _children: dict[str, ActorCell] | None
        _behavior: Behavior | None
        # What this face reads or calls of the layers above it (the cell provides them).
        _state: State
        _actor: Actor | None
        _mail: deque[Any] | None
        _scheduled: bool
        _prepend: Callable[[list[Envelope]], None]
        _new_child: Callable[[ActorFactory, str, Mailbox | None], ActorCell]

    @property
    def path(self) -> str:
        """The actor's path, e.g. ``/user/bank/account-7`` (computed: idle actors stay small)."""
        parent = self._parent
        return f"{parent.path}/{self._name}" if parent is not None else f"/{self._name}"

    @property
    def self(self) -> ActorRef:
        """This actor's own ref."""
        return self._ref

    @property
    def sender(self) -> ActorRef:
        """The sender of the message being handled (dead letters when there is none)."""
        current = self._current
        sender = current[1] if current.__class__ is tuple else None
        return sender if sender is not None else self.system.dead_letters

    def _envelope(self) -> Envelope:
        """The envelope being handled, made an envelope tuple in place: the same object for the
        rest of this delivery, so identity tells two deliveries of one message apart."""
        current = self._current
        if current.__class__ is not tuple:
            current = self._current = (current, None)
        return current  # type: ignore[no-any-return]

    @property
    def parent(self) -> ActorRef:
        """The parent's ref (the guardian's own parent is dead letters)."""
        return self._parent._ref if self._parent is not None else self.system.dead_letters

    @property
    def children(self) -> tuple[ActorRef, ...]:
        """Refs of the live children."""
        return tuple(c._ref for c in self._children.values()) if self._children else ()

    def child(self, name: str) -> ActorRef | None:
        """The child with this name, if alive."""
        cell = self._children.get(name) if self._children else None
        return cell._ref if cell is not None else None

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
        if self._state is State.DEAD:
            raise ActorSystemError(
                f"cannot spawn a child of {self.path}: it has stopped (an actor's context is "
                "usable only while the actor runs; keep its ActorRef, not the instance)"
            )
        if self._state >= State.STOPPING:
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
        child = self._new_child(factory, name, mailbox)
        children[name] = child
        child._post_system(CREATE)
        return child._ref

    def _next_name(self) -> str:
        self._name_counter += 1
        n = self._name_counter
        digits = []
        while n:
            n, r = divmod(n - 1, 26)
            digits.append(chr(97 + r))
        return "$" + "".join(reversed(digits))

    def stop(self, ref: ActorRef) -> None:
        """Stop ``ref`` (this actor or a child) after its current message."""
        ref._cell._post_system(STOP)

    def forward(self, message: Any, ref: ActorRef) -> None:
        """Tell ``ref`` the ``message`` with the sender of the message being handled, so that
        ``ref`` answers the original sender (Akka's ``forward``)."""
        current = self._current
        ref.tell(message, current[1] if current.__class__ is tuple else None)

    # ------------------------------------------------------------------ death watch

    def watch(self, ref: ActorRef) -> ActorRef:
        """Receive ``Terminated(ref)`` once ``ref`` stops (at once if it is already dead)."""
        if ref is self._ref:
            return ref
        if self._watching is None:
            self._watching = set()
        if ref in self._watching:
            return ref
        self._watching.add(ref)
        target = ref._cell
        if target._dead:
            self._ref.tell(Terminated(ref))
        else:
            if target._watchers is None:
                target._watchers = set()
            target._watchers.add(self._ref)
        return ref

    def unwatch(self, ref: ActorRef) -> ActorRef:
        """Stop watching ``ref``; a ``Terminated`` already queued is dropped."""
        if self._watching is not None:
            self._watching.discard(ref)
        watchers = ref._cell._watchers
        if watchers is not None:
            watchers.discard(self._ref)
        return ref

    # ------------------------------------------------------------------ become, stash

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
        if self._current is NO_ENVELOPE:
            raise StashError(f"cannot stash: {self.path} is not handling a message")
        current = self._envelope()
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

    # ------------------------------------------------------------------ receive timeout

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

    def _check_receive_timeout(self) -> None:
        timeout = self._receive_timeout
        if timeout is None or self._state >= State.STOPPING:
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
        self._ref.tell(ReceiveTimeout)
