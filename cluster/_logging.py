"""Sharding's loggers, as ``actorsys``'s and ``persistence``'s: each package keeps its own (their
helpers are private to them).

The library never configures logging. When the application has configured structlog, library
events go through its pipeline like its own. Otherwise they are written to the standard
``logging`` logger named after the package (``cluster``), so Python's defaults apply: warnings
and errors on stderr, nothing below, until the application sets levels and handlers
(``logging.basicConfig(level=logging.INFO)``). Exceptions travel as ``exc_info`` for the
application's handler to format; local variables are never rendered.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["get_logger"]


def _render(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    exc_info = event_dict.pop("exc_info", None)
    fields = "".join(f" {key}={value!r}" for key, value in event_dict.items() if key != "event")
    return (f"{event_dict.get('event', '')}{fields}",), {"exc_info": exc_info}


class _LibraryLogger:
    """A logger that picks its pipeline when bound: the application's structlog or stdlib."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def bind(self, **values: Any) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(self._name).bind(**values)
        logger = structlog.wrap_logger(
            logging.getLogger(self._name),
            processors=[structlog.stdlib.filter_by_level, _render],
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        return logger.bind(**values)

    def __getattr__(self, method: str) -> Any:
        return getattr(self.bind(), method)


def get_logger(name: str) -> Any:
    """The logger for ``name`` (a package or module); bind actor paths and ids to it."""
    return _LibraryLogger(name)
