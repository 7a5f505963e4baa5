"""Schema versions: the manifest records the version a value was written at, and upcasters are kept
by name and version, so an old event runs each step from its version once and a current one none
(SEMANTICS section 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorsys import ActorSystem
from persistence import Persistence, PersistentActor, SerializationError, UnknownManifestError
from persistence.journal import SqliteJournal
from persistence.serialization import MAX_VERSION, Serializer
from tests.test_serialization import stored

Fields = dict[str, Any]
Pairs = list[tuple[str, Fields]]


class Counted:
    """An upcaster that records each call (the name of the step it stands for)."""

    def __init__(self, step: str, calls: list[str], upcast: Callable[[Fields], Pairs]) -> None:
        self.step = step
        self.calls = calls
        self.upcast = upcast

    def __call__(self, fields: Fields) -> Pairs:
        self.calls.append(self.step)
        return self.upcast(fields)


# -- what was stored over the releases of a Deposited event ------------------------------------


@dataclass(frozen=True)
class DepositedV1:
    amount: str  # "12.50", text


@dataclass(frozen=True)
class DepositedV2:
    amount: Decimal


@dataclass(frozen=True)
class DepositedV3:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Deposited:  # version 4: cents
    cents: int
    currency: str


def to_decimal(fields: Fields) -> Pairs:
    return [("Deposited", {"amount": Decimal(fields["amount"])})]


def add_currency(fields: Fields) -> Pairs:
    return [("Deposited", {**fields, "currency": "CHF"})]


def to_cents(fields: Fields) -> Pairs:
    return [("Deposited", {"cents": int(fields["amount"] * 100), "currency": fields["currency"]})]


def current(calls: list[str]) -> Serializer:
    """Release 4: Deposited at version 4, an upcaster per older version, each counting."""
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=4)
    serializer.add_upcaster("Deposited", Counted("1->2", calls, to_decimal))
    serializer.add_upcaster("Deposited", Counted("2->3", calls, add_currency), from_version=2)
    serializer.add_upcaster("Deposited", Counted("3->4", calls, to_cents), from_version=3)
    return serializer


V1 = stored(DepositedV1, DepositedV1("12.50"), "Deposited")
V2 = stored(DepositedV2, DepositedV2(Decimal("12.50")), "Deposited", 2)
V3 = stored(DepositedV3, DepositedV3(Decimal("12.50"), "EUR"), "Deposited", 3)


def test_a_type_at_a_later_version_writes_the_version_in_the_manifest_and_nothing_else() -> None:
    manifest, payload = V1
    assert (manifest, payload) == ("Deposited", msgpack.packb({"amount": "12.50"}))
    assert V2[0] == "Deposited#2"
    assert current([]).encode(Deposited(1250, "CHF")) == (
        "Deposited#4",
        msgpack.packb({"cents": 1250, "currency": "CHF"}),
    )


def test_an_upcaster_runs_once_per_decode_of_an_old_event_and_never_for_a_current_one() -> None:
    calls: list[str] = []
    serializer = current(calls)
    now = serializer.encode(Deposited(700, "USD"))
    for _ in range(3):
        assert serializer.decode(*now) == [Deposited(700, "USD")]
        assert serializer.decode_one(*now) == Deposited(700, "USD")
    assert calls == []
    for _ in range(2):
        assert serializer.decode(*V3, persistence_id="client-1") == [Deposited(1250, "EUR")]
    assert calls == ["3->4", "3->4"]


def test_decoding_runs_the_chain_from_the_stored_version_to_the_registered_one() -> None:
    calls: list[str] = []
    serializer = current(calls)
    assert serializer.decode_one(*V1) == Deposited(1250, "CHF")
    assert calls == ["1->2", "2->3", "3->4"]
    calls.clear()
    assert serializer.decode_one(*V2) == Deposited(1250, "CHF")
    assert calls == ["2->3", "3->4"]
    calls.clear()
    assert serializer.decode_one(*V3) == Deposited(1250, "EUR")
    assert calls == ["3->4"]


@dataclass(frozen=True)
class MoneyIn:
    amount: str


def test_a_rename_lands_on_version_1_of_the_new_name_and_goes_up_its_chain() -> None:
    calls: list[str] = []
    serializer = current(calls)
    serializer.add_upcaster("MoneyIn", Counted("rename", calls, lambda f: [("Deposited", f)]))
    old = stored(MoneyIn, MoneyIn("3.00"), "MoneyIn")
    assert serializer.decode_one(*old, persistence_id="client-1") == Deposited(300, "CHF")
    assert calls == ["rename", "1->2", "2->3", "3->4"]


def test_a_rename_to_a_versioned_manifest_starts_at_that_version() -> None:
    calls: list[str] = []
    serializer = current(calls)

    def rename(fields: Fields) -> Pairs:
        return [("Deposited#3", {"amount": Decimal(fields["amount"]), "currency": "GBP"})]

    serializer.add_upcaster("MoneyIn", Counted("rename", calls, rename))
    serializer.add_upcaster("MoneyIn", Counted("v2 rename", calls, rename), from_version=2)
    assert serializer.decode_one(*stored(MoneyIn, MoneyIn("3.00"), "MoneyIn")) == Deposited(
        300, "GBP"
    )
    assert calls == ["rename", "3->4"]
    calls.clear()
    assert serializer.decode_one(*stored(MoneyIn, MoneyIn("4.00"), "MoneyIn", 2)) == Deposited(
        400, "GBP"
    )
    assert calls == ["v2 rename", "3->4"]


@dataclass(frozen=True)
class Moved:
    old_city: str
    new_city: str


@dataclass(frozen=True)
class MovedV2:
    city: str


@dataclass(frozen=True)
class Left:
    city: str


def test_an_old_version_splits_into_other_events_and_the_current_one_decodes_directly() -> None:
    calls: list[str] = []
    serializer = Serializer()
    serializer.register(MovedV2, "Moved", version=2)
    serializer.register(Left, "Left")

    def split(fields: Fields) -> Pairs:
        return [("Left", {"city": fields["old_city"]}), ("Moved", {"city": fields["new_city"]})]

    serializer.add_upcaster("Moved", Counted("split", calls, split))
    old = stored(Moved, Moved("Bern", "Basel"), "Moved")
    assert serializer.decode(*old) == [Left("Bern"), MovedV2("Basel")]
    assert calls == ["split"]
    assert serializer.decode(*serializer.encode(MovedV2("Zug"))) == [MovedV2("Zug")]
    assert calls == ["split"]


def test_an_old_version_is_dropped_while_the_current_one_decodes() -> None:
    serializer = Serializer()
    serializer.register(MovedV2, "Moved", version=2)
    serializer.add_upcaster("Moved", lambda fields: [])
    assert serializer.decode(*stored(Moved, Moved("Bern", "Basel"), "Moved")) == []
    assert serializer.decode(*serializer.encode(MovedV2("Zug"))) == [MovedV2("Zug")]


@dataclass(frozen=True)
class Wallet:
    owner: str
    deposits: list[Any]


def test_nested_values_record_their_version_and_old_ones_are_upcast() -> None:
    old_release = Serializer()
    old_release.register(Wallet, "Wallet")
    old_release.register(DepositedV3, "Deposited", version=3)
    old = old_release.encode(Wallet("ann", [DepositedV3(Decimal("1.25"), "EUR")]))
    calls: list[str] = []
    serializer = current(calls)
    serializer.register(Wallet, "Wallet")
    assert serializer.decode_one(*old) == Wallet("ann", [Deposited(125, "EUR")])
    assert calls == ["3->4"]

    manifest, payload = serializer.encode(Wallet("bob", [Deposited(5, "USD")]))
    nested = msgpack.packb(["Deposited#4", {"cents": 5, "currency": "USD"}])
    assert payload == msgpack.packb({"owner": "bob", "deposits": [msgpack.ExtType(1, nested)]})
    assert serializer.decode_one(manifest, payload) == Wallet("bob", [Deposited(5, "USD")])
    assert calls == ["3->4"]
    assert Serializer().to_primitive(manifest, payload) == {
        "owner": "bob",
        "deposits": [{"$type": "Deposited#4", "$value": {"cents": 5, "currency": "USD"}}],
    }


# -- errors --------------------------------------------------------------------------------------


def test_an_event_from_a_newer_release_is_an_error_saying_so() -> None:
    serializer = Serializer()
    serializer.register(DepositedV2, "Deposited", version=2)
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*V3, persistence_id="client-1", sequence_nr=4)
    assert caught.type is SerializationError
    assert str(caught.value) == (
        "cannot decode 'Deposited#3' (persistence_id='client-1', sequence_nr=4): it is version 3 "
        "of 'Deposited', newer than tests.test_serialization_versions.DepositedV2 (registered at "
        "version 2); was it written by a newer release of the application?"
    )


def test_a_missing_step_in_the_chain_is_an_error_naming_the_upcaster_to_add() -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=4)
    serializer.add_upcaster("Deposited", to_cents, from_version=3)
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*V2, persistence_id="client-1")
    assert str(caught.value) == (
        "cannot decode 'Deposited#2' (persistence_id='client-1'): it is version 2 of 'Deposited' "
        "and tests.test_serialization_versions.Deposited is registered at version 4, but no "
        "upcaster for 'Deposited' from version 2 is registered; add one with "
        "serializer.add_upcaster('Deposited', upcaster, from_version=2)"
    )


def test_an_unknown_versioned_name_is_an_unknown_manifest_error_naming_it() -> None:
    serializer = Serializer()
    serializer.add_upcaster("Gone", lambda fields: [])
    with pytest.raises(UnknownManifestError) as caught:
        serializer.decode("Gone#2", msgpack.packb({}), persistence_id="client-1")
    assert (caught.value.manifest, caught.value.persistence_id) == ("Gone#2", "client-1")
    with pytest.raises(UnknownManifestError) as caught:
        serializer.decode("Never#7", msgpack.packb({}), persistence_id="client-1")
    assert caught.value.manifest == "Never#7"


def test_an_upcaster_from_the_registered_version_is_refused_because_it_would_never_run() -> None:
    serializer = Serializer()
    serializer.register(DepositedV2, "Deposited", version=2)
    with pytest.raises(SerializationError) as caught:
        serializer.add_upcaster("Deposited", add_currency, from_version=2)
    assert str(caught.value) == (
        "cannot add an upcaster for 'Deposited' from version 2: "
        "tests.test_serialization_versions.DepositedV2 is registered as 'Deposited' at version 2, "
        "so it would never run; register DepositedV2 at version 3 (serializer.register("
        'DepositedV2, "Deposited", version=3) or @event_type("Deposited", version=3)) so that '
        "events stored at version 2 are upcast to it"
    )


def test_registering_below_an_upcaster_is_refused_because_it_would_never_run() -> None:
    """The upgrade path from before versions: an upcaster that keeps the name needs version 2."""
    serializer = Serializer()
    serializer.add_upcaster("Deposited", to_decimal_in_euros)
    with pytest.raises(SerializationError) as caught:
        serializer.register(DepositedV3, "Deposited")
    assert str(caught.value) == (
        "cannot register tests.test_serialization_versions.DepositedV3 as 'Deposited' at version "
        "1: an upcaster for 'Deposited' is registered and would never run; register DepositedV3 "
        'at version 2 (serializer.register(DepositedV3, "Deposited", version=2) or '
        '@event_type("Deposited", version=2)) so that events stored at version 1 are upcast to it'
    )
    serializer.register(DepositedV3, "Deposited", version=2)
    assert serializer.decode_one(*V1) == DepositedV3(Decimal("12.50"), "EUR")


def to_decimal_in_euros(fields: Fields) -> Pairs:
    return [("Deposited", {"amount": Decimal(fields["amount"]), "currency": "EUR"})]


def test_an_upcaster_that_returns_to_its_own_version_is_a_cycle() -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=4)
    serializer.add_upcaster("Deposited", lambda fields: [("Deposited#2", fields)], from_version=2)
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*V2)
    assert str(caught.value) == "upcasters form a cycle: Deposited#2 -> Deposited#2"


def test_a_failing_upcaster_names_its_version() -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=4)
    serializer.add_upcaster("Deposited", to_cents, from_version=2)
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*V2, persistence_id="client-1")
    assert str(caught.value) == (
        "upcaster for 'Deposited' from version 2 failed (persistence_id='client-1'): "
        "KeyError: 'currency'"
    )


def test_a_second_upcaster_for_a_name_and_version_is_an_error() -> None:
    serializer = Serializer()
    serializer.add_upcaster("Deposited", to_cents, from_version=3)
    serializer.add_upcaster("Deposited", to_cents)  # another version: fine
    with pytest.raises(SerializationError) as caught:
        serializer.add_upcaster("Deposited", to_cents, from_version=3)
    assert str(caught.value) == "an upcaster for 'Deposited' from version 3 is already registered"


def test_a_stored_form_that_does_not_fit_names_the_upcaster_of_its_version() -> None:
    serializer = Serializer()
    serializer.register(DepositedV2, "Deposited", version=2)
    with pytest.raises(SerializationError) as caught:
        serializer.decode_one("Deposited#2", msgpack.packb({"amount": 1, "currency": "EUR"}))
    assert str(caught.value) == (
        "cannot decode 'Deposited#2': stored field(s) 'currency' are not fields of DepositedV2; "
        "register an upcaster for 'Deposited' from version 2 that renames or drops them"
    )


@pytest.mark.parametrize("version", [0, -1, MAX_VERSION + 1, True, 2.0, "2"])
def test_a_version_must_be_an_int_from_1_to_max_version(version: Any) -> None:
    with pytest.raises(SerializationError) as caught:
        Serializer().register(Deposited, "Deposited", version=version)
    assert str(caught.value) == (
        "cannot register tests.test_serialization_versions.Deposited as 'Deposited': the version "
        f"must be an int from 1 to 2147483647, got {version!r}"
    )
    with pytest.raises(SerializationError) as caught:
        Serializer().add_upcaster("Deposited", to_cents, from_version=version)
    assert str(caught.value) == (
        "cannot add an upcaster for 'Deposited': the version must be an int from 1 to "
        f"2147483647, got {version!r}"
    )


def test_a_class_registered_at_one_version_cannot_be_registered_at_another() -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=2)
    assert serializer.register(Deposited, "Deposited", version=2) is Deposited
    with pytest.raises(SerializationError) as caught:
        serializer.register(Deposited, "Deposited", version=3)
    assert str(caught.value) == (
        "cannot register tests.test_serialization_versions.Deposited as 'Deposited' at version 3: "
        "it is already registered at version 2"
    )


@pytest.mark.parametrize("name", ["Deposited#2", "Deposited#1", "Deposited#02", "#5"])
def test_a_name_ending_in_a_hash_and_digits_is_refused_as_it_reads_as_a_version(
    name: str,
) -> None:
    with pytest.raises(SerializationError, match="a name never ends in '#' and digits"):
        Serializer().register(Deposited, name)
    with pytest.raises(SerializationError, match="a name never ends in '#' and digits"):
        Serializer().add_upcaster(name, to_cents)


def test_a_versioned_name_says_to_give_the_version_apart() -> None:
    with pytest.raises(SerializationError) as caught:
        Serializer().add_upcaster("Deposited#3", to_cents)
    assert str(caught.value) == (
        "cannot add an upcaster for 'Deposited#3': a name never ends in '#' and digits, which "
        "manifests use for the schema version; give the version apart: "
        "add_upcaster('Deposited', upcaster, from_version=3)"
    )
    with pytest.raises(SerializationError) as caught:
        Serializer().register(Deposited, "Deposited#3")
    assert str(caught.value) == (
        "cannot register tests.test_serialization_versions.Deposited under 'Deposited#3': a name "
        "never ends in '#' and digits, which manifests use for the schema version; register it "
        "as 'Deposited', version=3"
    )


def test_a_name_ending_in_a_hash_and_digits_that_is_no_version_says_to_choose_another() -> None:
    with pytest.raises(SerializationError) as caught:
        Serializer().register(Deposited, "Deposited#01")
    assert str(caught.value) == (
        "cannot register tests.test_serialization_versions.Deposited under 'Deposited#01': a name "
        "never ends in '#' and digits, which manifests use for the schema version; choose a name "
        "without that ending"
    )


names = st.text(min_size=1, max_size=20).filter(
    lambda name: not (name.rpartition("#")[1] and name.rpartition("#")[2].isdigit())
)


@given(names, st.integers(1, MAX_VERSION))
def test_any_name_and_version_round_trip_through_the_manifest(name: str, version: int) -> None:
    serializer = Serializer()
    serializer.register(MovedV2, name, version=version)
    manifest, payload = serializer.encode(MovedV2("Zug"))
    assert manifest == (name if version == 1 else f"{name}#{version}")
    assert serializer.decode_one(manifest, payload) == MovedV2("Zug")


@pytest.mark.parametrize("manifest", ["Deposited#1", "Deposited#02", "Deposited#", "Deposited#x"])
def test_a_manifest_with_no_valid_version_suffix_is_read_as_a_plain_name(manifest: str) -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=2)
    with pytest.raises(UnknownManifestError) as caught:
        serializer.decode(manifest, msgpack.packb({}))
    assert caught.value.manifest == manifest


def test_a_name_with_a_hash_that_is_no_version_suffix_is_a_plain_name() -> None:
    serializer = Serializer()
    serializer.register(MovedV2, "Moved#v2", version=3)
    assert serializer.encode(MovedV2("Zug"))[0] == "Moved#v2#3"
    assert serializer.decode_one(*serializer.encode(MovedV2("Zug"))) == MovedV2("Zug")


# -- end to end: a persistent actor across releases ----------------------------------------------


class Till(PersistentActor):
    """Sums deposits in cents; ``"total"`` answers the sum and the number of events."""

    def __init__(self) -> None:
        super().__init__()
        self.persistence_id = "till-1"
        self.total = 0

    def receive_recover(self, message: Any) -> None:
        if isinstance(message, Deposited):
            self.total += message.cents
        elif isinstance(message, DepositedV1):
            self.total += int(Decimal(message.amount) * 100)

    async def receive_command(self, command: Any) -> None:
        if command == "total":
            self.context.sender.tell((self.total, self.last_sequence_nr))
            return
        await self.persist(command)
        self.receive_recover(command)
        self.context.sender.tell("stored")


async def run_release(path: Path, serializer: Serializer, *commands: Any) -> tuple[int, int]:
    persistence = Persistence(f"sqlite:{path}", serializer=serializer)
    async with ActorSystem("till", extensions=[persistence]) as system:
        till = system.spawn(Till)
        for command in commands:
            assert await till.ask(command) == "stored"
        total: tuple[int, int] = await till.ask("total")
        return total


async def manifests(path: Path) -> list[str]:
    journal = SqliteJournal(path)
    try:
        return [record.manifest async for page in journal.replay("till-1") for record in page]
    finally:
        await journal.close()


async def test_an_actor_replays_old_events_through_the_upcasters_and_writes_new_ones_current(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    release_1 = Serializer()
    release_1.register(DepositedV1, "Deposited")
    assert await run_release(path, release_1, DepositedV1("1.00"), DepositedV1("2.00")) == (300, 2)

    calls: list[str] = []
    release_4 = current(calls)
    assert await run_release(path, release_4, Deposited(500, "CHF")) == (800, 3)
    assert calls == ["1->2", "2->3", "3->4"] * 2  # the two old events, once each
    assert await manifests(path) == ["Deposited", "Deposited", "Deposited#4"]

    calls.clear()
    assert await run_release(path, release_4) == (800, 3)
    assert calls == ["1->2", "2->3", "3->4"] * 2  # never for the event written at version 4
