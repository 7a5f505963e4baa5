"""Where the shell's command lines come from: a person at a terminal, or a pipe.

- ``PromptLines``: prompt_toolkit's asynchronous prompt (line editing, history, tab completion).
  Ctrl-C drops the line being typed and prompts again; Ctrl-D on an empty line ends the input.
- ``PipedLines``: lines read from a file descriptor (a pipe or a file), decoded as UTF-8 with
  undecodable bytes replaced. Nothing is written: no banner, no prompt.

Neither keeps the program from exiting: the pipe is read on a daemon thread with ``os.read`` (no
Python file object, so no lock that interpreter shutdown could wait for), one chunk per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

PROMPT = "clients> "
_CHUNK = 64 * 1024

Completions = Callable[[str, str], list[str]]
"""``completions(line_before_cursor, word_before_cursor)``: the candidates for that word."""


class LineSource(Protocol):
    """Command lines, one per ``read``; ``None`` at the end of the input."""

    async def read(self) -> str | None: ...


class PipedLines:
    """Lines from a pipe or a file, read on a daemon thread only when asked for."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._scanned = 0
        self._eof = fd is None
        self._requests: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def read(self) -> str | None:
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                self._scanned = 0
                return line.decode("utf-8", "replace")
            self._scanned = len(self._buffer)
            if self._eof:
                if not self._buffer:
                    return None
                line = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return line.decode("utf-8", "replace")
            chunk = await self._next_chunk()
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True

    def _next_chunk(self) -> asyncio.Future[bytes]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="shell-stdin", daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._requests.put((loop, future))
        return future

    def _serve(self) -> None:
        assert self._fd is not None
        while True:
            loop, future = self._requests.get()
            try:
                chunk = os.read(self._fd, _CHUNK)
            except OSError:
                chunk = b""  # an unreadable input ends like an empty one
            # the loop may be closed by now (the shell exited): nobody waits for this chunk
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, chunk)
            if not chunk:
                return


def _settle(future: asyncio.Future[bytes], chunk: bytes) -> None:
    if not future.done():  # not cancelled meanwhile (Ctrl-C)
        future.set_result(chunk)


class ShellCompleter(Completer):
    """Tab completion from the shell's ``completions`` (command names, client ids, locales)."""

    def __init__(self, completions: Completions) -> None:
        self._completions = completions

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        for candidate in self._completions(document.text_before_cursor, word):
            yield Completion(candidate, start_position=-len(word))


class PromptLines:
    """Lines typed at a terminal, with prompt_toolkit.

    ``input`` and ``output`` default to the process's terminal; tests pass prompt_toolkit's
    ``create_pipe_input()`` and ``DummyOutput()``, and read what is typed from
    ``session.default_buffer``.
    """

    def __init__(
        self,
        completions: Completions,
        history: History,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.session: PromptSession[str] = PromptSession(
            PROMPT,
            completer=ShellCompleter(completions),
            complete_while_typing=False,
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            input=input,
            output=output,
        )

    async def read(self) -> str | None:
        while True:
            try:
                return await self.session.prompt_async()
            except KeyboardInterrupt:
                continue  # Ctrl-C: the line is dropped, the shell goes on
            except EOFError:
                return None  # Ctrl-D on an empty line


def history_at(path: Path | None) -> History:
    """The prompt's history, kept in ``path`` when there is one (and its directory exists)."""
    if path is not None and path.parent.is_dir():
        return FileHistory(path)
    return InMemoryHistory()
