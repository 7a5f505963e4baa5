"""actorsys: actors on asyncio, in the style of Akka's classic actors."""

from actorsys._actor import Actor
from actorsys._backoff import BackoffOptions, BackoffSupervisor
from actorsys._cell import ActorCell as ActorContext
from actorsys._clock import Cancellable, Clock, LoopClock
from actorsys._errors import (
    ActorDeadError,
    ActorError,
    ActorInitializationError,
    ActorKilledError,
    ActorSystemError,
    AskTimeoutError,
    InvalidActorNameError,
    MailboxFullError,
    StashError,
)
from actorsys._event_stream import EventStream
from actorsys._mailbox import BoundedMailbox, MailboxStats, Overflow, UnboundedMailbox
from actorsys._messages import DeadLetter, Kill, PoisonPill, ReceiveTimeout, Terminated
from actorsys._ref import ActorRef
from actorsys._supervision import (
    DEFAULT_STRATEGY,
    AllForOneStrategy,
    Directive,
    OneForOneStrategy,
    SupervisorStrategy,
    default_decider,
)
from actorsys._system import ActorSystem, Extension, run
from actorsys._timers import TimerScheduler

__all__ = [
    "DEFAULT_STRATEGY",
    "Actor",
    "ActorContext",
    "ActorDeadError",
    "ActorError",
    "ActorInitializationError",
    "ActorKilledError",
    "ActorRef",
    "ActorSystem",
    "ActorSystemError",
    "AllForOneStrategy",
    "AskTimeoutError",
    "BackoffOptions",
    "BackoffSupervisor",
    "BoundedMailbox",
    "Cancellable",
    "Clock",
    "DeadLetter",
    "Directive",
    "EventStream",
    "Extension",
    "InvalidActorNameError",
    "Kill",
    "LoopClock",
    "MailboxFullError",
    "MailboxStats",
    "OneForOneStrategy",
    "Overflow",
    "PoisonPill",
    "ReceiveTimeout",
    "StashError",
    "SupervisorStrategy",
    "Terminated",
    "TimerScheduler",
    "UnboundedMailbox",
    "default_decider",
    "run",
]
