"""Errors raised by the actor runtime.

::

    ActorError
    ├── ActorDeadError            the target actor has stopped (ask to a stopped actor); says why
    ├── AskTimeoutError           no reply within the ask timeout (names target and timeout)
    ├── ActorInitializationError  the constructor, pre_start or post_restart raised
    ├── ActorKilledError          the actor received Kill
    ├── InvalidActorNameError     the name is malformed or already in use
    ├── MailboxFullError          a bounded mailbox with the FAIL policy is full
    ├── StashError                the current message was already stashed
    └── ActorSystemError          misuse of the system (not started, already shut down, ...)
"""

from __future__ import annotations


class ActorError(Exception):
    """Base class of every error raised by :mod:`actorsys`."""


class ActorDeadError(ActorError):
    """The target actor has stopped.

    When it stopped because of an error (its constructor or ``pre_start`` raised, its supervisor
    stopped it after a failure, its journal failed), the message says so and ``__cause__`` is
    that error.
    """

    def __init__(self, path: str, cause: BaseException | None = None) -> None:
        if cause is None:
            super().__init__(f"actor {path} has stopped")
        else:
            super().__init__(f"actor {path} has stopped: {_describe(cause, path)}")
            self.__cause__ = cause
        self.path = path


class AskTimeoutError(ActorError, TimeoutError):
    """No reply arrived within the ask timeout."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(f"ask to {path} timed out after {timeout:g} s")
        self.path = path
        self.timeout = timeout


class ActorInitializationError(ActorError):
    """The actor's constructor, ``pre_start`` or ``post_restart`` raised."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"actor {path} failed to start: {cause!r}")
        self.path = path
        self.cause = cause
        self.__cause__ = cause


class ActorKilledError(ActorError):
    """The actor processed ``Kill``."""


class InvalidActorNameError(ActorError):
    """The actor name is malformed or already taken."""


class MailboxFullError(ActorError):
    """A bounded mailbox with the ``FAIL`` overflow policy refused a message."""

    def __init__(self, path: str, capacity: int) -> None:
        super().__init__(f"mailbox of {path} is full (capacity {capacity})")
        self.path = path
        self.capacity = capacity


class StashError(ActorError):
    """``stash()`` was called twice for the same message."""


class ActorSystemError(ActorError):
    """The actor system was misused (not running, already shut down, ...)."""


def _describe(cause: BaseException, path: str) -> str:
    """``Type: message``; an actor's own start failure reads ``failed to start: Type: message``."""
    if isinstance(cause, ActorInitializationError) and cause.path == path:
        return f"failed to start: {_describe(cause.cause, path)}"
    text = str(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
