"""An actor's lifecycle states and the system messages that move it between them.

NEW -> RUNNING <-> (failed: suspended until the parent decides) -> STOPPING -> DEAD, with
RESTARTING while a failed actor's instance is replaced. System messages (create, failed, resume,
restart, stop) are processed before user messages, always between two user messages.
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    NEW = 0
    RUNNING = 1
    RESTARTING = 2
    STOPPING = 3
    DEAD = 4


class Sys(enum.Enum):
    CREATE = 0
    FAILED = 1
    RESUME = 2
    RESTART = 3
    STOP = 4


CREATE = (Sys.CREATE,)
STOP = (Sys.STOP,)
RESUME = (Sys.RESUME, None)
