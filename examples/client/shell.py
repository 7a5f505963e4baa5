"""An interactive shell over the Client entities (the project's main job).

Every client command goes to the client's entity through sharding (:mod:`cluster`): in one
process without ``--cluster`` (all shards local), or as one node of a cluster with ``--cluster
NATS_URL --journal postgresql://...``, where any node's shell addresses any client, wherever it
runs. ``nodes`` and ``shards`` show where the clients are.

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
import re
import shlex
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import actorsys
from actorsys import ActorSystem, AskTimeoutError, DeadLetter, Extension
from cluster import ClusterSharding, ClusterShardingStats, ShardingError, ShardingSettings
from cluster._errors import ClusterError, RemoteError
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
    CLIENT_TYPE,
    STOP_CLIENT,
    Accepted,
    ClientActor,
    ClientStatus,
    CommandRejected,
    Crash,
    GetState,
    PassivateClient,
    Passivating,
    SimulatedCrash,
    SnapshotFailed,
    SnapshotSaved,
    TakeSnapshot,
    persistence_id_of,
)
from examples.client.locale_view import LocaleView, ViewError
from examples.client.terminal import LineSource, PipedLines, PromptLines, history_at
from persistence import Persistence, PersistenceConfigError, PersistenceError
from persistence.journal import MAX_SEQUENCE_NR, Journal, ReadJournal
from persistence.query import EventQueries

if TYPE_CHECKING:
    from cluster._cluster import Cluster

DEFAULT_JOURNAL = "sqlite:data/clients.db"
ASK_TIMEOUT = 5.0
SHARDS = 30
"""Shards of the Client type (ten times the nodes of the demo, with room to grow)."""
SHARED_JOURNALS = ("postgresql:", "postgres:")
"""Journals several processes can share: a cluster's clients move between nodes."""
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
        self,
        system: ActorSystem,
        journal: ShellJournal,
        queries: EventQueries,
        view: LocaleView,
        cluster: Cluster | None = None,
    ) -> None:
        self.system = system
        self.journal = journal
        self.queries = queries
        self.view = view
        self.cluster = cluster
        self.sharding = ClusterSharding(system)
        self.sharding.start(
            CLIENT_TYPE,
            ClientActor,
            settings=ShardingSettings(number_of_shards=SHARDS, stop_message=STOP_CLIENT),
        )
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
            "nodes": _Command("nodes", "the nodes of the cluster", self.nodes, 0, 0),
            "shards": _Command(
                "shards", "where the clients' shards run, with their clients", self.shards, 0, 0
            ),
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
        except (PersistenceError, ViewError, ShardingError, ClusterError) as error:
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
        return await self.sharding.entity_ref(CLIENT_TYPE, client_id).ask(message, ASK_TIMEOUT)

    async def running_here(self) -> list[str]:
        """The ids of the clients running on this node, sorted."""
        state = await self.sharding.region_state(CLIENT_TYPE, ASK_TIMEOUT)
        return sorted(client for clients in state.shards.values() for client in clients)

    async def _stats(self) -> ClusterShardingStats:
        return await self.sharding.cluster_stats(CLIENT_TYPE, ASK_TIMEOUT)

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
        if isinstance(reply, SnapshotSaved):
            return f"ok: snapshot of client {client_id} saved at sequence_nr {reply.sequence_nr}"
        if isinstance(reply, SnapshotFailed):
            return f"error: snapshot of client {client_id} failed: {reply.reason}"
        return f"error: unexpected reply {reply!r}"

    async def crash(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        try:
            await self._ask_client(client_id, Crash())
        except (SimulatedCrash, RemoteError) as error:
            reason = str(error)
            if isinstance(error, RemoteError):  # raised on the node running the client
                if error.type_name != SimulatedCrash.__name__:
                    raise
                reason = error.detail
            status = await self._status(client_id)
            source = (
                f"snapshot at {status.recovered_from_snapshot} + "
                if status.recovered_from_snapshot
                else ""
            )
            return (
                f"client {client_id} crashed ({reason}); its supervisor restarted it and replay "
                f"({source}{status.replayed_events} events) restored: {status.client.describe()}"
            )
        return f"error: client {client_id} did not crash"

    async def passivate(self, args: list[str]) -> str:
        client_id = await self._existing(args[0])
        reply = await self._ask_client(client_id, PassivateClient())
        assert isinstance(reply, Passivating)
        if not reply.was_running:
            return f"client {client_id} was not running"
        return f"ok: client {client_id} passivated; the next command brings it back by replay"

    async def clients(self, args: list[str]) -> str:
        running = set(await self.running_here())
        ids = [
            pid.removeprefix("client-")
            async for pid in self.queries.current_persistence_ids()
            if pid.startswith("client-")
        ]
        if not ids:
            return "no clients registered"
        if self.cluster is None:
            lines = [f"{len(ids)} clients:"]
            states = ("running", "passivated")
        else:  # the others run elsewhere or nowhere: `shards` counts them per node
            lines = [f"{len(ids)} clients (running: on this node, {self.cluster.node}):"]
            states = ("running", "not here")
        for client_id in ids:
            lines.append(f"  {client_id} ({states[0] if client_id in running else states[1]})")
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
        running = (await self._stats()).entity_count
        with contextlib.suppress(TimeoutError, ViewError):
            await self.view.catch_up()
        stored = await self.journal.highest_ordering()
        return (
            f"clients running: {running}, events stored: {stored}, "
            f"read-side offset: {self.view.offset}, dead letters: {self.dead_letters}"
        )

    async def nodes(self, args: list[str]) -> str:
        if self.cluster is None:
            return "1 node: this one (no cluster: run with --cluster NATS_URL to join one)"
        names = [member.node for member in self.cluster.members()]
        lines = [f"{len(names)} node{'' if len(names) == 1 else 's'}:"]
        lines += [f"  {n} (this node)" if n == self.cluster.node else f"  {n}" for n in names]
        return "\n".join(lines)

    async def shards(self, args: list[str]) -> str:
        stats = await self._stats()
        here = self.sharding.placement.node
        total = sum(len(shards) for shards in stats.nodes.values())
        if not total:
            return "no shards started yet: they start with their clients' first command"
        lines = [f"{total} of {SHARDS} shards started, {stats.entity_count} clients running:"]
        for node in sorted(stats.nodes):
            shards = stats.nodes[node]
            name = f"{node} (this node)" if node == here else node
            running = sum(shards.values())
            listed = ", ".join(
                f"{shard_id} ({count})" for shard_id, count in sorted(shards.items(), key=_by_id)
            )
            lines.append(f"  {name}: {len(shards)} shards, {running} clients running")
            if listed:
                lines.append(f"    shards (clients): {listed}")
        return "\n".join(lines)

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


def _by_id(item: tuple[str, int]) -> tuple[int, str]:
    return (int(item[0]), item[0]) if item[0].isdigit() else (-1, item[0])


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
async def open_shell(
    journal_url: str,
    snapshots_url: str | None,
    *,
    cluster_url: str | None = None,
    node: str | None = None,
    cluster_name: str = "actorsys",
) -> AsyncIterator[ClientShell]:
    """A running system with the clients' sharding and the read side, closed on exit; with
    ``cluster_url``, one node (named ``node``) of the cluster on those NATS servers.

    The journal is opened before anything else, so a broken journal is one error at start-up
    (raised as ``PersistenceError``), not a failure of the first command. A cluster needs a
    journal every node shares (PostgreSQL); leaving hands this node's clients off to the others.
    """
    persistence = Persistence(journal_url, snapshots_url, serializer=serializer)
    extensions: list[Extension] = [persistence]
    cluster = None
    if cluster_url is not None:
        if not journal_url.startswith(SHARED_JOURNALS):
            raise PersistenceConfigError(
                f"the journal {journal_url!r} cannot be shared by the nodes of a cluster: "
                "use --journal postgresql://USER@HOST:PORT/DB"
            )
        from cluster._cluster import Cluster  # nats-py: the cluster extra, imported when used

        cluster = Cluster(
            cluster_url, node=node or default_node_name(), name=cluster_name, serializer=serializer
        )
        extensions.append(cluster)
    async with ActorSystem("clients", extensions=extensions) as system:
        journal = persistence.journal
        if not isinstance(journal, ReadJournal):
            raise PersistenceConfigError(
                f"the journal {journal_url!r} has no read side; the shell needs one"
            )
        await journal.highest_ordering()
        queries = EventQueries(journal, serializer)
        view = await LocaleView.open(journal, queries, journal_url)
        try:
            yield ClientShell(system, journal, queries, view, cluster)
        finally:
            await view.close()


def default_node_name() -> str:
    """This host's name and process id, as a node name (letters, digits, '-' and '_')."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "node"
    return f"{host}-{os.getpid()}"


def _shown(journal_url: str) -> str:
    """The journal URL without its password."""
    if not journal_url.startswith(SHARED_JOURNALS):
        return journal_url
    from persistence._postgres_db import redact  # asyncpg: imported when used

    return redact(journal_url)


def _print(text: str) -> None:
    print(text, flush=True)


async def run(
    journal: str,
    snapshots: str | None,
    interactive: bool,
    cluster_url: str | None = None,
    node: str | None = None,
    cluster_name: str = "actorsys",
) -> None:
    """Start the system and serve commands until ``quit`` or end of input."""
    async with open_shell(
        journal, snapshots, cluster_url=cluster_url, node=node, cluster_name=cluster_name
    ) as shell:
        lines: LineSource
        if interactive:
            data_dir = _data_dir(journal)
            history = history_at(data_dir / ".shell_history" if data_dir else None)
            lines = PromptLines(shell.completions, history)
            where = "" if shell.cluster is None else f" as node {shell.cluster.node} of a cluster"
            _print(
                f"actorsys ClientActor shell on {_shown(journal)}{where}; 'help' lists the "
                "commands, Ctrl-D or 'quit' leaves."
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
        "--journal",
        default=DEFAULT_JOURNAL,
        help="journal URL: sqlite:PATH, file:DIR, memory: or postgresql://USER@HOST:PORT/DB",
    )
    parser.add_argument(
        "--snapshots",
        default=None,
        help="snapshot store URL (default: beside the journal; memory: for a memory journal)",
    )
    parser.add_argument(
        "--cluster",
        metavar="NATS_URL",
        help="run as a node of the cluster on these NATS servers (needs a postgresql journal)",
    )
    parser.add_argument(
        "--node", help="this node's name in the cluster (default: host name and process id)"
    )
    parser.add_argument(
        "--cluster-name",
        default="actorsys",
        help="the cluster's name on NATS (default: actorsys); nodes of one cluster share it",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log on stderr, with tracebacks"
    )
    args = parser.parse_args(argv)
    if args.node is not None and args.cluster is None:
        parser.error("--node names a node of a cluster: give --cluster NATS_URL too")
    snapshots = args.snapshots or _default_snapshots(args.journal)
    configure_logging(args.verbose)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # any name prints, whatever the locale
    interactive = sys.stdin is not None and sys.stdin.isatty()
    try:
        actorsys.run(
            run(args.journal, snapshots, interactive, args.cluster, args.node, args.cluster_name)
        )
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except (PersistenceError, ViewError, ClusterError, ShardingError) as error:
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
