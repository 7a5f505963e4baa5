"""The Client entity in the talk's terms: commands (verb-noun), events (noun-verb), state.

Commands can be rejected; events cannot. ``ChangeClientName`` and ``ChangeClientLocale`` carry
the version the client last saw: if it is not the entity's current version the command is
rejected (current state versioning: first writer wins). The state is never stored: it is derived
by applying events, here and during replay alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from persistence import Serializer

serializer = Serializer()
"""The registry of every type this example stores (events and snapshots)."""

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


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class RegisterClient:
    client_id: str
    name: str
    locale: str = DEFAULT_LOCALE


@dataclass(frozen=True, slots=True)
class ChangeClientName:
    client_id: str
    name: str
    expected_version: int


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
    return name


def _require_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise Rejected(f"unknown locale {locale!r}; known: {', '.join(sorted(LOCALES))}")
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
