"""The README's main job: the ClientActor shell driven through a pipe, restarted, and checked."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples._run import ROOT, run_module

pytestmark = pytest.mark.slow

SESSION_1 = """\
register 7 Ada en
register 7 Ada en
rename 7 Grace 1
rename 7 Stale 1
locale 7 de 2
locale 7 xx 3
show 7
crash 7
by-locale de
at 7 1
snapshot 7
passivate 7
show 7
rename 8 Bob 0
rename 7
rename 7 Grace two
frobnicate
quit
"""

EXPECTED_1 = [
    "ok: ClientRegistered, client 7: Ada (en), version 1",
    "rejected: client 7 is already registered",
    "ok: ClientNameChanged, client 7: Grace (en), version 2",
    "rejected: expected version 1 but client 7 is at version 2 "
    "(first writer wins: show it and retry with its version)",
    "ok: ClientLocaleChanged, client 7: Grace (de), version 3",
    "rejected: unknown locale 'xx'; known: ar, da, de, en, es, fi, fr, it, ja, ko, nl, no, pl, "
    "pt, ru, sv, tr, uk, zh",
    "client 7: Grace (de), version 3",
    "client 7 crashed (crash requested from the shell); its supervisor restarted it and replay "
    "(3 events) restored: client 7: Grace (de), version 3",
    "clients with locale de: 7",
    "after event 1: client 7: Ada (en), version 1",
    "ok: snapshot of client 7 saved at sequence_nr 3",
    "ok: client 7 passivated; the next command brings it back by replay",
    "client 7: Grace (de), version 3",
    "no client 8: register it first",
    "usage: rename ID NAME EXPECTED_VERSION",
    "usage: EXPECTED_VERSION must be a whole number, got 'two'; usage: rename ID NAME "
    "EXPECTED_VERSION",
    "error: unknown command 'frobnicate'; type 'help' for the list",
]

SESSION_2 = """\
show 7
history 7
by-locale de
by-locale en
clients
"""


def test_scripted_session_survives_a_crash_and_a_restart_of_the_shell(tmp_path: Path) -> None:
    """register, rename with a stale version rejected, crash, restart the shell, history."""
    journal = f"sqlite:{tmp_path / 'data' / 'clients.db'}"
    first = run_module("examples.client", "--journal", journal, stdin=SESSION_1)
    assert first.stdout.splitlines() == EXPECTED_1

    second = run_module("examples.client", "--journal", journal, stdin=SESSION_2)
    lines = second.stdout.splitlines()
    assert lines[0] == "client 7: Grace (de), version 3"
    assert lines[1] == "history of client 7 (3 events):"
    assert lines[2].startswith("  #1 ")
    assert lines[2].endswith("ClientRegistered name='Ada' locale='en' version=1")
    assert lines[3].endswith("ClientNameChanged name='Grace' version=2")
    assert lines[4].endswith("ClientLocaleChanged locale='de' version=3")
    assert lines[5] == "clients with locale de: 7"
    assert lines[6] == "no clients with locale en"
    assert lines[7:] == ["1 clients:", "  7 (running)"]


def test_shell_runs_on_the_file_journal_and_in_memory(tmp_path: Path) -> None:
    for journal in (f"file:{tmp_path / 'journal'}", "memory:"):
        result = run_module(
            "examples.client", "--journal", journal, stdin="register 1 Lin fr\nstats\n"
        )
        assert result.stdout.splitlines() == [
            "ok: ClientRegistered, client 1: Lin (fr), version 1",
            "clients running: 1, events stored: 1, read-side offset: 1, dead letters: 0",
        ]


def test_help_lists_every_command() -> None:
    result = run_module("examples.client", "--journal", "memory:", stdin="help\nhelp at\n")
    text = result.stdout
    for command in (
        "register",
        "rename",
        "locale",
        "show",
        "history",
        "at",
        "snapshot",
        "crash",
        "passivate",
        "clients",
        "by-locale",
        "stats",
        "help",
        "quit",
    ):
        assert f"  {command}" in text
    assert text.splitlines()[-1] == "at ID SEQ: a client's state after event SEQ, by replay"


def test_a_garbage_sqlite_journal_is_one_clear_error_and_a_prompt_exit(tmp_path: Path) -> None:
    journal = tmp_path / "data" / "clients.db"
    journal.parent.mkdir()
    journal.write_bytes(random.Random(13).randbytes(8192))
    result = run_module(
        "examples.client",
        "--journal",
        f"sqlite:{journal}",
        stdin="show 1\n",
        timeout=30,
        exit_code=2,
    )
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot open sqlite journal {str(journal)!r}: file is not a database\n"
    )
    assert not (tmp_path / "data" / "clients.view.db").exists()


def test_a_garbage_file_journal_segment_is_one_clear_error_and_a_prompt_exit(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    segment = directory / "00000001.log"
    segment.write_bytes(random.Random(13).randbytes(8192))
    result = run_module(
        "examples.client",
        "--journal",
        f"file:{directory}",
        stdin="show 1\n",
        timeout=30,
        exit_code=2,
    )
    assert result.stdout == ""
    assert result.stderr == (
        f"error: journal corrupted in {str(segment)!r} at offset 0: not a journal segment "
        "(bad header)\n"
    )


def test_a_garbage_read_side_database_is_one_clear_error_and_a_prompt_exit(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "clients.db"
    view = tmp_path / "clients.view.db"
    view.write_bytes(random.Random(13).randbytes(8192))
    result = run_module(
        "examples.client",
        "--journal",
        f"sqlite:{journal}",
        stdin="stats\n",
        timeout=30,
        exit_code=2,
    )
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot read the read side's database {str(view)!r}: file is not a database\n"
    )


def test_output_piped_into_a_reader_that_stops_early_ends_the_shell_quietly() -> None:
    """``python -m examples.client | head -1``: the reader goes away, no traceback follows."""
    shell = subprocess.Popen(
        [sys.executable, "-m", "examples.client", "--journal", "memory:"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert shell.stdin is not None
    assert shell.stdout is not None
    assert shell.stderr is not None
    # far more output than a pipe buffers, so the shell is still writing when the reader leaves
    shell.stdin.write(b"help\n" * 2000)
    shell.stdin.close()
    assert shell.stdout.readline() == b"commands:\n"
    shell.stdout.close()
    try:
        assert shell.wait(timeout=30) == 1
    finally:
        shell.kill()
    assert shell.stderr.read() == b""
    shell.stderr.close()


def test_names_print_on_a_terminal_that_cannot_encode_them(tmp_path: Path) -> None:
    result = run_module(
        "examples.client",
        "--journal",
        "memory:",
        stdin="register 1 'Zoë 李'\n",
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert result.stdout == "ok: ClientRegistered, client 1: Zo\\xeb \\u674e (en), version 1\n"


def test_without_verbose_a_crash_logs_one_line_and_with_verbose_its_traceback() -> None:
    script = "register 1 Ada en\ncrash 1\n"
    quiet = run_module("examples.client", "--journal", "memory:", stdin=script)
    (line,) = quiet.stderr.splitlines()
    assert " ERROR " in line
    assert "actor_failed" in line
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    verbose = subprocess.run(
        [sys.executable, "-m", "examples.client", "--journal", "memory:", "--verbose"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=True,
    )
    assert "Traceback" in verbose.stderr
    assert "examples.client.entity.SimulatedCrash: crash requested from the shell" in verbose.stderr


def _sigint_by_default() -> None:
    """In the child: SIGINT as Python expects it (a parent started from a background job may
    have it ignored, which the child would inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_the_piped_shell_waits_for_input_ends_it_at_once() -> None:
    """SIGINT with the input still open: exit status 130, no traceback, no wait for more input."""
    shell = subprocess.Popen(
        [sys.executable, "-m", "examples.client", "--journal", "memory:"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_sigint_by_default,  # noqa: PLW1509 - only a signal disposition, no locks
    )
    with shell:
        assert shell.stdin is not None
        assert shell.stdout is not None
        assert shell.stderr is not None
        try:
            shell.stdin.write(b"stats\n")
            shell.stdin.flush()
            assert shell.stdout.readline() == (
                b"clients running: 0, events stored: 0, read-side offset: 0, dead letters: 0\n"
            )
            shell.send_signal(signal.SIGINT)
            assert shell.wait(timeout=30) == 130
        finally:
            shell.kill()
            shell.wait()
        assert shell.stderr.read() == b""


def test_journal_url_options_do_not_leak_into_the_snapshot_view_or_history_paths(
    tmp_path: Path,
) -> None:
    script = "register 1 Ada en\nsnapshot 1\nby-locale en\n"
    expected = [
        "ok: ClientRegistered, client 1: Ada (en), version 1",
        "ok: snapshot of client 1 saved at sequence_nr 1",
        "clients with locale en: 1",
    ]
    directory = tmp_path / "journal"
    files = run_module(
        "examples.client", "--journal", f"file:{directory}?fsync=never", stdin=script
    )
    assert files.stdout.splitlines() == expected
    assert (directory / "snapshots" / "client-1").is_dir()

    database = tmp_path / "clients"
    sqlite = run_module(
        "examples.client", "--journal", f"sqlite:{database}?synchronous=normal", stdin=script
    )
    assert sqlite.stdout.splitlines() == expected
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("clients")) == [
        "clients",
        "clients.view.db",
    ]
