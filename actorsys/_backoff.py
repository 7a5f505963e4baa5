"""Backoff supervision: restart a child after it stops or fails, waiting longer each time.

The delay before restart ``n`` (counting from 0) is
``min(max_backoff, min_backoff * 2**n) * (1 + random() * random_factor)``; ``n`` goes back to 0
once the child has run for ``reset_after`` seconds without stopping. While the child is down,
messages go to dead letters, or are answered with ``reply_while_down`` when one is configured.
Delays and the reset period run on the system's clock (``ActorSystem(clock=...)``).

This is how a persistent actor rides out a journal outage: it stops on a write failure, and comes
back (and replays) once the journal works again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

from actorsys._actor import Actor
from actorsys._context import ActorFactory
from actorsys._messages import Terminated
from actorsys._ref import ActorRef
from actorsys._supervision import Directive, OneForOneStrategy, SupervisorStrategy

_RESTART = "backoff-restart"
_RESET = "backoff-reset"


@dataclass(frozen=True, slots=True)
class BackoffOptions:
    """How a :class:`BackoffSupervisor` restarts its child."""

    min_backoff: float = 0.2
    max_backoff: float = 30.0
    random_factor: float = 0.2
    reset_after: float | None = None
    """Seconds of uptime after which the backoff starts over (default: ``max_backoff``)."""
    max_retries: int | None = None
    """Give up (and stop the supervisor) after this many restarts in a row; None: never."""
    on: Literal["stop", "failure"] = "stop"
    """Restart when the child stops (for any reason), or only when it fails."""
    reply_while_down: Any = None
    """Answer senders with this while the child is down (None: dead letters)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_backoff <= self.max_backoff:
            raise ValueError("backoff needs 0 < min_backoff <= max_backoff")
        if self.random_factor < 0:
            raise ValueError("random_factor must be >= 0")

    def with_max_retries(self, max_retries: int | None) -> Self:
        return replace(self, max_retries=max_retries)

    def with_reset_after(self, seconds: float | None) -> Self:
        return replace(self, reset_after=seconds)

    def with_reply_while_down(self, reply: Any) -> Self:
        return replace(self, reply_while_down=reply)

    def delay(self, restart_count: int, rnd: Callable[[], float] = random.random) -> float:
        """The wait before restart number ``restart_count`` (0-based)."""
        base = min(self.max_backoff, self.min_backoff * 2.0**restart_count)
        return base * (1.0 + rnd() * self.random_factor)


class BackoffSupervisor(Actor):
    """Keeps one child alive, restarting it with exponential backoff.

    Spawn it with a factory: ``system.spawn(lambda: BackoffSupervisor(Child, "child", options))``.
    Messages sent to the supervisor are forwarded to the child with their sender.
    """

    def __init__(
        self, child_factory: ActorFactory, child_name: str, options: BackoffOptions | None = None
    ) -> None:
        super().__init__()
        self._child_factory = child_factory
        self._child_name = child_name
        self._options = options or BackoffOptions()
        self._child: ActorRef | None = None
        self._child_failed = False
        self._restart_count = 0
        self.supervisor_strategy: SupervisorStrategy = OneForOneStrategy(self._decide)

    @property
    def child(self) -> ActorRef | None:
        """The current child, or None while it is down."""
        return self._child

    @property
    def restart_count(self) -> int:
        """Restarts since the last reset."""
        return self._restart_count

    def _decide(self, error: Exception) -> Directive:
        self._child_failed = True
        return Directive.STOP if self._options.on == "failure" else Directive.RESTART

    def pre_start(self) -> None:
        self._start_child()

    def _start_child(self) -> None:
        self._child_failed = False
        self._child = self.context.spawn(self._child_factory, self._child_name)
        self.context.watch(self._child)
        reset_after = self._options.reset_after or self._options.max_backoff
        self.context.timers.start_single_timer(_RESET, _RESET, reset_after)

    def receive(self, message: Any) -> None:
        if isinstance(message, Terminated) and message.ref == self._child:
            self._child_down()
        elif message == _RESTART and self._child is None:
            self._start_child()
        elif message == _RESET:
            self._restart_count = 0
        elif self._child is not None:
            self.context.forward(message, self._child)
        elif self._options.reply_while_down is not None:
            self.context.sender.tell(self._options.reply_while_down, self.context.self)
        else:
            self.unhandled(message)

    def _child_down(self) -> None:
        self._child = None
        self.context.timers.cancel(_RESET)
        options = self._options
        if options.on == "failure" and not self._child_failed:
            self.context.stop(self.context.self)
            return
        if options.max_retries is not None and self._restart_count >= options.max_retries:
            self.context.log.warning("backoff_gave_up", child=self._child_name)
            self.context.stop(self.context.self)
            return
        delay = options.delay(self._restart_count)
        self._restart_count += 1
        self.context.log.info(
            "backoff_restart_scheduled",
            child=self._child_name,
            attempt=self._restart_count,
            delay=round(delay, 3),
        )
        self.context.timers.start_single_timer(_RESTART, _RESTART, delay)
