"""Supervision decisions: a failed actor is suspended, and its parent decides what happens to it.

The parent's strategy decides (resume, restart, stop, escalate) within its restart limits; the
directive applies to the failing child or to all its siblings; an escalation fails the parent in
turn, up to the root. The failure is logged once, where it was decided, at a level that depends on
the decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actorsys._context import RareField, envelope_of
from actorsys._lifecycle import RESUME, State, Sys
from actorsys._mailbox import MailboxQueue
from actorsys._ref import _PromiseRef
from actorsys._supervision import DEFAULT_STRATEGY, Directive, SupervisorStrategy

if TYPE_CHECKING:
    from actorsys._cell import ActorCell


class FaultHandling(MailboxQueue):
    """The fault-handling layer of an actor's cell: failing, and deciding about failed children."""

    __slots__ = ("_suspended",)

    _suspended: bool
    """Whether user messages wait: until the actor has started, and while a failure of it is
    being decided."""
    _restarts: RareField[list[float] | None] = RareField(None)
    """When this actor was restarted, for its parent's restart limit."""

    def _fail(self, error: Exception, entry: Any, perpetrator: ActorCell | None = None) -> None:
        """Suspend this actor and ask the parent what to do (the parent logs the failure once it
        has decided, at a level that depends on the decision).

        ``entry`` is the mailbox entry being handled, None for a lifecycle failure.
        ``perpetrator`` is the child whose failure this actor escalated: it stays suspended until
        this actor is resumed (then it is resumed too) or restarted (then it is restarted too).
        """
        self._suspended = True
        message = None
        if entry is not None:
            message, sender = envelope_of(entry)
            if sender.__class__ is _PromiseRef:
                sender.fail(error)
        if self._parent is None:
            self.system._guardian_failed(error)
        else:
            self._parent._post_system((Sys.FAILED, self, error, message, perpetrator))

    def _resume(self, perpetrator: ActorCell | None) -> None:
        """The parent decided to resume this actor (and the child whose failure it escalated)."""
        if self._state is State.RUNNING:
            self._suspended = False
        if perpetrator is not None:  # the child whose failure this actor escalated
            perpetrator._post_system(RESUME)

    def _child_failed(
        self, child: ActorCell, error: Exception, message: Any, perpetrator: ActorCell | None
    ) -> None:
        children = self._children
        if children is None or children.get(child._name) is not child or child._dead:
            log_failure(child, error, message, None, perpetrator)  # it is gone already
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
        log_failure(child, error, message, directive, perpetrator)
        if directive is Directive.RESUME:
            child._post_system((Sys.RESUME, perpetrator))
        elif directive is Directive.RESTART:
            for target in targets:
                target._post_system((Sys.RESTART, error, message if target is child else None))
        elif directive is Directive.STOP:
            for target in targets:
                target._stop_for(error)
        else:
            self._fail(error, None, child)


def log_failure(
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
