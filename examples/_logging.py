"""Logging set-up for the examples: the application decides, never the library."""

from __future__ import annotations

import logging
import sys


class _OneLine(logging.Formatter):
    """One line per record: tracebacks are left out."""

    def format(self, record: logging.LogRecord) -> str:
        quiet = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(quiet)


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr: everything from INFO with tracebacks when ``verbose``, otherwise errors
    only, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    style = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    handler.setFormatter(
        logging.Formatter(style, "%H:%M:%S") if verbose else _OneLine(style, "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.ERROR)
