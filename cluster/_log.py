"""The cluster's logger (structlog API, routed to the stdlib logger ``cluster`` unless the
application configured structlog; the library never configures logging)."""

from __future__ import annotations

from persistence._logging import get_logger

log = get_logger("cluster")
