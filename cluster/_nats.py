"""The NATS connection of a node: servers, credentials, TLS, reconnection, and the few JetStream
key-value operations the cluster is built on.

Credentials come from the settings (user and password, token, or a creds file) or from the URLs
(``nats://user:password@host:4222``, ``nats://token@host:4222``). Secrets never appear in logs,
errors or status output: :class:`Redactor` replaces every one of them, wherever it occurs.

Key-value operations (:class:`Bucket`): ``create`` (only if the key does not exist, with a
per-key TTL), ``renew`` (compare-and-set on the key's last revision, with a TTL: nats-py's public
``update()`` takes no TTL and would make the key permanent, so the renewal publishes to the key's
subject with the ``Nats-TTL`` and ``Nats-Expected-Last-Subject-Sequence`` headers), and
``delete`` (compare-and-set). A lost compare-and-set raises :class:`CasFailedError`. TTLs are whole
seconds, at least 1 (the server's granularity).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from cluster._errors import ClusterError
from cluster._logging import log

if TYPE_CHECKING:
    from cluster._cluster import ClusterSettings

__all__ = [
    "Bucket",
    "CasFailedError",
    "Redactor",
    "check_cancelled",
    "connect",
    "redact_url",
]


_TTL_HEADER = "Nats-TTL"
_EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
_KV_OPERATION = "KV-Operation"
_MARKER_REASON = "Nats-Marker-Reason"  # what the server writes when a key's TTL ran out
_WRONG_LAST_SEQUENCE = (10071, 10164)  # JSStreamWrongLastSequenceErrF / ...ConstantErr
_MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-z]+://)(?P<userinfo>[^@/\s]+)@", re.IGNORECASE)


def check_cancelled() -> None:
    """Raise CancelledError if the current task was asked to stop.

    nats-py's requests can turn a cancellation into another error (a timeout, a failed
    compare-and-set): a loop that goes on after an error calls this first, or it would never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class CasFailedError(ClusterError):
    """A compare-and-set write lost: the key changed (or appeared, or expired) since it was read."""


def redact_url(url: str) -> str:
    """``url`` with its password (or token) replaced by ``***``."""

    def mask(match: re.Match[str]) -> str:
        user, sep, _password = match["userinfo"].partition(":")
        return f"{match['scheme']}{user}:{_MASK}@" if sep else f"{match['scheme']}{_MASK}@"

    return _USERINFO.sub(mask, url)


class Redactor:
    """Removes the secrets of one connection (passwords, tokens) from any text."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


def _secrets(servers: Sequence[str], settings: ClusterSettings) -> list[str]:
    found = [s for s in (settings.password, settings.token) if s]
    for url in servers:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        elif parts.username and not parts.password:
            found += [parts.username, unquote(parts.username)]  # a bare userinfo is a token
    return found


def _tls_context(settings: ClusterSettings) -> ssl.SSLContext | None:
    if settings.tls_ca is None and settings.tls_cert is None:
        return None
    context = ssl.create_default_context(
        cafile=None if settings.tls_ca is None else str(settings.tls_ca)
    )
    if settings.tls_cert is not None:
        context.load_cert_chain(
            str(settings.tls_cert), None if settings.tls_key is None else str(settings.tls_key)
        )
    return context


async def connect(
    servers: Sequence[str],
    settings: ClusterSettings,
    *,
    name: str,
    on_disconnected: Callable[[], Awaitable[None]] | None = None,
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
) -> tuple[Client, Redactor]:
    """Connect to NATS; raise :class:`ClusterError` (secrets redacted) if no server answers."""
    redactor = Redactor(_secrets(servers, settings))
    shown = [redact_url(url) for url in servers]
    clients: list[Client] = []
    errors: list[Exception] = []

    async def on_error(error: Exception) -> None:
        if not clients:  # the first connection: its last error is raised
            errors[:] = [error]
            return
        log.warning("nats_error", node=name, servers=shown, error=redactor(repr(error)))

    async def disconnected() -> None:
        if clients and clients[0].is_closed:
            return  # closed on purpose
        log.warning("nats_disconnected", node=name, servers=shown)
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected() -> None:
        log.info("nats_reconnected", node=name, servers=shown)
        if on_reconnected is not None:
            await on_reconnected()

    options: dict[str, Any] = {
        "servers": list(servers),
        "name": name,
        "error_cb": on_error,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "connect_timeout": settings.connect_timeout,
        "reconnect_time_wait": settings.reconnect_wait,
        "max_reconnect_attempts": settings.max_reconnect_attempts,
        "allow_reconnect": True,
    }
    if settings.user is not None:
        options["user"] = settings.user
        options["password"] = settings.password
    if settings.token is not None:
        options["token"] = settings.token
    if settings.creds_file is not None:
        options["user_credentials"] = str(settings.creds_file)
    tls = _tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    client = Client()
    try:
        # nats-py retries a refused first connection (wrong credentials too) as long as it may
        # reconnect: bound the first connection by the connect timeout, with the last error.
        await asyncio.wait_for(client.connect(**options), settings.connect_timeout)
        clients.append(client)
    except (TimeoutError, OSError, nats.errors.Error) as error:
        with contextlib.suppress(Exception):
            await client.close()
        cause = errors[-1] if errors else error
        raise ClusterError(
            f"cannot connect node {name!r} to NATS at {', '.join(shown)}: "
            f"{redactor(str(cause) or repr(cause))}; check that the server runs and that the "
            "credentials and TLS settings are right"
        ) from None
    return client, redactor


class Bucket:
    """One JetStream key-value bucket (history 1, per-key TTLs allowed)."""

    __slots__ = ("_js", "kv", "name")

    def __init__(self, js: JetStreamContext, kv: KeyValue, name: str) -> None:
        self._js = js
        self.kv = kv
        self.name = name

    @classmethod
    async def open(cls, js: JetStreamContext, name: str, *, marker_ttl: int) -> Bucket:
        """Create the bucket if it does not exist yet (every node does this; the server keeps
        one)."""
        kv = await js.create_key_value(
            KeyValueConfig(bucket=name, history=1, limit_marker_ttl=marker_ttl)
        )
        return cls(js, kv, name)

    def subject(self, key: str) -> str:
        return f"$KV.{self.name}.{key}"

    async def create(self, key: str, value: bytes, *, ttl: int | None) -> int:
        """Write ``key`` only if it does not exist (or was deleted, purged or expired); return
        its revision. Raises :class:`CasFailedError` if it exists.

        nats-py's own ``create`` retries over a delete marker but not over the marker the
        server leaves when a key's TTL runs out: it would refuse an expired lease until that
        marker expires too.
        """
        try:
            return await self.renew(key, value, last=0, ttl=ttl)
        except CasFailedError:
            last = await self._tombstone(key)
            if last is None:
                raise CasFailedError(f"key {key!r} of bucket {self.name!r} exists") from None
            return await self.renew(key, value, last=last, ttl=ttl)

    async def _tombstone(self, key: str) -> int | None:
        """The revision of the key's last message if it marks the key gone, else None."""
        try:
            last = await self._js.get_last_msg(
                self.kv._stream, self.subject(key), direct=self.kv._direct
            )
        except nats.js.errors.NotFoundError:
            return None
        headers = last.headers or {}
        gone = headers.get(_KV_OPERATION) in ("DEL", "PURGE") or _MARKER_REASON in headers
        return last.seq if gone else None

    async def renew(self, key: str, value: bytes, *, last: int, ttl: int | None) -> int:
        """Write ``key`` only if its last revision is ``last`` (0: it has none), with a fresh
        TTL; return the new revision. Raises :class:`CasFailedError` if the key changed or
        expired meanwhile."""
        headers = {_EXPECTED_LAST_SUBJECT_SEQ: str(last)}
        if ttl is not None:
            headers[_TTL_HEADER] = str(ttl)
        try:
            ack = await self._js.publish(self.subject(key), value, headers=headers)
        except nats.js.errors.APIError as error:
            if error.err_code in _WRONG_LAST_SEQUENCE:
                raise CasFailedError(
                    f"key {key!r} of bucket {self.name!r} is no longer at revision {last}"
                ) from None
            raise
        revision: int = ack.seq
        return revision

    async def delete(self, key: str, *, last: int) -> None:
        """Delete ``key`` only if its last revision is ``last`` (else :class:`CasFailedError`)."""
        headers = {_KV_OPERATION: "DEL", _EXPECTED_LAST_SUBJECT_SEQ: str(last)}
        try:
            await self._js.publish(self.subject(key), b"", headers=headers)
        except nats.js.errors.APIError as error:
            if error.err_code in _WRONG_LAST_SEQUENCE:
                raise CasFailedError(
                    f"key {key!r} of bucket {self.name!r} is no longer at revision {last}"
                ) from None
            raise

    async def entries(self) -> dict[str, tuple[bytes, int]]:
        """Every live key with its value and revision (a read: a routing hint, never proof of
        ownership)."""
        found: dict[str, tuple[bytes, int]] = {}
        watcher = await self.kv.watchall(ignore_deletes=True)
        try:
            async for entry in watcher:
                if entry is None:
                    break
                found[entry.key] = (entry.value or b"", entry.revision)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return found


@dataclass(frozen=True, slots=True)
class Change:
    """A key's new value (``value`` None: deleted, purged or expired) seen by a watcher."""

    key: str
    value: bytes | None
    revision: int


async def watch(
    bucket: Bucket, on_change: Callable[[Change], None], ready: asyncio.Future[None]
) -> None:
    """Report every change of ``bucket`` to ``on_change`` (the current values first, then
    ``ready`` is set) until cancelled."""
    watcher = await bucket.kv.watchall()
    try:
        async for entry in watcher:
            if entry is None:
                if not ready.done():
                    ready.set_result(None)
                continue
            deleted = entry.operation in ("DEL", "PURGE")
            on_change(Change(entry.key, None if deleted else (entry.value or b""), entry.revision))
    finally:
        with contextlib.suppress(Exception):  # the connection may be closed already
            await asyncio.shield(watcher.stop())  # type: ignore[no-untyped-call]
