"""An interactive shell over the Client entities (the project's main job).

Reads commands from a person at a terminal (prompt_toolkit: line editing, history, tab
completion, Ctrl-C drops the line, Ctrl-D leaves) or from a pipe (no banner, no prompt), and
prints one clear result per command. A rejected command prints its reason, malformed input prints
the usage of that command or what a valid value is, a command on a client that was never
registered starts nothing; nothing prints a traceback unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import actorsys
from actorsys import ActorSystem, AskTimeoutError, DeadLetter
from examples._logging import configure_logging
from examples.client.domain import (
    CLIENT_ID_RULE,
    LOCALES,
    ChangeClientLocale,
    ChangeClientName,
    Client,
    RegisterClient,
    Rejected,
    decide,
    is_client_id,
    serializer,
    shown,
)
from examples.client.entity import (
    Accepted,
    ClientRegistry,
    ClientStatus,
    CommandRejected,
    Crash,
    GetState,
    ListRunning,
    Passivate,
    Passivated,
    SimulatedCrash,
    TakeSnapshot,
    ToClient,
    persistence_id_of,
)
from examples.client.locale_view import LocaleView, ViewError
from examples.client.terminal import LineSource, PipedLines, PromptLines, history_at
from persistence import (
    Persistence,
    PersistenceConfigError,
    PersistenceError,
    SaveSnapshotFailure,
    SaveSnapshotSuccess,
)
from persistence.journal import MAX_SEQUENCE_NR, Journal, ReadJournal
from persistence.query import EventQueries

DEFAULT_JOURNAL = "sqlite:data/clients.db"
ASK_TIMEOUT = 5.0
MAX_LINE_LENGTH = 10_000
"""Longer lines are refused before parsing (no command needs a thousandth of it)."""

log = logging.getLogger("examples.client")


class ShellJournal(Journal, ReadJournal, Protocol):
    """What the shell reads directly: highest sequence numbers (does a client exist?) and the
    read side (history, clients, the locale view, stats)."""


class UsageError(Exception):
    """The command line was malformed; the message is the usage to print."""


class Answer(Exception):
    """The command cannot go on; the message is the whole answer to print."""


@dataclass(frozen=True, slots=True)
class _Command:
    usage: str
    summary: str
    run: Callable[[list[str]], Awaitable[str]]
    min_args: int
    max_args: int


def _int(text: str, what: str, usage: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(
            f"{what} must be a whole number, got {shown(text)}; usage: {usage}"
        ) from None
    if value < 0:
        raise UsageError(f"{what} must not be negative; usage: {usage}")
    if value > MAX_SEQUENCE_NR:
        raise UsageError(f"{what} must be at most {MAX_SEQUENCE_NR}; usage: {usage}")
    return value


def _client_id(text: str) -> str:
    if not is_client_id(text):
        raise Answer(f"error: invalid client id {shown(text)}: use {CLIENT_ID_RULE}")
    return text


def _time(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fields(event: Any) -> str:
    names = [n for n in getattr(event, "__dataclass_fields__", {}) if n != "client_id"]
    return " ".join(f"{n}={getattr(event, n)!r}" for n in names)


class ClientShell:
    """The shell's commands, each returning the text to print."""

    def __init__(
        self, system: ActorSystem, journal: ShellJournal, queries: EventQueries, view: LocaleView
    ) -> None:
        self.system = system
        self.journal = journal
        self.queries = queries
        self.view = view
        self.registry = system.spawn(ClientRegistry, "clients")
        self.dead_letters = 0
        system.event_stream.subscribe(self._count_dead_letter, DeadLetter)
        self.commands: dict[str, _Command] = {
            "register": _Command(
                "register ID NAME [LOCALE]", "register a new client", self.register, 2, 3
            ),
            "rename": _Command(
                "rename ID NAME EXPECTED_VERSION", "change a client's name", self.rename, 3, 3
            ),
            "locale": _Command(
                "locale ID LOCALE EXPECTED_VERSION", "change a client's locale", self.locale, 3, 3
            ),
            "show": _Command("show ID", "a client's state and version", self.show, 1, 1),
            "history": _Command("history ID", "every event of a client", self.history, 1, 1),
            "at": _Command(
                "at ID SEQ", "a client's state after event SEQ, by replay", self.at, 2, 2
            ),
            "snapshot": _Command("snapshot ID", "save a snapshot of a client", self.snapshot, 1, 1),
            "crash": _Command(
                "crash ID", "fail inside the client: its supervisor restarts it", self.crash, 1, 1
            ),
            "passivate": _Command(
                "passivate ID", "stop a client; the next command replays it", self.passivate, 1, 1
            ),
            "clients": _Command("clients", "every registered client", self.clients, 0, 0),
            "by-locale": _Command(
                "by-locale LOCALE",
                "clients with a locale (from the read side)",
                self.by_locale,
                1,
                1,
            ),
            "stats": _Command("stats", "numbers about this shell's system", self.stats, 0, 0),
            "help": _Command("help [COMMAND]", "this list", self.help, 0, 1),
        }

    def _count_dead_letter(self, _: Any) -> None:
        self.dead_letters += 1

    # ------------------------------------------------------------------ dispatch

    async def execute(self, line: str) -> str:
        """Run one command line and return its result (never raises for bad input)."""
        if len(line) > MAX_LINE_LENGTH:
            return f"error: the line is {len(line)} characters long; the limit is {MAX_LINE_LENGTH}"
        try:
            words = shlex.split(line)
        except ValueError as error:
            return f"error: {error}"
        if not words:
            return ""
        name, args = words[0].lower(), words[1:]
        command = self.commands.get(name)
        if command is None:
            return f"error: unknown command {shown(name)}; type 'help' for the list"
        if not command.min_args <= len(args) <= command.max_args:
            return f"usage: {command.usage}"
        try:
            return await command.run(args)
        except Answer as answer:
            return str(answer)
        except UsageError as error:
            return f"usage: {error}"
        except AskTimeoutError as error:
            return f"error: no answer in time ({error})"
        except (PersistenceError, ViewError) as error:
            return f"error: {error}"
        except Exception as error:
            # a bug, not bad input: the user gets one line, --verbose logs the traceback
            log.error("command_failed command=%r", name, exc_info=error)
            return (
                f"error: {name} failed unexpectedly ({type(error).__name__}: {error}); "
                "run the shell with --verbose to log the details"
            )

    async def _registered(self, client_id: str) -> bool:
        """Whether the client has events: read from the journal, so no actor is started."""
        return await self.journal.highest_sequence_nr(persistence_id_of(client_id)) > 0

    async def _existing(self, text: str) -> str:
        """The client id in ``text`` if it is valid and registered; otherwise the answer."""
        client_id = _client_id(text)
        if not await self._registered(client_id):
            raise Answer(f"no client {client_id}: register it first")
        return client_id

    async def _ask_client(self, client_id: str, message: Any) -> Any:
        return await self.registry.ask(ToClient(client_id, message), timeout=ASK_TIMEOUT)

    async def _status(self, client_id: str) -> ClientStatus:
        status = await self._ask_client(client_id, GetState())
        assert isinstance(status, ClientStatus)
        return status

    @staticmethod
    def _outcome(reply: Any) -> str:
        if isinstance(reply, Accepted):
            event = type(reply.event).__name__
            return f"ok: {event}, {reply.client.describe()}"
        if isinstance(reply, CommandRejected):
            return f"rejected: {reply.reason}"
        return f"error: unexpected reply {reply!r}"

    # ------------------------------------------------------------------ commands

    async def register(self, args: list[str]) -> str:
        client_id = _client_id(args[0])
        command = RegisterClient(client_id, args[1], args[2] if len(args) > 2 else "en")
        if not await self._registered(client_id):
            # decided here first, so an invalid registration starts no actor
            try:
                decide(Client(client_id), command)
            except Rejected as rejection:
                return f"rejected: {rejection}"
        return self._outcome(await self._ask_client(client_id, command))

    async def rename(self, args: list[str]) -> str:
        client_id = _client_id(args[0])
        expected = _int(args[2], "EXPECTED_VERSION", self.commands["rename"].usage)
        client_id = await self._existing(client_id)
        command = ChangeClientName(client_id, args[1], expected)
        return self._outcome(await self._ask_client(client_id, command))

    async def locale(self, args: list[str]) -> str:
        client_id = _client_id(args[0])
        expected = _int(args[2], "EXPECTED_VERSION", self.commands["locale"].usage)
        client_id = await self._existing(client_id)
        command = ChangeClientLocale(client_id, args[1], expected)
        return self._outcome(await self._ask_client(client_id, command))

    async def show(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        return (await self._status(client_id)).client.describe()

    async def history(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        lines = [
            f"  #{envelope.sequence_nr} {_time(envelope.timestamp)} "
            f"{type(envelope.event).__name__} {_fields(envelope.event)}"
            async for envelope in self.queries.current_events_by_persistence_id(
                persistence_id_of(client_id)
            )
        ]
        if not lines:
            return f"client {client_id} has no events"
        return "\n".join([f"history of client {client_id} ({len(lines)} events):", *lines])

    async def at(self, args: list[str]) -> str:
        client_id = _client_id(args[0])
        seq = _int(args[1], "SEQ", self.commands["at"].usage)
        client_id = await self._existing(client_id)
        client = Client(client_id)
        async for envelope in self.queries.current_events_by_persistence_id(
            persistence_id_of(client_id), to_sequence_nr=seq
        ):
            client = client.update(envelope.event)
        if client.version < seq:
            return (
                f"client {client_id} has only {client.version} events; "
                f"after event {client.version}: {client.describe()}"
            )
        return f"after event {seq}: {client.describe()}"

    async def snapshot(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        reply = await self._ask_client(client_id, TakeSnapshot())
        if isinstance(reply, SaveSnapshotSuccess):
            return (
                f"ok: snapshot of client {client_id} saved at sequence_nr "
                f"{reply.metadata.sequence_nr}"
            )
        if isinstance(reply, SaveSnapshotFailure):
            return f"error: snapshot of client {client_id} failed: {reply.cause}"
        return f"error: unexpected reply {reply!r}"

    async def crash(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        try:
            await self._ask_client(client_id, Crash())
        except SimulatedCrash as error:
            status = await self._status(client_id)
            source = (
                f"snapshot at {status.recovered_from_snapshot} + "
                if status.recovered_from_snapshot
                else ""
            )
            return (
                f"client {client_id} crashed ({error}); its supervisor restarted it and replay "
                f"({source}{status.replayed_events} events) restored: {status.client.describe()}"
            )
        return f"error: client {client_id} did not crash"

    async def passivate(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        reply = await self.registry.ask(Passivate(client_id), timeout=ASK_TIMEOUT)
        assert isinstance(reply, Passivated)
        if not reply.was_running:
            return f"client {client_id} was not running"
        return f"ok: client {client_id} passivated; the next command brings it back by replay"

    async def clients(self, args: list[str]) -> str:
        running = set(await self.registry.ask(ListRunning(), timeout=ASK_TIMEOUT))
        ids = [
            pid.removeprefix("client-")
            async for pid in self.queries.current_persistence_ids()
            if pid.startswith("client-")
        ]
        if not ids:
            return "no clients registered"
        lines = [f"{len(ids)} clients:"]
        for client_id in ids:
            state = "running" if client_id in running else "passivated"
            lines.append(f"  {client_id} ({state})")
        return "\n".join(lines)

    async def by_locale(self, args: list[str]) -> str:
        locale = args[0]
        if locale not in LOCALES:
            return f"rejected: unknown locale {shown(locale)}; known: {', '.join(sorted(LOCALES))}"
        try:
            await self.view.catch_up()
        except TimeoutError:
            return f"error: the read side is behind (at offset {self.view.offset}); try again"
        ids = self.view.clients_with(locale)
        if not ids:
            return f"no clients with locale {locale}"
        return f"clients with locale {locale}: {', '.join(ids)}"

    async def stats(self, args: list[str]) -> str:
        running = await self.registry.ask(ListRunning(), timeout=ASK_TIMEOUT)
        with contextlib.suppress(TimeoutError, ViewError):
            await self.view.catch_up()
        stored = await self.journal.highest_ordering()
        return (
            f"clients running: {len(running)}, events stored: {stored}, "
            f"read-side offset: {self.view.offset}, dead letters: {self.dead_letters}"
        )

    async def help(self, args: list[str]) -> str:
        if args:
            command = self.commands.get(args[0])
            if command is None:
                return f"error: unknown command {shown(args[0])}"
            return f"{command.usage}: {command.summary}"
        width = max(len(c.usage) for c in self.commands.values())
        lines = [f"  {c.usage:<{width}}  {c.summary}" for c in self.commands.values()]
        return "\n".join(
            [
                "commands:",
                *lines,
                f"  {'quit':<{width}}  leave the shell (or Ctrl-D)",
                f"ID: a client id, {CLIENT_ID_RULE}",
            ]
        )

    # ------------------------------------------------------------------ completion

    def completions(self, line: str, text: str) -> list[str]:
        """Candidates for the word being typed (command names, client ids, locales)."""
        words = line.split()
        position = len(words) - (0 if line.endswith(" ") or not words else 1)
        if position == 0:
            return sorted(n for n in [*self.commands, "quit"] if n.startswith(text))
        command = words[0]
        if position == 1 and command == "by-locale":
            return sorted(loc for loc in LOCALES if loc.startswith(text))
        if position == 1 and command == "help":
            return sorted(n for n in self.commands if n.startswith(text))
        if position == 1:
            return sorted(i for i in self.view.known_clients() if i.startswith(text))
        if (command == "locale" and position == 2) or (command == "register" and position == 3):
            return sorted(loc for loc in LOCALES if loc.startswith(text))
        return []


# ---------------------------------------------------------------------- the loop


async def serve(shell: ClientShell, lines: LineSource, write: Callable[[str], None]) -> None:
    """Run every line from ``lines`` until ``quit`` or the end of the input; ``write`` each
    result."""
    while (line := await lines.read()) is not None:
        line = line.strip()
        if line.lower() in ("quit", "exit"):
            return
        result = await shell.execute(line)
        if result:
            write(result)


@contextlib.asynccontextmanager
async def open_shell(journal_url: str, snapshots_url: str | None) -> AsyncIterator[ClientShell]:
    """A running system with the client registry and the read side, closed on exit.

    The journal is opened before anything else, so a broken journal is one error at start-up
    (raised as ``PersistenceError``), not a failure of the first command.
    """
    persistence = Persistence(journal_url, snapshots_url, serializer=serializer)
    async with ActorSystem("clients", extensions=[persistence]) as system:
        journal = persistence.journal
        if not isinstance(journal, ReadJournal):
            raise PersistenceConfigError(
                f"the journal {journal_url!r} has no read side; the shell needs one"
            )
        await journal.highest_ordering()
        queries = EventQueries(journal, serializer)
        view = await LocaleView.open(journal, queries, journal_url)
        try:
            yield ClientShell(system, journal, queries, view)
        finally:
            await view.close()


def _print(text: str) -> None:
    print(text, flush=True)


async def run(journal: str, snapshots: str | None, interactive: bool) -> None:
    """Start the system and serve commands until ``quit`` or end of input."""
    async with open_shell(journal, snapshots) as shell:
        lines: LineSource
        if interactive:
            data_dir = _data_dir(journal)
            history = history_at(data_dir / ".shell_history" if data_dir else None)
            lines = PromptLines(shell.completions, history)
            _print(
                f"actorsys ClientActor shell on {journal}; 'help' lists the commands, "
                "Ctrl-D or 'quit' leaves."
            )
        else:
            lines = PipedLines(sys.stdin.fileno() if sys.stdin is not None else None)
        await serve(shell, lines, _print)


def _data_dir(url: str) -> Path | None:
    path = url.partition(":")[2].partition("?")[0]
    if url.startswith("sqlite:"):
        return Path(path).parent
    if url.startswith("file:"):
        return Path(path)
    return None


def _stdout_gone() -> int:
    """The reader of stdout left (``| head -1``): exit quietly, as the Python docs advise."""
    # Python flushes stdout at exit: point it at devnull so that flush cannot fail again
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.client",
        description="The ClientActor shell: event-sourced clients from the talk.",
    )
    parser.add_argument(
        "--journal", default=DEFAULT_JOURNAL, help="journal URL: sqlite:PATH, file:DIR or memory:"
    )
    parser.add_argument(
        "--snapshots",
        default=None,
        help="snapshot store URL (default: beside the journal; memory: for a memory journal)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log on stderr, with tracebacks"
    )
    args = parser.parse_args(argv)
    snapshots = args.snapshots or _default_snapshots(args.journal)
    configure_logging(args.verbose)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # any name prints, whatever the locale
    interactive = sys.stdin is not None and sys.stdin.isatty()
    try:
        actorsys.run(run(args.journal, snapshots, interactive))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except (PersistenceError, ViewError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.verbose:
            raise
        print(
            f"error: the shell failed ({type(error).__name__}: {error}); "
            "run it with --verbose for the traceback",
            file=sys.stderr,
        )
        return 1
    return 0


def _default_snapshots(journal: str) -> str:
    if journal.startswith("file:"):
        return journal.partition("?")[0].rstrip("/") + "/snapshots"
    return journal
