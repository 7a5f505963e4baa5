"""The shell's two fronts: prompt_toolkit at a terminal (driven with its own pipe input, and once
through a real pseudo-terminal), and plain lines from a pipe."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from examples.client.shell import ClientShell, open_shell, serve
from examples.client.terminal import PipedLines, PromptLines, ShellCompleter
from tests.examples._run import ROOT

CTRL_C = "\x03"
CTRL_D = "\x04"
UP = "\x1b[A"


@pytest.fixture
async def shell() -> AsyncIterator[ClientShell]:
    async with open_shell("memory:", "memory:") as shell:
        yield shell


@pytest.fixture
def keys() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


async def session(shell: ClientShell, keys: PipeInput, typed: str, history: History) -> list[str]:
    """What the shell prints for ``typed`` at its prompt, up to the end of the input."""
    keys.send_text(typed)
    lines = PromptLines(shell.completions, history, input=keys, output=DummyOutput())
    printed: list[str] = []
    await asyncio.wait_for(serve(shell, lines, printed.append), timeout=30)
    return printed


async def test_ctrl_c_at_the_prompt_drops_the_line_and_the_shell_answers_the_next_command(
    shell: ClientShell, keys: PipeInput
) -> None:
    typed = f"register 1 Ada en\rrename 1 Zed 1{CTRL_C}show 1\r{CTRL_D}"
    assert await session(shell, keys, typed, InMemoryHistory()) == [
        "ok: ClientRegistered, client 1: Ada (en), version 1",
        "client 1: Ada (en), version 1",
    ]


async def test_ctrl_d_on_an_empty_line_ends_the_session(
    shell: ClientShell, keys: PipeInput
) -> None:
    assert await session(shell, keys, CTRL_D, InMemoryHistory()) == []


async def test_quit_ends_the_session_and_later_lines_are_not_run(
    shell: ClientShell, keys: PipeInput
) -> None:
    typed = "register 1 Ada en\rQUIT\rregister 2 Bob de\r"
    assert await session(shell, keys, typed, InMemoryHistory()) == [
        "ok: ClientRegistered, client 1: Ada (en), version 1"
    ]


class Typing:
    """A prompt session driven step by step: completion and history loading run in the
    background, so a step waits for what the person would have seen before typing on."""

    def __init__(self, shell: ClientShell, keys: PipeInput, history: History) -> None:
        self.keys = keys
        self.lines = PromptLines(shell.completions, history, input=keys, output=DummyOutput())
        self.buffer = self.lines.session.default_buffer
        self.printed: list[str] = []
        self.task = asyncio.ensure_future(serve(shell, self.lines, self.printed.append))

    async def type(self, text: str, until: Callable[[], bool]) -> None:
        self.keys.send_text(text)
        async with asyncio.timeout(30):
            while not until():
                assert not self.task.done(), self.task
                await asyncio.sleep(0.01)

    async def finish(self) -> list[str]:
        self.keys.send_text(CTRL_D)
        await asyncio.wait_for(self.task, timeout=30)
        return self.printed


async def test_tab_completes_command_names_and_locales(shell: ClientShell, keys: PipeInput) -> None:
    typing = Typing(shell, keys, InMemoryHistory())
    await typing.type("regi\t", until=lambda: typing.buffer.text == "register")
    await typing.type(" 1 Ada z\t", until=lambda: typing.buffer.text == "register 1 Ada zh")
    await typing.type("\r", until=lambda: len(typing.printed) == 1)
    await typing.type("sho\t", until=lambda: typing.buffer.text == "show")
    await typing.type(" 1\r", until=lambda: len(typing.printed) == 2)
    assert await typing.finish() == [
        "ok: ClientRegistered, client 1: Ada (zh), version 1",
        "client 1: Ada (zh), version 1",
    ]


async def test_completion_offers_known_client_ids_after_a_command(shell: ClientShell) -> None:
    await shell.execute("register ada-1 Ada en")
    await shell.execute("register ada-2 Ada en")
    await shell.execute("register bob Bob en")
    await shell.view.catch_up()
    completer = ShellCompleter(shell.completions)
    offered = completer.get_completions(
        Document("show ad"), CompleteEvent(completion_requested=True)
    )
    assert [(c.text, c.start_position) for c in offered] == [("ada-1", -2), ("ada-2", -2)]


async def test_history_is_kept_in_a_file_and_recalled_with_the_up_arrow(
    shell: ClientShell, tmp_path: Path
) -> None:
    history_file = tmp_path / ".shell_history"
    with create_pipe_input() as keys:
        first = await session(
            shell, keys, f"register 1 Ada en\rshow 1\r{CTRL_D}", FileHistory(history_file)
        )
    assert first[-1] == "client 1: Ada (en), version 1"
    assert list(FileHistory(history_file).load_history_strings()) == [
        "show 1",
        "register 1 Ada en",
    ]
    await shell.execute("rename 1 Grace 1")
    with create_pipe_input() as keys:
        typing = Typing(shell, keys, FileHistory(history_file))
        # the history loads in the background: the person sees it before pressing the arrow
        await typing.type("", until=lambda: typing.buffer.working_index == 2)
        await typing.type(f"{UP}\r", until=lambda: len(typing.printed) == 1)
        assert await typing.finish() == ["client 1: Grace (en), version 2"]


async def test_piped_lines_keep_their_bytes_apart_and_replace_what_is_not_utf8() -> None:
    read_end, write_end = os.pipe()
    long_line = "é" * 200_000
    os.write(write_end, b"one\n\n\xff\xfe bad\r\n")
    writer = asyncio.get_running_loop().run_in_executor(
        None, os.write, write_end, f"{long_line}\nlast without newline".encode()
    )
    lines = PipedLines(read_end)
    try:
        assert await lines.read() == "one\n"
        assert await lines.read() == "\n"
        assert await lines.read() == "\ufffd\ufffd bad\r\n"
        assert await lines.read() == long_line + "\n"
        await writer
        os.close(write_end)
        assert await lines.read() == "last without newline"
        assert await lines.read() is None
        assert await lines.read() is None
    finally:
        os.close(read_end)


async def test_piped_lines_without_an_input_end_at_once() -> None:
    assert await PipedLines(None).read() is None


# ---------------------------------------------------------------------- a real terminal


_CONTROL_SEQUENCE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>])")


class Terminal:
    """The shell on a pseudo-terminal, read and typed into like a person would."""

    def __init__(self, tmp_path: Path) -> None:
        self.master, slave = pty.openpty()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TERM": "xterm",
            "PROMPT_TOOLKIT_NO_CPR": "1",  # nobody answers cursor-position requests here
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.client", "--journal", "memory:"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=tmp_path,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""
        self.seen = 0  # how much of ``text`` earlier waits have consumed

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    @property
    def text(self) -> str:
        """What was shown so far, without the terminal's control sequences."""
        return _CONTROL_SEQUENCE.sub("", self.screen.decode("utf-8", "replace"))

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Read the terminal until ``text`` shows up after what earlier waits matched (it may
        have arrived in the same read as their text)."""
        start = self.seen
        deadline = time.monotonic() + timeout
        while text not in self.text[start:]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} did not show; the terminal shows {self.text!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # the shell exited and closed the terminal
                    break
        found = self.text.find(text, start)
        assert found >= 0, self.text
        self.seen = found + len(text)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self.master)


@pytest.mark.slow
def test_on_a_real_terminal_ctrl_c_clears_the_line_and_the_next_command_is_answered(
    tmp_path: Path,
) -> None:
    terminal = Terminal(tmp_path)
    try:
        terminal.wait_for("clients>")
        terminal.type("register 1 Ada en\r")
        terminal.wait_for("ok: ClientRegistered, client 1: Ada (en), version 1")
        terminal.wait_for("clients>")
        terminal.type("rename 1 Zed 1")
        terminal.wait_for("Zed 1")
        terminal.type(CTRL_C)
        terminal.wait_for("clients>")
        terminal.type("show 1\r")
        terminal.wait_for("client 1: Ada (en), version 1")
        terminal.wait_for("clients>")
        terminal.type(CTRL_D)
        assert terminal.process.wait(timeout=30) == 0
    finally:
        terminal.close()
    assert "Traceback" not in terminal.text
    assert "ClientNameChanged" not in terminal.text
