"""Syncing a directory, so that the files created, renamed or removed in it survive a power loss.

Shared by the file journal and the file snapshot store; imports nothing of the actor system.
"""

from __future__ import annotations

import os

__all__ = ["sync_directory"]


def sync_directory(path: str) -> None:
    """``fsync`` the directory ``path``: its entries (new, renamed, removed files) are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
