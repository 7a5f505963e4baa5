"""Logging set-up for the examples: the application decides, never the library."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr: everything from INFO with ``verbose``, otherwise errors only, one line each
    (tracebacks only with ``verbose``)."""

    def drop_tracebacks(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        if not verbose:
            event.pop("exc_info", None)
        return event

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            drop_tracebacks,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.CRITICAL
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
