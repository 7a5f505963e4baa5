"""Limits of the wire format: nesting depth (the same on encode and decode), payloads nested
thousands of levels deep (a clean error, never a crashed interpreter), extension types the format
does not define, and integers of any size (also in ``python -m persistence dump``)."""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorsys import ActorSystem
from actorsys.testing import TestProbe
from persistence import (
    Persistence,
    PersistentActor,
    RecoveryCompleted,
    SerializationError,
)
from persistence._cli import main
from persistence.journal import AtomicWrite, FileJournal, InMemoryJournal, PersistentRecord
from persistence.serialization import MAX_DEPTH, Serializer
from tests._hostile_child import nested_objects, nested_tuples

ROOT = Path(__file__).resolve().parent.parent

serializer = Serializer()


@serializer.type("Holder")
@dataclass(frozen=True)
class Holder:
    value: Any


@serializer.type("Suit")
class Suit(enum.Enum):
    HEARTS = "hearts"


TOO_DEEP_TO_ENCODE = (
    "nests values more than 100 levels deep, the wire format's limit (the object is level 1; each "
    "list, tuple, set, frozenset, dict and registered value in it adds one): store such data "
    "flatter, e.g. a tree as a list of nodes that name their parent"
)
TOO_DEEP_TO_DECODE = (
    "cannot decode 'Holder' (persistence_id='client-7', sequence_nr=12): corrupt payload: values "
    "nested more than 100 levels deep (the wire format's limit)"
)


# -- one depth limit, counted the same on both sides ---------------------------------------------

Wrap = Callable[[Any], Any]
"""Puts a value one level deeper: as a Python value, and as the wire format stores it."""

KINDS: dict[str, tuple[Wrap, Wrap]] = {
    "list": (lambda v: [v], lambda w: [w]),
    "dict": (lambda v: {"k": v}, lambda w: {"k": w}),
    "tuple": (lambda v: (v,), lambda w: msgpack.ExtType(7, msgpack.packb([w]))),
    "set": (lambda v: {v}, lambda w: msgpack.ExtType(8, msgpack.packb([w]))),
    "frozenset": (lambda v: frozenset([v]), lambda w: msgpack.ExtType(9, msgpack.packb([w]))),
    "key": (lambda v: {v: 0}, lambda w: {w: 0}),
    "object": (
        Holder,
        lambda w: msgpack.ExtType(1, msgpack.packb(["Holder", {"value": w}])),
    ),
}
HASHABLE_INSIDE = {"set", "frozenset", "key"}  # their content must be hashable
HASHABLE = {"tuple", "frozenset", "object"}  # they are hashable when their content is


def nest(kinds: list[str]) -> tuple[Holder, bytes]:
    """A Holder nesting ``kinds`` (outermost first) around the leaf 1, and its payload built by
    hand from the wire format's grammar (not by the encoder)."""
    value: Any = 1
    wire: Any = 1
    for kind in reversed(kinds):
        to_value, to_wire = KINDS[kind]
        value, wire = to_value(value), to_wire(wire)
    payload: bytes = msgpack.packb({"value": wire})
    return Holder(value), payload


@st.composite
def shapes(draw: st.DrawFn, max_size: int) -> list[str]:
    """Container kinds from the leaf out, each fitting what it holds (sets hold hashables)."""
    size = draw(st.integers(min_value=0, max_value=max_size))
    kinds: list[str] = []
    hashable = True
    for _ in range(size):
        allowed = sorted(KINDS) if hashable else sorted(set(KINDS) - HASHABLE_INSIDE)
        kind = draw(st.sampled_from(allowed))
        kinds.append(kind)
        hashable = hashable and kind in HASHABLE
    return kinds[::-1]


@settings(max_examples=60, deadline=None)
@given(shapes(max_size=MAX_DEPTH + 10) | shapes(max_size=8))
def test_encode_and_decode_accept_exactly_the_same_depths(kinds: list[str]) -> None:
    """The event is level 1, every container kind one more: up to MAX_DEPTH both sides accept,
    the encoder writes exactly the grammar's bytes; deeper, both refuse."""
    event, payload = nest(kinds)
    depth = 1 + len(kinds)
    if depth <= MAX_DEPTH:
        assert serializer.encode(event) == ("Holder", payload)
        assert serializer.decode("Holder", payload, "client-7", 12) == [event]
    else:
        with pytest.raises(SerializationError) as refused:
            serializer.encode(event)
        assert str(refused.value) == (
            f"cannot encode tests.test_serialization_limits.Holder as 'Holder': field 'value' "
            f"{TOO_DEEP_TO_ENCODE}"
        )
        with pytest.raises(SerializationError) as corrupt:
            serializer.decode("Holder", payload, "client-7", 12)
        assert str(corrupt.value) == TOO_DEEP_TO_DECODE


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_value_exactly_max_depth_levels_deep_round_trips_and_one_more_is_refused(
    kind: str,
) -> None:
    inner = "tuple" if kind in HASHABLE_INSIDE else kind  # sets and keys hold hashables
    deepest, _ = nest([kind] + [inner] * (MAX_DEPTH - 2))
    assert serializer.decode_one(*serializer.encode(deepest)) == deepest
    too_deep, payload = nest([kind] + [inner] * (MAX_DEPTH - 1))
    with pytest.raises(SerializationError, match="field 'value' nests values more than 100"):
        serializer.encode(too_deep)
    with pytest.raises(SerializationError, match="nested more than 100 levels deep"):
        serializer.decode_one("Holder", payload, "client-7", 12)


def test_the_limit_counts_a_registered_value_and_its_fields_as_one_level() -> None:
    chain: Any = Suit.HEARTS  # an enum member is a registered value too: one level
    for _ in range(MAX_DEPTH - 2):
        chain = Holder(chain)
    assert serializer.decode_one(*serializer.encode(Holder(chain))) == Holder(chain)
    with pytest.raises(SerializationError, match="field 'value' nests values more than 100"):
        serializer.encode(Holder(Holder(chain)))


def test_a_value_nested_a_hundred_thousand_levels_is_refused_naming_the_field() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = (deep,)
    with pytest.raises(SerializationError) as refused:
        serializer.encode(Holder(deep))
    assert str(refused.value) == (
        f"cannot encode tests.test_serialization_limits.Holder as 'Holder': field 'value' "
        f"{TOO_DEEP_TO_ENCODE}"
    )


class Keyed:
    """Stores its fields under a key that is not a str (to_fields may)."""

    def __init__(self, key: Any) -> None:
        self.key = key

    def to_fields(self) -> dict[Any, Any]:
        return {self.key: 1}

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> Keyed:
        [key] = fields
        return cls(key)


def test_a_too_deep_key_of_the_stored_fields_is_named_by_its_type() -> None:
    own = Serializer()
    own.register(Keyed, "Keyed")
    key: Any = 1
    for _ in range(MAX_DEPTH - 1):
        key = (key,)
    decoded = own.decode_one(*own.encode(Keyed(key)))
    assert isinstance(decoded, Keyed)
    assert decoded.key == key
    with pytest.raises(SerializationError) as refused:
        own.encode(Keyed((key,)))
    assert str(refused.value) == (
        f"cannot encode tests.test_serialization_limits.Keyed as 'Keyed': field 'a tuple key' "
        f"{TOO_DEEP_TO_ENCODE}"
    )


# -- payloads nested deeper than the limit: corrupt, never a crash ---------------------------------


def nested_arrays(levels: int) -> bytes:
    return b"\x81\xa5value" + b"\x91" * levels + b"\x01"


def nested_maps(levels: int) -> bytes:
    return b"\x81\xa5value" + b"\x81\xa1k" * levels + b"\x01"


@pytest.mark.parametrize("levels", [MAX_DEPTH, 5_000])
@pytest.mark.parametrize(
    "build", [nested_arrays, nested_maps, nested_tuples, nested_objects], ids=lambda f: f.__name__
)
def test_a_payload_nested_too_deep_is_a_corrupt_payload_naming_the_id_and_sequence_nr(
    build: Callable[[int], bytes], levels: int
) -> None:
    payload = build(levels)
    for decode in (serializer.decode, serializer.decode_one):
        with pytest.raises(SerializationError) as corrupt:
            decode("Holder", payload, "client-7", 12)
        assert corrupt.type is SerializationError
        assert str(corrupt.value) == TOO_DEEP_TO_DECODE
    with pytest.raises(SerializationError) as undumpable:
        serializer.to_primitive("Holder", payload)
    assert str(undumpable.value) == (
        "cannot decode 'Holder': corrupt payload: values nested more than 100 levels deep (the "
        "wire format's limit)"
    )


def test_msgpacks_own_stack_error_says_what_was_too_deep() -> None:
    payload = nested_arrays(2_000)  # beyond the 1024 levels msgpack's unpacker holds
    with pytest.raises(msgpack.StackError):
        msgpack.unpackb(payload)
    with pytest.raises(SerializationError) as corrupt:
        serializer.decode("Holder", payload, "client-7", 12)
    assert str(corrupt.value) == TOO_DEEP_TO_DECODE


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        (b"\xdd\xff\xff\xff\xff", "4294967295 exceeds max_array_len(12)"),
        (b"\xdf\xff\xff\xff\xff", "4294967295 exceeds max_map_len(6)"),
        (b"\xdb\xff\xff\xff\xff", "Unpack failed: incomplete input"),
        (b"\xc6\xff\xff\xff\xff", "Unpack failed: incomplete input"),
        (b"\xc7\x05\x07\xdd\xff\xff\xff\xff", "4294967295 exceeds max_array_len(5)"),
    ],
    ids=["array", "map", "str", "bin", "array-in-tuple"],
)
def test_a_payload_claiming_billions_of_items_is_corrupt_before_anything_is_allocated(
    claim: bytes, reason: str
) -> None:
    """msgpack bounds every length by the bytes it was given (its max_*_len options default to
    the buffer's size), also inside a nested tuple's bytes."""
    with pytest.raises(SerializationError) as corrupt:
        serializer.decode("Holder", b"\x81\xa5value" + claim, "client-7", 12)
    assert str(corrupt.value) == (
        "cannot decode 'Holder' (persistence_id='client-7', sequence_nr=12): corrupt payload: "
        f"ValueError: {reason}"
    )


def store(directory: Path, persistence_id: str, *payloads: tuple[str, bytes]) -> None:
    """Write ``(manifest, payload)`` events from sequence number 1 on into a FileJournal."""

    async def write() -> None:
        journal = FileJournal(directory)
        records = [
            PersistentRecord(persistence_id, seq, manifest, payload, "w-1", 100 + seq)
            for seq, (manifest, payload) in enumerate(payloads, start=1)
        ]
        assert await journal.write([AtomicWrite(records)]) == [None]
        await journal.close()

    asyncio.run(write())


@pytest.mark.parametrize("build", [nested_tuples, nested_objects], ids=lambda f: f.__name__)
def test_recovering_a_payload_nested_thousands_deep_fails_cleanly_in_a_process_that_survives(
    tmp_path: Path, build: Callable[[int], bytes]
) -> None:
    """A decoder recursing per level overflowed the C stack here: SIGSEGV, every recovery."""
    store(tmp_path, "victim", serializer.encode(Holder("fine")), ("Holder", build(5_000)))

    child = subprocess.run(
        [sys.executable, "-m", "tests._hostile_child", str(tmp_path), "victim"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    assert child.stdout == (
        "replayed 1\n"
        "recovery failed: SerializationError: cannot decode 'Holder' (persistence_id='victim', "
        "sequence_nr=2): corrupt payload: values nested more than 100 levels deep (the wire "
        "format's limit)\n"
    )


def test_dump_of_a_payload_nested_thousands_deep_shows_it_undecodable_and_exits_0(
    tmp_path: Path,
) -> None:
    payload = nested_tuples(5_000)
    store(tmp_path, "victim", ("Holder", payload))

    child = subprocess.run(
        [sys.executable, "-m", "persistence", "dump", f"file:{tmp_path}", "victim"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (child.returncode, child.stderr) == (0, "")
    [line] = child.stdout.splitlines()
    assert json.loads(line)["payload"] == {
        "$undecodable": base64.b64encode(payload).decode("ascii"),
        "$error": "cannot decode 'Holder': corrupt payload: values nested more than 100 levels "
        "deep (the wire format's limit)",
    }


# -- in a persistent actor: rejected on persist, a recovery failure on replay ----------------------


@dataclass(frozen=True)
class Persist:
    event: Any


class Log(PersistentActor):
    """Persists what it is told to; reports outcomes to ``observer``."""

    def __init__(self, persistence_id: str, observer: TestProbe) -> None:
        super().__init__()
        self.persistence_id = persistence_id
        self.observer = observer.ref
        self.events: list[Any] = []

    def receive_recover(self, message: Any) -> None:
        if message is RecoveryCompleted:
            self.observer.tell(("recovered", tuple(self.events)))
        else:
            self.events.append(message)

    def receive_command(self, command: Any) -> Awaitable[None] | None:
        if isinstance(command, Persist):
            self.persist(command.event, self.stored)
        return None

    def stored(self, event: Any) -> None:
        self.events.append(event)
        self.observer.tell(("stored", self.last_sequence_nr))

    def on_persist_rejected(self, cause: BaseException, event: Any, sequence_nr: int) -> None:
        super().on_persist_rejected(cause, event, sequence_nr)
        self.observer.tell(("rejected", sequence_nr, cause))

    def on_recovery_failure(self, cause: BaseException, message: Any) -> None:
        super().on_recovery_failure(cause, message)
        self.observer.tell(("recovery failed", cause))


async def test_persisting_a_too_deep_event_is_a_rejection_and_the_actor_goes_on() -> None:
    journal = InMemoryJournal()
    deep: Any = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    persistence = Persistence(journal, serializer=serializer)
    async with ActorSystem("test", extensions=[persistence]) as system:
        probe = TestProbe(system, "probe")
        ref = system.spawn(lambda: Log("deep", probe))
        assert await probe.receive() == ("recovered", ())

        probe.send(ref, Persist(Holder(deep)))
        probe.send(ref, Persist(Holder("shallow")))

        tag, sequence_nr, cause = await probe.receive()
        assert (tag, sequence_nr, type(cause)) == ("rejected", 1, SerializationError)
        assert str(cause) == (
            f"cannot encode tests.test_serialization_limits.Holder as 'Holder': field 'value' "
            f"{TOO_DEEP_TO_ENCODE}"
        )
        assert await probe.receive() == ("stored", 2)
        stored = [record async for page in journal.replay("deep") for record in page]
        assert [record.sequence_nr for record in stored] == [2]


async def test_replaying_a_too_deep_payload_stops_the_actor_naming_the_id_and_sequence_nr(
    tmp_path: Path,
) -> None:
    journal = FileJournal(tmp_path)
    records = [
        PersistentRecord("client-7", 1, *serializer.encode(Holder("fine"))),
        PersistentRecord("client-7", 2, "Holder", nested_arrays(MAX_DEPTH)),
    ]
    assert await journal.write([AtomicWrite(records)]) == [None]
    persistence = Persistence(journal, serializer=serializer)
    async with ActorSystem("test", extensions=[persistence]) as system:
        probe = TestProbe(system, "probe")
        ref = system.spawn(lambda: Log("client-7", probe))
        probe.watch(ref)

        tag, cause = await probe.receive()
        assert (tag, type(cause)) == ("recovery failed", SerializationError)
        assert str(cause) == (
            "cannot decode 'Holder' (persistence_id='client-7', sequence_nr=2): corrupt payload: "
            "values nested more than 100 levels deep (the wire format's limit)"
        )
        await probe.expect_terminated(ref)


# -- extension types the wire format does not define ---------------------------------------------

TIMESTAMP = "extension type code -1 (msgpack's Timestamp) is not part of the wire format"
SECOND = msgpack.Timestamp(1, 0)


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb({"value": SECOND}),  # fixext 4
        msgpack.packb({"value": msgpack.Timestamp(2**33, 5)}),  # fixext 8
        msgpack.packb({"value": msgpack.Timestamp(-1, 5)}),  # ext 8, 12 bytes
        b"\x81\xa5value\xc8\x00\x04\xff\x00\x00\x00\x01",  # ext 16 holding 4 bytes
        b"\x81\xa5value\xc9\x00\x00\x00\x08\xff" + bytes(8),  # ext 32 holding 8 bytes
        msgpack.packb({"value": {SECOND: 1}}),  # as a key
        msgpack.packb({"value": msgpack.ExtType(7, msgpack.packb([SECOND]))}),  # in a tuple
        msgpack.packb({"value": [SECOND, [[]] * MAX_DEPTH]}),  # among many containers
        msgpack.packb({"value": ["x" * 200, SECOND]}),  # in a long payload
    ],
    ids=["fixext4", "fixext8", "ext8", "ext16", "ext32", "key", "in-tuple", "crowded", "long"],
)
def test_a_msgpack_timestamp_is_refused_on_decode_and_in_dumps(payload: bytes) -> None:
    with pytest.raises(SerializationError) as corrupt:
        serializer.decode("Holder", payload, "client-7", 12)
    assert str(corrupt.value) == (
        f"cannot decode 'Holder' (persistence_id='client-7', sequence_nr=12): corrupt payload: "
        f"ValueError: {TIMESTAMP}"
    )
    with pytest.raises(SerializationError) as undumpable:
        serializer.to_primitive("Holder", payload)
    assert str(undumpable.value) == (
        f"cannot decode 'Holder': corrupt payload: ValueError: {TIMESTAMP}"
    )


def test_an_unknown_extension_type_is_refused_on_decode_and_kept_in_dumps() -> None:
    payload = msgpack.packb({"value": msgpack.ExtType(42, b"new")})
    with pytest.raises(SerializationError) as corrupt:
        serializer.decode("Holder", payload, "client-7", 12)
    assert str(corrupt.value) == (
        "cannot decode 'Holder' (persistence_id='client-7', sequence_nr=12): corrupt payload: "
        "ValueError: unknown extension type code 42"
    )
    assert serializer.to_primitive("Holder", payload) == {"value": {"$ext": 42, "$data": "bmV3"}}


# -- integers of any size ------------------------------------------------------------------------

BIG = [2**63, 2**64, -(2**63) - 1, 10**640 - 1, 10**640, -(10**5000), 7**20000]


def test_integers_of_any_size_round_trip() -> None:
    for number in BIG:
        assert serializer.decode_one(*serializer.encode(Holder(number))) == Holder(number)
        assert serializer.decode_one(*serializer.encode(Holder({number: [number]}))) == Holder(
            {number: [number]}
        )


def test_dump_prints_integers_of_any_size_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON numbers up to 640 digits (every Python reads and writes those); longer ones as hex
    text, which converting to decimal would be refused or take quadratic time."""
    store(tmp_path, "big", *(serializer.encode(Holder(number)) for number in BIG))
    store(tmp_path, "keyed", serializer.encode(Holder({10**700: Decimal("1.5")})))

    assert main(["dump", f"file:{tmp_path}", "big"]) == 0
    assert main(["dump", f"file:{tmp_path}", "keyed"]) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["payload"]["value"] for line in lines[:-1]] == [
        2**63,
        2**64,
        -(2**63) - 1,
        10**640 - 1,
        {"$int": hex(10**640)},
        {"$int": hex(-(10**5000))},
        {"$int": hex(7**20000)},
    ]
    assert [int(line["payload"]["value"]["$int"], 16) for line in lines[4:-1]] == BIG[4:]
    assert lines[-1]["payload"] == {"value": {json.dumps({"$int": hex(10**700)}): "1.5"}}
