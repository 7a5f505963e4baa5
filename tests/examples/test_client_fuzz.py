"""Thousands of random lines through the piped shell: no traceback, no hang, and the shell still
answers correctly afterwards."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.examples._run import run_module

pytestmark = pytest.mark.slow

SEED = 16
LINES = 5000
VALID_IDS = ["1", "2", "a", "b-c", "z_9"]
"""Ids the garbage uses often, so that commands also reach registered clients."""
ODD_IDS = [
    "a/b",
    "a b",
    "é",
    "Ada",
    "$x",
    "../x",
    "",
    "x" * 33,
    "-1",
    "1.5",
    "a\\b",
    "\x00",
    "\x1b[2J",
    "🙂",
    "李",
    "ǅ",
    "a\u0301",
    "\u202e1",
    "Ⅻ",
    "١٢",
    "client-1",
    "1\t2",
    "CON",
    "a" * 5000,
]
COMMANDS = [
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
    "REGISTER",
    "Show",
    "frobnicate",
    "quit now",
]
ARITY = {
    "register": (2, 3),
    "rename": (3,),
    "locale": (3,),
    "show": (1,),
    "history": (1,),
    "at": (2,),
    "snapshot": (1,),
    "crash": (1,),
    "passivate": (1,),
    "by-locale": (1,),
}
"""Commands with the number of arguments they take: they get past the usage check."""
ALPHABET = (
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in (*range(0x20), 0x7F) if c != 0x0A]  # control characters, not \n
    + list("éüßøåçñÆŒǅ李王明日本語한국어עבריתالعربيةΩπ")
    + ["\u0301", "\u200b", "\u200d", "\u202e", "\u2028", "\ufeff", "\ufffd", "🙂", "👩‍👩‍👧"]
    + ["'", '"', "\\", " ", " ", " "]
)
NUMBERS = ["0", "1", "2", "-1", "1e3", "0x10", "٣", "9" * 30, str(2**63), "", "1.0", "two"]
LOCALES = ["en", "de", "zh", "xx", "EN", "", "e\u0301n"]
SENTINEL = "sentinel"


def text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def word(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.3:
        value = rng.choice(VALID_IDS)
    elif choice < 0.55:
        value = rng.choice(ODD_IDS)
    elif choice < 0.7:
        value = rng.choice(NUMBERS)
    elif choice < 0.8:
        value = rng.choice(LOCALES)
    else:
        value = text(rng, 12)
    quote = rng.random()
    if quote < 0.15:
        return f"'{value}'"
    if quote < 0.25:
        return f'"{value}'  # unbalanced
    return value


def garbage_line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        command, arity = rng.choice(list(ARITY.items()))
        words = [command] + [word(rng) for _ in range(rng.choice(arity))]
        line = " ".join(words)
    elif kind < 0.55:
        words = [rng.choice(COMMANDS)] + [word(rng) for _ in range(rng.randint(0, 4))]
        line = rng.choice([" ", "  ", "\t"]).join(words)
    elif kind < 0.75:
        line = text(rng, 200)
    elif kind < 0.85:
        return bytes(rng.choice([*range(0x80, 0x100), 0x20, 0x41]) for _ in range(40))
    elif kind < 0.9:
        line = rng.choice(["", " ", "\t\t", "\r", "\x0c"])
    elif kind < 0.995:
        line = "".join(rng.choice(["'", '"', "\\", "\\'", " "]) for _ in range(10))
    else:
        line = text(rng, 10) * rng.randint(2_000, 20_000)  # huge lines
    return line.encode("utf-8", "surrogatepass")


def garbage(rng: random.Random, count: int) -> list[bytes]:
    lines: list[bytes] = []
    while len(lines) < count:
        line = garbage_line(rng)
        decoded = line.decode("utf-8", "replace")
        if decoded.strip().lower() in ("quit", "exit") or SENTINEL in decoded:
            continue
        lines.append(line)
    return lines


@pytest.mark.parametrize("scheme", ["sqlite", "file"])
def test_thousands_of_random_lines_leave_the_shell_answering(tmp_path: Path, scheme: str) -> None:
    lines = garbage(random.Random(SEED), LINES)
    final = f"register {SENTINEL} Zed de\nshow {SENTINEL}\nstats\nclients\n".encode()
    journal = f"{scheme}:{tmp_path / 'data' / 'clients'}"
    result = run_module(
        "examples.client", "--journal", journal, stdin=b"\n".join(lines) + b"\n" + final
    )
    assert "failed unexpectedly" not in result.stdout
    for line in result.stderr.splitlines():
        # only the library's one-line logs (crashes the garbage asked for): nothing else
        assert re.fullmatch(r"\d\d:\d\d:\d\d ERROR   \S+: \w+ .*", line), line

    out = result.stdout.splitlines()
    start = (
        len(out)
        - 1
        - out[::-1].index(f"ok: ClientRegistered, client {SENTINEL}: Zed (de), version 1")
    )
    assert out[start + 1] == f"client {SENTINEL}: Zed (de), version 1"
    stats = re.fullmatch(
        r"clients running: (\d+), events stored: (\d+), read-side offset: (\d+), "
        r"dead letters: \d+",
        out[start + 2],
    )
    assert stats is not None, out[start + 2]
    running, stored, offset = (int(n) for n in stats.groups())
    count = re.fullmatch(r"(\d+) clients:", out[start + 3])
    assert count is not None, out[start + 3]
    listed = out[start + 4 :]
    assert len(listed) == int(count.group(1))
    ids = [re.fullmatch(r"  (\S+) \((running|passivated)\)", line) for line in listed]
    assert all(match is not None for match in ids), listed
    assert all(match and re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", match.group(1)) for match in ids)
    assert SENTINEL in {match.group(1) for match in ids if match}
    assert running == sum(1 for match in ids if match and match.group(2) == "running")
    assert offset == stored >= 1
