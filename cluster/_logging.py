"""Sharding's logger: actorsys's library convention (:func:`actorsys.runtime.get_logger`): the
application's structlog pipeline if it configured one, else the standard ``logging`` logger
``cluster``; the library never configures logging."""

from __future__ import annotations

from actorsys.runtime import get_logger

__all__ = ["get_logger", "log"]

log = get_logger("cluster")
