"""The shell's commands in one process: which client ids are valid, and commands on ids that were
never registered start no actor and store nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from examples.client.shell import ClientShell, open_shell

RULE = "use 1 to 32 lowercase ASCII letters, digits, '-' or '_', starting with a letter or digit"
NO_CLIENT_9 = "no client 9: register it first"
NOTHING_RUNNING = "clients running: 0, events stored: 0, read-side offset: 0, dead letters: 0"


@pytest.fixture(params=["sqlite", "file"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'data' / 'clients.db'}"
    return f"file:{tmp_path / 'journal'}"


@pytest.fixture
async def shell(journal_url: str, tmp_path: Path) -> AsyncIterator[ClientShell]:
    async with open_shell(journal_url, f"file:{tmp_path / 'snapshots'}") as shell:
        yield shell


async def running(shell: ClientShell) -> list[str]:
    return await shell.running_here()


@pytest.mark.parametrize(
    ("client_id", "shown"),
    [
        ('"a/b"', "'a/b'"),
        ('"a b"', "'a b'"),
        ("é", "'é'"),
        ("Ada", "'Ada'"),
        ("'$x'", "'$x'"),
        ("../up", "'../up'"),
        ("a.b", "'a.b'"),
        ("_x", "'_x'"),
        ('""', "''"),
        ("x" * 33, repr("x" * 33)),
        ("x" * 50, f"{'x' * 40!r}... (50 characters)"),
    ],
)
async def test_an_invalid_client_id_is_refused_with_the_rule_and_starts_nothing(
    shell: ClientShell, client_id: str, shown: str
) -> None:
    refusal = f"error: invalid client id {shown}: {RULE}"
    for line in (
        f"register {client_id} Ada en",
        f"rename {client_id} Grace 1",
        f"locale {client_id} de 1",
        f"show {client_id}",
        f"history {client_id}",
        f"at {client_id} 1",
        f"snapshot {client_id}",
        f"crash {client_id}",
        f"passivate {client_id}",
    ):
        assert await shell.execute(line) == refusal, line
    assert await shell.execute("stats") == NOTHING_RUNNING
    assert await shell.execute("clients") == "no clients registered"


async def test_help_says_what_a_client_id_is(shell: ClientShell) -> None:
    help_text = await shell.execute("help")
    assert help_text.splitlines()[-1] == (
        "ID: a client id, 1 to 32 lowercase ASCII letters, digits, '-' or '_', starting with a "
        "letter or digit"
    )


@pytest.mark.parametrize("client_id", ["a", "7", "a-b_c", "0-", "z" * 32])
async def test_valid_ids_of_every_shape_work_on_the_journal_and_the_snapshot_store(
    shell: ClientShell, client_id: str, tmp_path: Path
) -> None:
    assert await shell.execute(f"register {client_id} Ada fr") == (
        f"ok: ClientRegistered, client {client_id}: Ada (fr), version 1"
    )
    assert await shell.execute(f"snapshot {client_id}") == (
        f"ok: snapshot of client {client_id} saved at sequence_nr 1"
    )
    assert (tmp_path / "snapshots" / f"client-{client_id}").is_dir()
    assert await shell.execute(f"passivate {client_id}") == (
        f"ok: client {client_id} passivated; the next command brings it back by replay"
    )
    assert await shell.execute(f"show {client_id}") == f"client {client_id}: Ada (fr), version 1"
    assert await shell.execute("by-locale fr") == f"clients with locale fr: {client_id}"


async def test_commands_on_an_unknown_id_start_no_actor_and_take_no_snapshot(
    shell: ClientShell, tmp_path: Path
) -> None:
    for line in (
        "show 9",
        "rename 9 Grace 0",
        "locale 9 de 0",
        "history 9",
        "at 9 1",
        "snapshot 9",
        "crash 9",
        "passivate 9",
    ):
        assert await shell.execute(line) == NO_CLIENT_9, line
    assert await running(shell) == []
    assert await shell.execute("stats") == NOTHING_RUNNING
    assert not (tmp_path / "snapshots" / "client-9").exists()


async def test_a_registration_rejected_for_its_name_or_locale_starts_no_actor(
    shell: ClientShell,
) -> None:
    assert await shell.execute("register 9 Ada xx") == (
        "rejected: unknown locale 'xx'; known: ar, da, de, en, es, fi, fr, it, ja, ko, nl, no, "
        "pl, pt, ru, sv, tr, uk, zh"
    )
    assert await shell.execute('register 9 "  "') == "rejected: the name must not be empty"
    assert await running(shell) == []
    assert await shell.execute("show 9") == NO_CLIENT_9


async def test_stats_counts_the_registered_clients_that_are_running(shell: ClientShell) -> None:
    await shell.execute("register 1 Ada en")
    await shell.execute("register 2 Bob de")
    await shell.execute("show 3")
    assert (await shell.execute("stats")).startswith("clients running: 2, events stored: 2,")
    await shell.execute("passivate 1")
    assert (await shell.execute("stats")).startswith("clients running: 1, events stored: 2,")
    assert await running(shell) == ["2"]


async def test_names_with_control_characters_or_over_100_characters_are_rejected(
    shell: ClientShell,
) -> None:
    assert await shell.execute("register 1 'Ada\x1b[31m'") == (
        "rejected: the name 'Ada\\x1b[31m' contains a control character or a line break; "
        "use printable characters"
    )
    assert await shell.execute("register 1 'A\u2028B'") == (
        "rejected: the name 'A\\u2028B' contains a control character or a line break; "
        "use printable characters"
    )
    assert await shell.execute(f"register 1 {'n' * 101}") == (
        "rejected: the name must be at most 100 characters, got 101"
    )
    assert await shell.execute("register 1 'Zoë 李 🙂'") == (
        "ok: ClientRegistered, client 1: Zoë 李 🙂 (en), version 1"
    )


async def test_numbers_beyond_the_largest_sequence_number_are_a_usage_error(
    shell: ClientShell,
) -> None:
    await shell.execute("register 1 Ada en")
    assert await shell.execute(f"at 1 {2**63}") == (
        "usage: SEQ must be at most 9223372036854775807; usage: at ID SEQ"
    )
    assert await shell.execute(f"rename 1 Bob {2**63}") == (
        "usage: EXPECTED_VERSION must be at most 9223372036854775807; "
        "usage: rename ID NAME EXPECTED_VERSION"
    )
    assert await shell.execute(f"at 1 {'9' * 5000}") == (
        f"usage: SEQ must be a whole number, got {'9' * 40!r}... (5000 characters); "
        "usage: at ID SEQ"
    )
    assert await shell.execute(f"at 1 {2**63 - 1}") == (
        "client 1 has only 1 events; after event 1: client 1: Ada (en), version 1"
    )


async def test_a_line_over_the_limit_is_refused_and_long_words_are_shown_cut_short(
    shell: ClientShell,
) -> None:
    assert await shell.execute("x" * 10_001) == (
        "error: the line is 10001 characters long; the limit is 10000"
    )
    assert await shell.execute("y" * 10_000) == (
        f"error: unknown command {'y' * 40!r}... (10000 characters); type 'help' for the list"
    )


async def test_an_unexpected_error_is_one_line_logged_with_its_traceback_and_the_shell_goes_on(
    shell: ClientShell, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(args: list[str]) -> str:
        raise RuntimeError("boom")

    monkeypatch.setitem(shell.commands, "stats", replace(shell.commands["stats"], run=broken))
    assert await shell.execute("stats") == (
        "error: stats failed unexpectedly (RuntimeError: boom); "
        "run the shell with --verbose to log the details"
    )
    failures = [r for r in caplog.records if r.name == "examples.client"]
    assert [(r.levelname, r.getMessage()) for r in failures] == [
        ("ERROR", "command_failed command='stats'")
    ]
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)
    assert await shell.execute("show 9") == NO_CLIENT_9


async def test_nodes_without_a_cluster_is_this_process_alone(shell: ClientShell) -> None:
    assert await shell.execute("nodes") == (
        "1 node: this one (no cluster: run with --cluster NATS_URL to join one)"
    )


async def test_shards_lists_the_started_shards_with_their_running_clients(
    shell: ClientShell,
) -> None:
    assert await shell.execute("shards") == (
        "no shards started yet: they start with their clients' first command"
    )
    await shell.execute("register 1 Ada en")
    await shell.execute("register 2 Bob de")
    await shell.execute("passivate 2")
    assert (await shell.execute("shards")).splitlines() == [
        "2 of 30 shards started, 1 clients running:",
        "  local (this node): 2 shards, 1 clients running",
        "    shards (clients): 7 (0), 23 (1)",
    ]


async def test_passivating_a_client_that_is_not_running_says_so(shell: ClientShell) -> None:
    await shell.execute("register 1 Ada en")
    assert await shell.execute("passivate 1") == (
        "ok: client 1 passivated; the next command brings it back by replay"
    )
    assert await shell.execute("passivate 1") == "client 1 was not running"
    assert await running(shell) == []
