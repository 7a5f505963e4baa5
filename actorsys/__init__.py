"""actorsys: actors on asyncio, in the style of Akka's classic actors.

The public names are defined in private modules, one concern each:

- ``_actor``: the ``Actor`` base class; ``_ref``: ``ActorRef``, ``tell`` and ``ask``.
- An actor's runtime, one object in layers: ``_context`` (``ActorContext``, what an actor may use),
  ``_mailbox`` (mailbox values and the queue), ``_fault_handling`` (supervision decisions) and
  ``_cell`` (the drain loop and the lifecycle); ``_lifecycle``: its states and system messages.
- ``_supervision``: supervisor strategies; ``_backoff``: the backoff supervisor.
- ``_system``: ``ActorSystem``, extensions, shutdown; ``_event_stream``, ``_messages``,
  ``_timers``, ``_clock``, ``_errors``, ``_logging``; ``_public``: public names show this module.
- ``actorsys.runtime``: the API for libraries built on actorsys; ``actorsys.testing``: for tests.
"""

from actorsys._actor import Actor
from actorsys._backoff import BackoffOptions, BackoffSupervisor
from actorsys._clock import Cancellable, Clock, LoopClock
from actorsys._context import ActorContext
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
from actorsys._public import publish
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

publish(__name__, globals(), __all__)
