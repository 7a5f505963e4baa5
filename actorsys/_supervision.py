"""Supervisor strategies: what a parent does when a child fails."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Self, TypeAlias

from actorsys._errors import ActorInitializationError, ActorKilledError


class Directive(enum.Enum):
    """The parent's answer to a child's failure."""

    RESUME = "resume"
    """Keep the child's state and go on with its next message."""
    RESTART = "restart"
    """Replace the child's instance by a fresh one; the mailbox is kept."""
    STOP = "stop"
    """Stop the child for good."""
    ESCALATE = "escalate"
    """Fail the parent with the same error."""


Decider: TypeAlias = Callable[[Exception], Directive]
DeciderSpec: TypeAlias = Decider | Mapping[type[Exception], Directive]


def default_decider(error: Exception) -> Directive:
    """Stop on initialization errors and ``Kill``, restart on any other exception."""
    if isinstance(error, ActorInitializationError | ActorKilledError):
        return Directive.STOP
    return Directive.RESTART


def _as_decider(spec: DeciderSpec) -> Decider:
    if callable(spec):
        return spec
    table = dict(spec)

    def decide(error: Exception) -> Directive:
        for cls in type(error).__mro__:
            if cls in table:
                return table[cls]
        return Directive.ESCALATE

    return decide


@dataclass(frozen=True, slots=True)
class _Strategy:
    decider: DeciderSpec = default_decider
    max_restarts: int | None = None
    """Restarts allowed within ``within`` seconds; ``None`` means no limit."""
    within: float | None = None
    """The window for ``max_restarts`` in seconds; ``None`` means forever."""
    _decide: Decider = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decide", _as_decider(self.decider))
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0 or None, got {self.max_restarts}")

    def decide(self, error: Exception) -> Directive:
        """The directive for ``error``; a decider that raises escalates."""
        try:
            return self._decide(error)
        except Exception:
            return Directive.ESCALATE

    def with_decider(self, decider: DeciderSpec) -> Self:
        return replace(self, decider=decider)

    def with_limits(self, max_restarts: int | None, within: float | None = None) -> Self:
        return replace(self, max_restarts=max_restarts, within=within)

    def restart_allowed(self, history: list[float], now: float | None = None) -> bool:
        """Record a restart in ``history`` and say whether it stays within the limits.

        ``now`` is the supervising system's clock time (default: ``time.monotonic()``).
        """
        if self.max_restarts is None:
            return True
        now = time.monotonic() if now is None else now
        if self.within is not None:
            history[:] = [t for t in history if now - t < self.within]
        if len(history) >= self.max_restarts:
            return False
        history.append(now)
        return True


@dataclass(frozen=True, slots=True)
class OneForOneStrategy(_Strategy):
    """The directive applies to the failing child only."""

    applies_to_all: bool = field(default=False, init=False)


@dataclass(frozen=True, slots=True)
class AllForOneStrategy(_Strategy):
    """The directive applies to the failing child and all its siblings."""

    applies_to_all: bool = field(default=True, init=False)


SupervisorStrategy: TypeAlias = OneForOneStrategy | AllForOneStrategy

DEFAULT_STRATEGY = OneForOneStrategy()
"""Restart on any ``Exception``, without limit; stop on initialization errors."""
