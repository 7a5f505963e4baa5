"""PostgreSQL by URL wherever URLs are accepted: the shell's ``--journal``, ``python -m
persistence ids|dump``, and ``Persistence(...)``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from persistence import open_journal, open_snapshot_store
from persistence.journal import PostgresJournal
from persistence.snapshot import PostgresSnapshotStore
from persistence.testing._postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_both_url_schemes_open_the_postgresql_journal_and_snapshot_store(
    postgres_server: PostgresServer,
) -> None:
    short = postgres_server.dsn.replace("postgresql://", "postgres://", 1)
    for url in (postgres_server.dsn, short):
        assert isinstance(open_journal(url), PostgresJournal)
        assert isinstance(open_snapshot_store(url), PostgresSnapshotStore)


def test_the_shell_runs_on_postgresql_and_the_tools_read_what_it_stored(
    postgres_server: PostgresServer,
) -> None:
    dsn = postgres_server.dsn
    first = _run("examples.client", "--journal", dsn, stdin="register 7 Ada en\nsnapshot 7\n")
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [
        "ok: ClientRegistered, client 7: Ada (en), version 1",
        "ok: snapshot of client 7 saved at sequence_nr 1",
    ]
    again = _run("examples.client", "--journal", dsn, stdin="show 7\n")  # a new process
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        "client 7: Ada (en), version 1\n",
        "",
    )
    ids = _run("persistence", "ids", dsn)
    assert (ids.returncode, ids.stdout.split(), ids.stderr) == (0, ["client-7"], "")
    dump = _run("persistence", "dump", dsn, "client-7")
    assert dump.returncode == 0
    [line] = dump.stdout.splitlines()
    assert json.loads(line)["payload"] == {
        "client_id": "7",
        "name": "Ada",
        "locale": "en",
        "version": 1,
    }
