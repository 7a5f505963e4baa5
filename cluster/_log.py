"""The logger of the cluster's NATS side (see :mod:`cluster._logging`)."""

from __future__ import annotations

from cluster._logging import get_logger

log = get_logger("cluster")
