"""``python -m persistence``: ids, dump and verify, with clear errors and exit statuses."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from persistence import JournalError
from persistence._cli import main
from persistence.journal import AtomicWrite, FileJournal, PersistentRecord, SqliteJournal

ROOT = Path(__file__).resolve().parent.parent


def make_journal(directory: Path) -> None:
    async def write() -> None:
        journal = FileJournal(directory)
        deposit = msgpack.packb({"amount": 5, "raw": b"\x01\x02", 3: [1.5, None]})
        await journal.write(
            [
                AtomicWrite(
                    [
                        PersistentRecord("acc-2", 1, "Opened", msgpack.packb("x"), "w-1", 100),
                        PersistentRecord("acc-2", 2, "Deposited", deposit, "w-1", 101, ("big",)),
                    ]
                ),
                AtomicWrite([PersistentRecord("acc-1", 1, "Opened", b"\xc1", "w-2", 102)]),
            ]
        )
        await journal.close()

    asyncio.run(write())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persistence", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_ids_lists_every_persistence_id_in_first_write_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    assert main(["ids", f"file:{tmp_path}"]) == 0
    assert capsys.readouterr().out == "acc-2\nacc-1\n"


def test_dump_prints_each_event_as_a_json_line_with_a_plain_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    assert main(["dump", f"file:{tmp_path}", "acc-2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "sequence_nr": 1,
            "manifest": "Opened",
            "timestamp": 100,
            "writer_id": "w-1",
            "tags": [],
            "payload": "x",
        },
        {
            "sequence_nr": 2,
            "manifest": "Deposited",
            "timestamp": 101,
            "writer_id": "w-1",
            "tags": ["big"],
            "payload": {"amount": 5, "raw": "AQI=", "3": [1.5, None]},
        },
    ]


def test_dump_shows_an_undecodable_payload_as_base64_instead_of_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    assert main(["dump", f"file:{tmp_path}", "acc-1"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    payload = json.loads(line)["payload"]
    assert payload["$undecodable"] == "wQ=="
    assert "cannot decode 'Opened'" in payload["$error"]


def test_dump_of_an_unknown_id_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    assert main(["dump", f"file:{tmp_path}", "nobody"]) == 0
    assert capsys.readouterr().out == ""


def test_verify_summarises_a_sound_journal_without_changing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    before = (tmp_path / "00000001.log").read_bytes()
    assert main(["verify", f"file:{tmp_path}"]) == 0
    assert capsys.readouterr().out == (
        f"ok: 2 records (3 events of 2 persistence ids, 0 deletions) in 1 segment files of "
        f"{len(before)} bytes in all, highest ordering 3\n"
    )
    assert (tmp_path / "00000001.log").read_bytes() == before


def test_verify_reports_a_torn_tail_but_leaves_it_for_the_next_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    segment = tmp_path / "00000001.log"
    size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x00\x01\x02")
    assert main(["verify", f"file:{tmp_path}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        f"torn tail: {segment} at offset {size}, 3 bytes (incomplete record header): a write cut "
        "short by a crash or a damaged last record, possibly acknowledged (the files do not "
        "record the fsync mode they were written with); the next read-write open truncates it"
    )
    assert segment.stat().st_size == size + 3


def test_verify_calls_a_bad_last_record_possibly_acknowledged_even_if_written_synced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)  # written with fsync="always": every write was synced, then acked
    segment = tmp_path / "00000001.log"
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0x01  # media damage to the last, acknowledged record
    segment.write_bytes(bytes(data))
    assert main(["verify", f"file:{tmp_path}"]) == 0
    torn = capsys.readouterr().out.splitlines()[1]
    assert torn.startswith(f"torn tail: {segment} at offset ")
    assert "(record body checksum mismatch): " in torn
    assert "possibly acknowledged" in torn
    assert "never acknowledged" not in torn


def segments(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".log")]


@pytest.mark.parametrize(
    ("missing", "following"), [("00000001.log", "00000002.log"), ("00000002.log", "00000003.log")]
)
def test_verify_exits_1_naming_a_missing_segment(
    tmp_path: Path, missing: str, following: str
) -> None:
    async def write_three_segments() -> None:
        journal = FileJournal(tmp_path, segment_size=256)
        seq = 0
        while len(segments(tmp_path)) < 3:
            seq += 1
            record = PersistentRecord("a", seq, "Counted", msgpack.packb(seq), "w", seq)
            assert await journal.write([AtomicWrite([record])]) == [None]
        await journal.close()

    asyncio.run(write_three_segments())
    (tmp_path / missing).unlink()
    result = run("verify", f"file:{tmp_path}")
    assert (result.returncode, result.stderr) == (1, "")
    corrupted, checked = result.stdout.splitlines()
    assert corrupted == (
        f"corrupted: {tmp_path / missing} at offset 0: segment file is missing, but {following} "
        "exists: segments are numbered from 1 without gaps and never removed; restore it from a "
        "backup"
    )
    assert checked.startswith("checked ")
    assert (checked == "checked 0 good records before it") == (missing == "00000001.log")


def test_verify_exits_1_naming_the_file_and_offset_of_corruption(tmp_path: Path) -> None:
    make_journal(tmp_path)
    segment = tmp_path / "00000001.log"
    data = bytearray(segment.read_bytes())
    data[30] ^= 0x01  # inside the first record's body; a valid record follows
    segment.write_bytes(bytes(data))
    result = run("verify", f"file:{tmp_path}")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(
        f"corrupted: {segment} at offset 8: record body checksum mismatch, followed by a valid "
        "record at offset"
    )
    assert result.stderr == ""


def test_verify_checks_a_sqlite_journal_with_its_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    result = run("verify", f"sqlite:{path}")
    assert (result.returncode, result.stdout) == (
        0,
        f"ok: {path} passes sqlite's integrity_check\n",
    )
    path.write_bytes(b"this is not a database" * 100)
    result = run("verify", f"sqlite:{path}")
    assert result.returncode == 1
    assert result.stdout == f"corrupted: {path}: file is not a database\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ids", "file:{tmp}/missing"],
            "error: no file journal at '{tmp}/missing': the directory does not exist",
        ),
        (
            ["dump", "nfs:{tmp}", "a"],
            "error: unsupported journal URL 'nfs:{tmp}': use 'memory:', 'sqlite:PATH' (e.g. "
            "'sqlite:data/bank.db', optionally '?synchronous=full|normal|off'), 'file:DIR' "
            "(e.g. 'file:data/journal', optionally '?fsync=always|batch|never') or "
            "'postgresql://USER@HOST:PORT/DB' (or 'postgres://...')",
        ),
        (
            ["ids", "memory:"],
            "error: a memory: journal lives inside one process: there is nothing to inspect",
        ),
        (
            ["verify", "sqlite:{tmp}/none.db"],
            "error: no sqlite journal at '{tmp}/none.db': the file does not exist",
        ),
    ],
)
def test_errors_print_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == message.format(tmp=tmp_path) + "\n"


def directory_state(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of ``directory`` with its size, modification time and contents."""
    return {
        path.name: (path.stat().st_size, path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(directory.iterdir())
    }


HOLD_OPEN = """
import asyncio, sys
from persistence.journal import FileJournal

async def main():
    journal = FileJournal(sys.argv[1])
    await journal.highest_ordering()
    print("open", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await journal.close()

asyncio.run(main())
"""


def test_ids_and_dump_read_a_journal_another_process_holds_open_and_change_nothing(
    tmp_path: Path,
) -> None:
    make_journal(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "open\n"
        before = directory_state(tmp_path)
        with pytest.raises(JournalError, match="is in use by another process"):
            asyncio.run(FileJournal(tmp_path).highest_ordering())  # the lock is held

        ids = run("ids", f"file:{tmp_path}")
        dump = run("dump", f"file:{tmp_path}", "acc-2")
        assert (ids.returncode, ids.stdout, ids.stderr) == (0, "acc-2\nacc-1\n", "")
        assert (dump.returncode, dump.stderr) == (0, "")
        assert [json.loads(line)["sequence_nr"] for line in dump.stdout.splitlines()] == [1, 2]
        assert directory_state(tmp_path) == before
    finally:
        holder.communicate(timeout=30)
    assert holder.returncode == 0


def test_ids_creates_no_lock_file_in_a_copy_of_the_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_journal(tmp_path)
    (tmp_path / "LOCK").unlink()
    before = directory_state(tmp_path)
    assert main(["ids", f"file:{tmp_path}"]) == 0
    assert main(["dump", f"file:{tmp_path}", "acc-1"]) == 0
    assert capsys.readouterr().out.startswith("acc-2\nacc-1\n{")
    assert directory_state(tmp_path) == before


def test_ids_reports_a_torn_tail_on_stderr_and_leaves_it(tmp_path: Path) -> None:
    make_journal(tmp_path)
    segment = tmp_path / "00000001.log"
    size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x00\x01\x02")
    before = directory_state(tmp_path)
    result = run("ids", f"file:{tmp_path}")
    assert (result.returncode, result.stdout) == (0, "acc-2\nacc-1\n")
    assert result.stderr == (
        f"journal_torn_tail_ignored path={str(segment)!r} offset={size} ignored_bytes=3 "
        "reason='incomplete record header'\n"
    )
    assert directory_state(tmp_path) == before


def test_an_unreadable_segment_is_one_line_on_stderr_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "00000001.log").mkdir()
    result = run("ids", f"file:{tmp_path}")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: cannot read the journal segment {str(tmp_path / '00000001.log')!r}: Is a "
        "directory; a directory is in the way: move it elsewhere, the journal needs a file there\n"
    )


def test_help_names_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("ids", "dump", "verify"):
        assert command in result.stdout
    missing = run()
    assert missing.returncode == 2
    assert "the following arguments are required: COMMAND" in missing.stderr


def test_ids_and_dump_read_a_sqlite_journal_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.db"

    async def write() -> None:
        journal = SqliteJournal(path)
        record = PersistentRecord("acc-9", 1, "Opened", msgpack.packb({"owner": "ann"}), "w", 5)
        assert await journal.write([AtomicWrite([record])]) == [None]
        await journal.close()

    asyncio.run(write())
    assert main(["ids", f"sqlite:{path}"]) == 0
    assert capsys.readouterr().out == "acc-9\n"
    assert main(["dump", f"sqlite:{path}", "acc-9"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "sequence_nr": 1,
        "manifest": "Opened",
        "timestamp": 5,
        "writer_id": "w",
        "tags": [],
        "payload": {"owner": "ann"},
    }
