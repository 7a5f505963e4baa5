"""The documentation's code runs: every fenced block in README.md and docs/ is run or checked.

- ``python`` blocks run in a fresh interpreter, in an empty temporary working directory (the
  README's example writes ``data/bank.db`` relative to it), with a timeout. Asserts in a block
  are its checks.
- ``console`` blocks starting with ``$ make run`` are shell sessions: the lines after the
  ``clients>`` prompt are piped into the shell and its answers must be the lines shown.
- Any other block (shell commands, deliberately partial code) starts with a visible
  ``# not run: <why>`` line and is left alone.

Relative links in the documents must point at files that exist, and every page in docs/ is
linked from the README or the docs index.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
NOT_RUN = re.compile(r"^# not run: \S")
FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)[^`]*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")
PROMPT = "clients> "
TIMEOUT = 60


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> bool:
        return bool(NOT_RUN.match(self.code))

    @property
    def is_session(self) -> bool:
        return self.language == "console" and self.code.startswith("$ make run\n")


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with the line of their opening fence."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, language = match.groups()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].startswith(fence):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"{path.relative_to(ROOT)}:{start + 1}: unclosed code block")
        found.append(Block(path, start + 1, language, "\n".join(body) + "\n"))
        index += 1
    return found


BLOCKS = [block for path in DOCUMENTS for block in blocks_of(path)]
PYTHON = [b for b in BLOCKS if b.language in ("python", "py") and not b.not_run]
SESSIONS = [b for b in BLOCKS if b.is_session]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONSTARTUP", None)
    return env


def _run(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        input=stdin,
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_the_documents_have_code_blocks_and_each_is_run_checked_or_marked() -> None:
    assert {path.name for path in DOCUMENTS} >= {"README.md", "coming-from-akka.md"}
    unaccounted = [
        block.where
        for block in BLOCKS
        if not (block.not_run or block.is_session or block.language in ("python", "py"))
    ]
    assert unaccounted == [], (
        "blocks that are neither Python, a `$ make run` session, nor marked "
        "'# not run: <why>' on their first line"
    )
    assert PYTHON
    assert SESSIONS


@pytest.mark.parametrize("block", PYTHON, ids=[block.where for block in PYTHON])
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "doc_block.py"
    script.write_text(block.code, encoding="utf-8")
    work = tmp_path / "cwd"
    work.mkdir()
    result = _run([sys.executable, str(script)], work)
    assert result.returncode == 0, (
        f"the block at {block.where} failed (exit {result.returncode}):\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", SESSIONS, ids=[block.where for block in SESSIONS])
def test_shell_session_shows_what_the_shell_answers(block: Block, tmp_path: Path) -> None:
    lines = block.code.splitlines()[1:]  # after "$ make run"
    first_prompt = next(i for i, line in enumerate(lines) if line.startswith(PROMPT))
    session = lines[first_prompt:]  # a piped run prints no banner
    commands = [line.removeprefix(PROMPT) for line in session if line.startswith(PROMPT)]
    expected = [line for line in session if not line.startswith(PROMPT)]
    result = _run(
        [sys.executable, "-m", "examples.client"], tmp_path, stdin="\n".join(commands) + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected, f"the session at {block.where} is out of date"


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_relative_links_point_at_existing_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    broken = [
        target
        for target in LINK.findall(text)
        if "://" not in target
        and not target.startswith("mailto:")
        and not (path.parent / target).exists()
    ]
    assert broken == []


def test_every_page_in_docs_is_linked_from_the_readme_or_the_docs_index() -> None:
    linked: set[Path] = set()
    for index in (ROOT / "README.md", ROOT / "docs" / "README.md"):
        for target in LINK.findall(index.read_text(encoding="utf-8")):
            linked.add((index.parent / target).resolve())
    pages = {path.resolve() for path in DOCUMENTS if path.parent == ROOT / "docs"}
    assert sorted(str(p.relative_to(ROOT)) for p in pages - linked) == []
