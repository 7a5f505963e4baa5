"""The base class of every actor."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from actorsys._cell import constructing_cell
from actorsys._errors import ActorSystemError
from actorsys._supervision import SupervisorStrategy

if TYPE_CHECKING:
    from actorsys._context import ActorContext, Behavior


class Actor:
    """Subclass this and implement :meth:`receive` (a plain function or ``async def``).

    Instances are created by the actor system (``system.spawn(MyActor)``), never directly. An
    actor handles one message at a time; ``await`` inside ``receive`` keeps it busy, and later
    messages wait. Reply with ``self.context.sender.tell(answer)``.

    Set ``supervisor_strategy`` (on the class or the instance) to decide what happens when a
    child fails (default: restart).
    """

    supervisor_strategy: SupervisorStrategy | None = None

    def __init__(self) -> None:
        cell = constructing_cell()
        if cell is None:
            raise ActorSystemError(
                f"{type(self).__name__} instances are created by an actor system: use "
                f"system.spawn({type(self).__name__}) or self.context.spawn(...) instead of "
                f"calling {type(self).__name__}() directly"
            )
        self._actor_cell = cell

    @property
    def context(self) -> ActorContext:
        """This actor's context: self, sender, parent, children, spawn, timers, stash, log, ..."""
        try:
            return self._actor_cell
        except AttributeError:
            raise ActorSystemError(
                f"{type(self).__name__}.__init__ did not call Actor.__init__: "
                "did you forget super().__init__()?"
            ) from None

    def receive(self, message: Any) -> Awaitable[None] | None:
        """Handle one message; the default treats every message as unhandled."""
        self.unhandled(message)
        return None

    def unhandled(self, message: Any) -> None:
        """Report ``message`` as unhandled: it goes to dead letters and is logged."""
        context = self.context
        current = context._current
        sender = current[1] if current.__class__ is tuple else None
        context.system._unhandled(message, sender, context._ref)

    def _around_start(self, restart_reason: Exception | None) -> Awaitable[None] | None:
        """Runtime extension point: ``pre_start``, or ``post_restart`` after a restart.

        Subclasses in this library (the persistent actor) wrap it to run recovery afterwards.
        """
        if restart_reason is None:
            return self.pre_start()
        return self.post_restart(restart_reason)

    def _wrap_behavior(self, behavior: Behavior) -> Behavior:
        """Runtime extension point: what ``context.become(behavior)`` installs.

        Library subclasses (the persistent actor) wrap it, so their own message handling stays
        in front of the user's behaviors.
        """
        return behavior

    def _around_restart(self, reason: Exception, message: Any) -> Awaitable[None] | None:
        """Runtime extension point: ``pre_restart`` on the failed instance."""
        return self.pre_restart(reason, message)

    def _around_stop(self) -> Awaitable[None] | None:
        """Runtime extension point: ``post_stop`` when the actor stops for good."""
        return self.post_stop()

    def pre_start(self) -> Awaitable[None] | None:
        """Called after construction, before the first message."""
        return None

    def post_stop(self) -> Awaitable[None] | None:
        """Called after the actor and its children have stopped."""
        return None

    def pre_restart(self, reason: Exception, message: Any) -> Awaitable[None] | None:
        """Called on the failed instance before a restart; stops the children, then post_stop.

        Override it to keep the children: they are then restarted (with the same reason) once the
        new instance's ``post_restart`` has run, as in Akka.
        """
        context = self.context
        for child in context.children:
            context.stop(child)
        return self.post_stop()

    def post_restart(self, reason: Exception) -> Awaitable[None] | None:
        """Called on the fresh instance after a restart; calls pre_start."""
        return self.pre_start()
