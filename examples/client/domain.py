"""The Client entity in the talk's terms: commands (verb-noun), events (noun-verb), state.

Commands can be rejected; events cannot. ``ChangeClientName`` and ``ChangeClientLocale`` carry
the version the client last saw: if it is not the entity's current version the command is
rejected (current state versioning: first writer wins). The state is never stored: it is derived
by applying events, here and during replay alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from persistence import Serializer

serializer = Serializer()
"""The registry of every type this example stores (events and snapshots) or sends between
nodes (commands and replies)."""

LOCALES = frozenset(
    {
        "ar",
        "da",
        "de",
        "en",
        "es",
        "fi",
        "fr",
        "it",
        "ja",
        "ko",
        "nl",
        "no",
        "pl",
        "pt",
        "ru",
        "sv",
        "tr",
        "uk",
        "zh",
    }
)
DEFAULT_LOCALE = "en"

CLIENT_ID_RULE = (
    "1 to 32 lowercase ASCII letters, digits, '-' or '_', starting with a letter or digit"
)
"""What a valid client id is. An id becomes the persistence id ``client-ID``, an actor name and,
in the file snapshot store, a directory name: this alphabet is the same on every journal and every
file system (lowercase only, so two ids never share a directory where case is folded)."""
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_NAME_LENGTH = 100
_SHOWN_LENGTH = 40
_FORBIDDEN_IN_NAMES = frozenset({"Cc", "Cs", "Zl", "Zp"})
"""Control characters, lone surrogates and line or paragraph separators."""


def shown(text: str) -> str:
    """``text`` quoted for a message, cut short when long (input is echoed, never trusted)."""
    if len(text) <= _SHOWN_LENGTH:
        return repr(text)
    return f"{text[:_SHOWN_LENGTH]!r}... ({len(text)} characters)"


def is_client_id(text: str) -> bool:
    """Whether ``text`` is a valid client id (see ``CLIENT_ID_RULE``)."""
    return _CLIENT_ID.fullmatch(text) is not None


# ---------------------------------------------------------------------- commands


@serializer.type("RegisterClient")
@dataclass(frozen=True, slots=True)
class RegisterClient:
    client_id: str
    name: str
    locale: str = DEFAULT_LOCALE


@serializer.type("ChangeClientName")
@dataclass(frozen=True, slots=True)
class ChangeClientName:
    client_id: str
    name: str
    expected_version: int


@serializer.type("ChangeClientLocale")
@dataclass(frozen=True, slots=True)
class ChangeClientLocale:
    client_id: str
    locale: str
    expected_version: int


Command = RegisterClient | ChangeClientName | ChangeClientLocale


# ---------------------------------------------------------------------- events


@serializer.type("ClientRegistered")
@dataclass(frozen=True, slots=True)
class ClientRegistered:
    client_id: str
    name: str
    locale: str
    version: int


@serializer.type("ClientNameChanged")
@dataclass(frozen=True, slots=True)
class ClientNameChanged:
    client_id: str
    name: str
    version: int


@serializer.type("ClientLocaleChanged")
@dataclass(frozen=True, slots=True)
class ClientLocaleChanged:
    client_id: str
    locale: str
    version: int


Event = ClientRegistered | ClientNameChanged | ClientLocaleChanged


# ---------------------------------------------------------------------- state


@serializer.type("Client")
@dataclass(frozen=True, slots=True)
class Client:
    """The client as derived from its events; ``version`` counts the events applied."""

    client_id: str
    name: str = ""
    locale: str = ""
    version: int = 0

    @property
    def registered(self) -> bool:
        return self.version > 0

    def update(self, event: Event) -> Client:
        """The state after ``event``."""
        match event:
            case ClientRegistered(name=name, locale=locale, version=version):
                return replace(self, name=name, locale=locale, version=version)
            case ClientNameChanged(name=name, version=version):
                return replace(self, name=name, version=version)
            case ClientLocaleChanged(locale=locale, version=version):
                return replace(self, locale=locale, version=version)

    def describe(self) -> str:
        if not self.registered:
            return f"client {self.client_id} is not registered"
        return f"client {self.client_id}: {self.name} ({self.locale}), version {self.version}"


class Rejected(Exception):
    """A command failed validation; the message says why."""


def _require_version(client: Client, expected: int) -> None:
    if expected != client.version:
        raise Rejected(
            f"expected version {expected} but client {client.client_id} is at version "
            f"{client.version} (first writer wins: show it and retry with its version)"
        )


def _require_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise Rejected("the name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise Rejected(f"the name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if any(unicodedata.category(char) in _FORBIDDEN_IN_NAMES for char in name):
        raise Rejected(
            f"the name {shown(name)} contains a control character or a line break; "
            "use printable characters"
        )
    return name


def _require_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise Rejected(f"unknown locale {shown(locale)}; known: {', '.join(sorted(LOCALES))}")
    return locale


def decide(client: Client, command: Command) -> Event:
    """Validate ``command`` against the current state: the event to persist, or ``Rejected``."""
    match command:
        case RegisterClient(client_id=client_id, name=name, locale=locale):
            if client.registered:
                raise Rejected(f"client {client_id} is already registered")
            return ClientRegistered(
                client_id, _require_name(name), _require_locale(locale), client.version + 1
            )
        case ChangeClientName(client_id=client_id, name=name, expected_version=expected):
            if not client.registered:
                raise Rejected(f"unknown client {client_id}: register it first")
            _require_version(client, expected)
            return ClientNameChanged(client_id, _require_name(name), client.version + 1)
        case ChangeClientLocale(client_id=client_id, locale=locale, expected_version=expected):
            if not client.registered:
                raise Rejected(f"unknown client {client_id}: register it first")
            _require_version(client, expected)
            return ClientLocaleChanged(client_id, _require_locale(locale), client.version + 1)
