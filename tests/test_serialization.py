"""The msgpack serializer for events and snapshots (SEMANTICS section 4)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import enum
import json
import math
import re
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import persistence.serialization
import persistence.serialization._serializer
from persistence import SerializationError, UnknownManifestError
from persistence.serialization import (
    ImplicitTypeNameWarning,
    Serializer,
    default_serializer,
    event_type,
)
from tests.strategies import field_values

# -- registered sample types ---------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    value: Any


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int


@dataclass
class Basket:
    items: list[Any]
    meta: dict[Any, Any] = field(default_factory=dict)


class Money(NamedTuple):
    amount: Decimal
    currency: str = "EUR"


class Color(enum.Enum):
    RED = "red"
    GREEN = 2
    BLUE = (0, 0, 255)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Tone(enum.StrEnum):
    WARM = "warm"


class Temperature:
    """A class with its own stored form: degrees kept as text."""

    def __init__(self, celsius: Decimal) -> None:
        self.celsius = celsius

    def to_fields(self) -> dict[str, Any]:
        return {"celsius": str(self.celsius)}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Temperature:
        return cls(Decimal(fields["celsius"]))

    def __eq__(self, other: object) -> bool:
        return type(other) is Temperature and other.celsius.as_tuple() == self.celsius.as_tuple()

    def __hash__(self) -> int:
        return hash(self.celsius)


class Outer:
    @dataclass(frozen=True)
    class Inner:
        n: int


def samples() -> Serializer:
    """A serializer with the sample types registered under their qualified class names."""
    serializer = Serializer()
    for cls in (Holder, Point, Basket, Money, Color, Level, Tone, Temperature, Outer.Inner):
        serializer.register(cls, cls.__qualname__)
    return serializer


SAMPLES = samples()

registered_leaves = st.one_of(
    st.sampled_from(Color),
    st.sampled_from(Level),
    st.sampled_from(Tone),
    st.builds(Point, st.integers(-(2**63), 2**63 - 1), st.integers()),
    st.builds(Money, st.decimals(allow_nan=False), st.text(max_size=3)),
    st.builds(Temperature, st.decimals(allow_nan=False, allow_infinity=False)),
    st.builds(Outer.Inner, st.integers()),
)


def registered_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        children.map(Holder),
        st.builds(Basket, st.lists(children, max_size=3), st.dictionaries(st.text(), children)),
    )


values = field_values(leaves=registered_leaves, containers=registered_containers)


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Equal, and of the same type all the way down (floats and Decimals bit for bit)."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual), path
        else:
            assert (actual, math.copysign(1, actual)) == (expected, math.copysign(1, expected))
    elif isinstance(expected, Decimal):
        assert actual.as_tuple() == expected.as_tuple(), path
    elif isinstance(expected, dt.datetime):
        assert actual == expected, path
        assert actual.utcoffset() == expected.utcoffset(), path
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, dict):
        assert len(actual) == len(expected), path
        for (ak, av), (ek, ev) in zip(actual.items(), expected.items(), strict=True):
            assert_same(ak, ek, f"{path} key")
            assert_same(av, ev, f"{path}[{ek!r}]")
    elif isinstance(expected, Money):
        assert_same(tuple(actual), tuple(expected), path)
    elif dataclasses.is_dataclass(expected):
        for f in dataclasses.fields(expected):
            assert_same(getattr(actual, f.name), getattr(expected, f.name), f"{path}.{f.name}")
    elif isinstance(expected, enum.Enum):
        assert actual is expected, path
    else:
        assert actual == expected, path


def round_trip(obj: Any, serializer: Serializer = SAMPLES) -> Any:
    manifest, payload = serializer.encode(obj)
    [decoded] = serializer.decode(manifest, payload, persistence_id="p-1")
    assert_same(serializer.decode_one(manifest, payload), decoded)
    return decoded


# -- public surface ------------------------------------------------------------------------------


def test_the_package_exports_exactly_the_serializer_api() -> None:
    assert persistence.serialization.__all__ == [
        "MAX_DEPTH",
        "MAX_VERSION",
        "ImplicitTypeNameWarning",
        "Serializer",
        "default_serializer",
        "event_type",
    ]
    assert persistence.serialization.MAX_DEPTH == 100
    assert persistence.serialization.MAX_VERSION == 2**31 - 1


# -- round trips ---------------------------------------------------------------------------------


@given(values)
def test_any_supported_value_round_trips_with_its_exact_type(value: Any) -> None:
    assert_same(round_trip(Holder(value)), Holder(value))


@given(values)
def test_basket_of_nested_registered_values_round_trips(value: Any) -> None:
    basket = Basket(items=[value, Holder(value)], meta={"v": value})
    assert_same(round_trip(basket), basket)


def test_decimal_keeps_its_digits_exponent_and_sign() -> None:
    for text in ["10000.00", "0.10", "-0", "-0.000", "1E+3", "1.5E-30", "NaN", "sNaN", "-Infinity"]:
        decoded = round_trip(Holder(Decimal(text))).value
        assert str(decoded) == text
        assert decoded.as_tuple() == Decimal(text).as_tuple()


def test_amount_of_ten_thousand_with_cents_comes_back_exactly() -> None:
    decoded = round_trip(Money(Decimal("10000.00"), "CHF"))
    assert decoded == Money(Decimal("10000.00"), "CHF")
    assert str(decoded.amount) == "10000.00"


def test_aware_datetime_keeps_its_instant_and_utc_offset() -> None:
    india = dt.timezone(dt.timedelta(hours=5, minutes=30))
    stamp = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=india)
    decoded = round_trip(Holder(stamp)).value
    assert decoded == stamp
    assert decoded.utcoffset() == dt.timedelta(hours=5, minutes=30)


@pytest.mark.parametrize(
    "offset",
    [
        dt.timedelta(microseconds=1),
        dt.timedelta(microseconds=-1),
        dt.timedelta(hours=-3, seconds=-7, microseconds=-3),
        dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
    ],
)
def test_datetime_with_an_offset_of_seconds_and_microseconds_round_trips(
    offset: dt.timedelta,
) -> None:
    for wall in (dt.datetime(2000, 1, 1), dt.datetime(2000, 1, 1, 0, 0, 0, 5)):
        stamp = wall.replace(tzinfo=dt.timezone(offset))
        decoded = round_trip(Holder(stamp)).value
        assert (decoded, decoded.utcoffset()) == (stamp, offset)


class _Berlin(dt.tzinfo):
    """A named zone that is not a fixed offset (like ZoneInfo), without needing tz data."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=2 if when is not None and 4 <= when.month <= 9 else 1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "Berlin"


def test_datetime_in_a_named_zone_comes_back_with_that_moments_fixed_offset() -> None:
    summer = dt.datetime(2024, 7, 1, 9, 0, tzinfo=_Berlin())
    decoded = round_trip(Holder(summer)).value
    assert decoded == summer
    assert decoded.tzinfo == dt.timezone(dt.timedelta(hours=2))


def test_naive_datetime_stays_naive() -> None:
    decoded = round_trip(Holder(dt.datetime(2024, 5, 1, 12, 0))).value
    assert decoded == dt.datetime(2024, 5, 1, 12, 0)
    assert decoded.tzinfo is None


def test_tuples_come_back_as_tuples_and_lists_as_lists_whatever_the_annotation() -> None:
    basket = Basket(items=[(1, [2, (3,)]), [4]], meta={"t": ()})
    decoded = round_trip(basket)
    assert decoded.items == [(1, [2, (3,)]), [4]]
    assert type(decoded.items[0]) is tuple
    assert type(decoded.items[0][1]) is list
    assert type(decoded.meta["t"]) is tuple


def test_integers_beyond_64_bits_round_trip() -> None:
    for number in [2**63 - 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 7**200, -(7**200)]:
        assert round_trip(Holder(number)).value == number


def test_bytearray_and_memoryview_come_back_as_bytes() -> None:
    assert round_trip(Holder([bytearray(b"ab"), memoryview(b"cd")])).value == [b"ab", b"cd"]


def test_dict_keys_other_than_str_round_trip() -> None:
    meta = {1: "one", (2, "two"): 2, Decimal("3.0"): 3, b"four": 4, None: 5, Level.LOW: 6}
    assert_same(round_trip(Holder(meta)).value, meta)


def test_every_kind_of_registrable_class_round_trips() -> None:
    """Frozen, slots and mutable dataclasses, NamedTuples, enums and to_fields classes."""
    for obj in [
        Point(1, -2),
        Basket([1], {"a": [Point(3, 4)]}),
        Money(Decimal("1.10")),
        Color.BLUE,
        Level.HIGH,
        Tone.WARM,
        Temperature(Decimal("-3.50")),
        Outer.Inner(5),
    ]:
        assert_same(round_trip(obj), obj)


def test_enum_members_keep_their_enum_type_even_when_they_subclass_int_or_str() -> None:
    decoded = round_trip(Holder([Level.HIGH, Tone.WARM]))
    assert decoded.value[0] is Level.HIGH
    assert decoded.value[1] is Tone.WARM


def test_decoded_frozen_dataclass_behaves_like_a_constructed_one() -> None:
    original = Holder({"a": 1})
    decoded = round_trip(original)
    assert decoded == original
    assert hash(Holder(1)) == hash(round_trip(Holder(1)))
    assert vars(decoded) == vars(original)
    assert dataclasses.replace(decoded, value=2) == Holder(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.value = 3


def test_dataclass_field_left_out_of_the_stored_form_takes_its_default() -> None:
    basket = round_trip_from(Basket, {"items": [1]})
    assert basket == Basket([1], {})


def round_trip_from(cls: type, form: Any, serializer: Serializer = SAMPLES) -> Any:
    """Decode a hand-made stored form as ``cls``."""
    manifest = cls.__qualname__
    return serializer.decode_one(manifest, msgpack.packb(form), persistence_id="p-1")


def test_stored_field_the_class_does_not_have_is_an_error_naming_it() -> None:
    with pytest.raises(SerializationError) as caught:
        round_trip_from(Point, {"x": 1, "y": 2, "z": 3})
    assert str(caught.value) == (
        "cannot decode 'Point' (persistence_id='p-1'): stored field(s) 'z' are not fields of "
        "Point; register an upcaster for 'Point' that renames or drops them"
    )


def test_stored_form_missing_a_required_field_is_an_error_naming_it() -> None:
    with pytest.raises(SerializationError) as caught:
        round_trip_from(Point, {"x": 1})
    assert str(caught.value) == (
        "cannot decode 'Point' (persistence_id='p-1'): stored form lacks required field(s) 'y' "
        "of Point; give them defaults or register an upcaster for 'Point' that adds them"
    )


def test_stored_value_that_is_not_a_map_is_an_error() -> None:
    with pytest.raises(SerializationError) as caught:
        round_trip_from(Holder, 5)
    assert str(caught.value) == (
        "cannot decode 'Holder' (persistence_id='p-1'): expected a map of fields, got int"
    )


def test_stored_enum_value_that_is_no_longer_a_member_is_an_error() -> None:
    with pytest.raises(SerializationError) as caught:
        round_trip_from(Color, "purple")
    assert str(caught.value) == (
        "cannot decode 'Color' (persistence_id='p-1'): ValueError: 'purple' is not a valid Color"
    )


# -- dataclasses whose constructor does more than assign fields are constructed ---------------


@dataclass(frozen=True)
class Account:
    owner: str
    limit: Decimal
    label: str = field(init=False)

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError("limit must not be negative")
        object.__setattr__(self, "label", f"{self.owner}:{self.limit}")


@dataclass(frozen=True)
class Counted:
    n: int
    made: ClassVar[int] = 0

    def __init__(self, n: int) -> None:
        object.__setattr__(self, "n", n)
        type(self).made += 1


class _Positive:
    """A descriptor-typed dataclass field that keeps its value under another name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = "_" + name

    def __get__(self, obj: object, owner: type) -> int:
        return 0 if obj is None else int(getattr(obj, self.name))

    def __set__(self, obj: object, value: int) -> None:
        if value <= 0:
            raise ValueError("must be positive")
        obj.__dict__[self.name] = value


@dataclass
class Guarded:
    size: _Positive = _Positive()


@dataclass
class Audited:
    n: int
    writes: ClassVar[list[str]] = []

    def __setattr__(self, name: str, value: Any) -> None:
        Audited.writes.append(name)
        super().__setattr__(name, value)


def test_post_init_runs_on_decode_and_init_false_fields_are_not_stored() -> None:
    serializer = Serializer()
    serializer.register(Account, "Account")
    manifest, payload = serializer.encode(Account("ann", Decimal("10.00")))
    assert msgpack.unpackb(payload, ext_hook=lambda code, data: data) == {
        "owner": "ann",
        "limit": b"10.00",
    }
    decoded = serializer.decode_one(manifest, payload)
    assert isinstance(decoded, Account)
    assert decoded.label == "ann:10.00"
    with pytest.raises(SerializationError) as caught:
        serializer.decode_one(
            "Account",
            msgpack.packb({"owner": "bob", "limit": msgpack.ExtType(2, b"-1")}),
            "account-bob",
        )
    assert str(caught.value) == (
        "cannot decode 'Account' (persistence_id='account-bob'): ValueError: limit must not be "
        "negative"
    )


def test_a_handwritten_init_runs_on_decode() -> None:
    serializer = Serializer()
    serializer.register(Counted, "Counted")
    manifest, payload = serializer.encode(Counted(1))
    before = Counted.made
    assert serializer.decode_one(manifest, payload) == Counted(1)
    assert Counted.made == before + 2


def test_descriptor_typed_fields_are_set_through_their_descriptor() -> None:
    serializer = Serializer()
    serializer.register(Guarded, "Guarded")
    decoded = round_trip(Guarded(size=3), serializer)
    assert decoded.size == 3
    assert vars(decoded) == {"_size": 3}


def test_a_custom_setattr_sees_every_field_on_decode() -> None:
    serializer = Serializer()
    serializer.register(Audited, "Audited")
    manifest, payload = serializer.encode(Audited(1))
    Audited.writes.clear()
    decoded = serializer.decode_one(manifest, payload)
    assert Audited.writes == ["n"]
    assert decoded == Audited(1)


def test_ordinary_dataclasses_take_the_constructor_free_decode_path() -> None:
    """Guards the replay speed: skipping __init__ is only for dataclasses where it is equal."""
    by_class = SAMPLES._by_class  # the codecs are private; this pins which ones are fast
    assert by_class[Holder]._plain  # type: ignore[attr-defined]
    assert by_class[Basket]._plain  # type: ignore[attr-defined]
    assert not by_class[Point]._plain  # type: ignore[attr-defined]  # slots: no __dict__
    assert by_class[Point]._slot_setters is not None  # type: ignore[attr-defined]
    assert by_class[Holder]._slot_setters is None  # type: ignore[attr-defined]


@dataclass(slots=True)
class SlottedChecked:
    n: int
    doubled: int = 0

    def __post_init__(self) -> None:
        self.doubled = self.n * 2


@dataclass(slots=True)
class SlottedAudited:
    n: int
    writes: ClassVar[list[str]] = []

    def __setattr__(self, name: str, value: Any) -> None:
        SlottedAudited.writes.append(name)
        object.__setattr__(self, name, value)


class _SlotBase:
    __slots__ = ("n",)


@dataclass
class OnInheritedSlot(_SlotBase):
    n: int
    label: str


def test_slots_dataclasses_decode_as_their_constructor_builds_them() -> None:
    serializer = Serializer()
    serializer.register(Point, "Point")
    serializer.register(SlottedChecked, "SlottedChecked")
    serializer.register(SlottedAudited, "SlottedAudited")
    serializer.register(OnInheritedSlot, "OnInheritedSlot")

    point = serializer.decode_one(*serializer.encode(Point(1, 2)))
    assert_same(point, Point(1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    checked = serializer.decode_one("SlottedChecked", msgpack.packb({"n": 4, "doubled": 0}))
    assert checked == SlottedChecked(4, 8)  # __post_init__ ran
    manifest, payload = serializer.encode(SlottedAudited(5))
    SlottedAudited.writes.clear()
    audited = serializer.decode_one(manifest, payload)
    assert SlottedAudited.writes == ["n"]  # decoding went through its __setattr__
    assert audited == SlottedAudited(5)
    mixed = serializer.decode_one(*serializer.encode(OnInheritedSlot(6, "six")))
    assert (mixed.n, vars(mixed)) == (6, {"label": "six"})


def test_a_slots_dataclass_stored_with_another_field_in_place_of_its_own_is_refused() -> None:
    serializer = Serializer()
    serializer.register(Point, "Point")
    with pytest.raises(SerializationError) as caught:
        serializer.decode_one("Point", msgpack.packb({"x": 1, "z": 2}), "p-1", 7)
    assert str(caught.value) == (
        "cannot decode 'Point' (persistence_id='p-1', sequence_nr=7): stored field(s) 'z' are "
        "not fields of Point; register an upcaster for 'Point' that renames or drops them"
    )
    assert serializer.decode_rows([(7, "Point", msgpack.packb({"x": 1, "z": 2}))]) == []


def test_decode_rows_decodes_a_page_up_to_the_first_row_that_decode_must_take() -> None:
    serializer = Serializer()
    serializer.register(Point, "Point", version=2)
    serializer.add_upcaster("Point", lambda fields: [("Point", fields)])
    serializer.register(Basket, "Basket")
    current = serializer.encode(Point(1, 2))
    deep = serializer.encode(Basket([[n] for n in range(120)]))  # the depth-checked path
    old = ("Point", msgpack.packb({"x": 3, "y": 4}))
    unfit = ("Point#2", msgpack.packb({"x": 5}))
    corrupt = ("Point#2", b"\xc1")
    lists: list[Any] = []
    for _ in range(persistence.serialization.MAX_DEPTH):
        lists = [lists]
    too_deep = ("Basket", msgpack.packb({"items": lists}))  # a level too deep

    def rows(*stored: tuple[str, bytes]) -> list[tuple[int, str, bytes]]:
        return [(n, manifest, payload) for n, (manifest, payload) in enumerate(stored, 1)]

    page = rows(current, deep, current, old, current)
    assert serializer.decode_rows(page) == [
        Point(1, 2),
        Basket([[n] for n in range(120)]),
        Point(1, 2),
    ]
    assert serializer.decode_rows(page, 3) == []
    assert serializer.decode_rows(page, 4) == [Point(1, 2)]
    assert serializer.decode_rows(page, 5) == []
    for stopper in (old, unfit, corrupt, too_deep):
        assert serializer.decode_rows(rows(current, stopper, current)) == [Point(1, 2)]
    assert serializer.decode(*old) == [Point(3, 4)]


# -- the wire format -----------------------------------------------------------------------------


def test_stored_form_follows_the_documented_grammar() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    stamp = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    value = [
        Decimal("1.50"),
        stamp,
        dt.date(2024, 5, 1),
        dt.timedelta(days=1, seconds=2, microseconds=3),
        ident,
        (1, 2),
        {3},
        frozenset({4}),
        2**64,
        -(2**64),
        Point(1, 2),
        Color.RED,
        b"\x00",
    ]
    manifest, payload = SAMPLES.encode(Holder(value))

    def nested(obj: Any) -> bytes:
        packed: bytes = msgpack.packb(obj)
        return packed

    expected = msgpack.packb(
        {
            "value": [
                msgpack.ExtType(2, b"1.50"),
                msgpack.ExtType(3, b"2024-05-01T12:00:00+00:00"),
                msgpack.ExtType(4, b"2024-05-01"),
                msgpack.ExtType(5, nested([1, 2, 3])),
                msgpack.ExtType(6, ident.bytes),
                msgpack.ExtType(7, nested([1, 2])),
                msgpack.ExtType(8, nested([3])),
                msgpack.ExtType(9, nested([4])),
                msgpack.ExtType(10, b"\x01" + bytes(8)),
                msgpack.ExtType(10, b"\xff" + bytes(8)),
                msgpack.ExtType(1, nested(["Point", {"x": 1, "y": 2}])),
                msgpack.ExtType(1, nested(["Color", "red"])),
                b"\x00",
            ]
        }
    )
    assert (manifest, payload) == ("Holder", expected)
    assert_same(SAMPLES.decode_one(manifest, expected), Holder(value))


def test_small_event_is_stored_exactly_as_msgpack_packs_its_fields() -> None:
    assert SAMPLES.encode(Point(1, 2)) == ("Point", msgpack.packb({"x": 1, "y": 2}))


# -- registration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Renamed:
    n: int


@dataclass(frozen=True)
class Other:
    n: int


class Plain:
    pass


def test_registering_without_a_name_warns_naming_the_class_and_the_fix() -> None:
    serializer = Serializer()
    with pytest.warns(ImplicitTypeNameWarning) as caught:
        serializer.register(Outer.Inner)
    [warning] = caught
    assert warning.category is ImplicitTypeNameWarning
    assert issubclass(ImplicitTypeNameWarning, UserWarning)
    assert str(warning.message) == (
        "tests.test_serialization.Outer.Inner is registered under its class name 'Outer.Inner', "
        "which changes when the class is renamed or moved and then orphans the events stored "
        'under it; register Inner with a stable name: @event_type("Outer.Inner") or '
        'serializer.register(Inner, "Outer.Inner")'
    )
    assert warning.filename == __file__  # points at the registration, not the library


def test_a_type_registered_without_a_name_still_reads_and_writes_its_qualified_name() -> None:
    serializer = Serializer()
    with pytest.warns(ImplicitTypeNameWarning):
        serializer.register(Outer.Inner)
    assert serializer.encode(Outer.Inner(1)) == SAMPLES.encode(Outer.Inner(1))
    assert serializer.decode_one(*SAMPLES.encode(Outer.Inner(1))) == Outer.Inner(1)


def test_the_decorators_warn_without_a_name_at_the_decorated_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serializer = Serializer()
    with pytest.warns(ImplicitTypeNameWarning, match="register Other with a stable name") as one:
        serializer.type()(Other)
    assert one[0].filename == __file__
    fresh = Serializer()  # event_type registers into the default serializer: keep it clean
    monkeypatch.setattr(persistence.serialization._serializer, "default_serializer", fresh)
    with pytest.warns(ImplicitTypeNameWarning, match="register Shade with a stable name") as two:
        event_type()(Shade)
    assert two[0].filename == __file__
    assert fresh.is_registered(Shade)


def test_registering_again_without_a_name_warns_again() -> None:
    serializer = Serializer()
    for _ in range(2):
        with pytest.warns(ImplicitTypeNameWarning) as caught:
            serializer.register(Other)
        assert caught[0].filename == __file__


def test_the_warning_can_be_silenced_by_its_category() -> None:
    assert ImplicitTypeNameWarning.__module__ == "persistence.serialization"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ImplicitTypeNameWarning)
        Serializer().register(Other)


def test_decorator_registers_under_the_given_name_and_returns_the_class() -> None:
    serializer = Serializer()
    decorated = serializer.type("ClientRegistered")(Renamed)
    assert decorated is Renamed
    assert serializer.is_registered(Renamed)
    assert serializer.encode(Renamed(1))[0] == "ClientRegistered"


def test_registering_the_same_class_under_the_same_name_again_is_harmless() -> None:
    serializer = Serializer()
    assert serializer.register(Renamed, "Thing") is Renamed
    assert serializer.register(Renamed, "Thing") is Renamed


def test_registering_another_class_under_a_taken_name_is_an_error() -> None:
    serializer = Serializer()
    serializer.register(Renamed, "Thing")
    with pytest.raises(SerializationError) as caught:
        serializer.register(Other, "Thing")
    assert str(caught.value) == (
        "cannot register tests.test_serialization.Other as 'Thing': that name is already "
        "registered for tests.test_serialization.Renamed"
    )


def test_registering_a_class_under_a_second_name_is_an_error() -> None:
    serializer = Serializer()
    serializer.register(Renamed, "Thing")
    with pytest.raises(SerializationError) as caught:
        serializer.register(Renamed, "Thing2")
    assert str(caught.value) == (
        "cannot register tests.test_serialization.Renamed as 'Thing2': it is already registered "
        "as 'Thing'"
    )


def test_only_dataclasses_named_tuples_enums_and_hooked_classes_can_be_registered() -> None:
    with pytest.raises(SerializationError) as caught:
        Serializer().register(Plain, "Plain")
    assert str(caught.value) == (
        "cannot register tests.test_serialization.Plain: only dataclasses, NamedTuples, enums "
        "and classes with to_fields()/from_fields() can be registered"
    )


def test_type_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(SerializationError) as caught:
        Serializer().register(Renamed, "")
    assert str(caught.value) == (
        "cannot register tests.test_serialization.Renamed under '': the name must be a non-empty "
        "str"
    )
    with pytest.raises(SerializationError) as caught:
        Serializer().register(Renamed(1))  # type: ignore[arg-type]
    assert str(caught.value) == "cannot register Renamed(n=1): it is not a class"


def test_subclass_of_a_registered_class_is_not_registered() -> None:
    @dataclass(frozen=True)
    class Special(Renamed):
        pass

    serializer = Serializer()
    serializer.register(Renamed, "Renamed")
    assert serializer.is_registered(Renamed)
    assert not serializer.is_registered(Special)
    with pytest.raises(SerializationError, match="Special: the type is not registered"):
        serializer.encode(Special(1))


@event_type("tests.serialization.ViaDefaultSerializer")
@dataclass(frozen=True)
class ViaDefaultSerializer:
    n: int


def test_event_type_decorator_registers_in_the_default_serializer() -> None:
    assert default_serializer.is_registered(ViaDefaultSerializer)
    manifest, payload = default_serializer.encode(ViaDefaultSerializer(3))
    assert manifest == "tests.serialization.ViaDefaultSerializer"
    assert default_serializer.decode(manifest, payload) == [ViaDefaultSerializer(3)]


# -- encode errors -------------------------------------------------------------------------------

SUPPORTED = (
    "supported: None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, Decimal, "
    "datetime, date, timedelta, UUID and registered dataclasses, NamedTuples and enums"
)


@dataclass(frozen=True)
class Unregistered:
    n: int


class Shade(enum.Enum):
    DARK = 1


UNENCODABLE: Any = object()


def test_encoding_an_unregistered_type_is_an_error_naming_it() -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.encode(Unregistered(1))
    assert caught.type is SerializationError
    assert str(caught.value) == (
        "cannot encode tests.test_serialization.Unregistered: the type is not registered; "
        'register it with a stable name: serializer.register(Unregistered, "Unregistered") or '
        'decorate it with @event_type("Unregistered")'
    )


@pytest.mark.parametrize("value", [5, {"amount": 5}, "deposit", [1, 2]])
def test_encoding_a_plain_value_says_what_can_be_an_event_and_suggests_nothing_that_fails(
    value: Any,
) -> None:
    name = type(value).__name__
    with pytest.raises(SerializationError) as caught:
        SAMPLES.encode(value)
    assert caught.type is SerializationError
    assert str(caught.value) == (
        f"cannot encode builtins.{name}: an event or snapshot must be an instance of a registered "
        "class (a dataclass, NamedTuple, enum or class with to_fields()/from_fields()) and "
        f"{name} cannot be registered; store the value in a field of such a class, e.g. a frozen "
        'dataclass decorated with @event_type("Name")'
    )
    with pytest.raises(SerializationError, match=f"cannot register builtins.{name}: only"):
        samples().register(type(value), name)  # the fix the message must not suggest


@pytest.mark.parametrize(
    ("value", "path", "type_name"),
    [
        (object(), "value", "builtins.object"),
        ({"a": [1, object()]}, "value['a'][1]", "builtins.object"),
        ([Point(1, 2), Unregistered(3)], "value[1]", "tests.test_serialization.Unregistered"),
        ((Shade.DARK,), "value[0]", "tests.test_serialization.Shade"),
        (OrderedDict(a=1), "value", "collections.OrderedDict"),
        ([{1.5j}], "value[0][*]", "builtins.complex"),
        (Basket([1, Money(Decimal(1), UNENCODABLE)]), "value.items[1].currency", "builtins.object"),
    ],
)
def test_unsupported_value_is_an_error_naming_its_type_and_field_path(
    value: Any, path: str, type_name: str
) -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.encode(Holder(value))
    assert caught.type is SerializationError
    assert str(caught.value) == (
        f"cannot encode tests.test_serialization.Holder as 'Holder': field {path!r} holds a value "
        f"of unsupported type {type_name!r} ({SUPPORTED})"
    )


def test_unsupported_dict_key_is_an_error_naming_the_key() -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.encode(Holder({("a", 1.5j): 1}))
    assert str(caught.value).startswith(
        "cannot encode tests.test_serialization.Holder as 'Holder': field \"value[('a', 1.5j)] "
        "(the key)[1]\" holds a value of unsupported type 'builtins.complex'"
    )


def test_string_that_is_not_valid_utf8_is_an_error() -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.encode(Holder(["ok", "bad \ud800"]))
    assert str(caught.value) == (
        "cannot encode tests.test_serialization.Holder as 'Holder': field 'value[1]' holds a str "
        "that is not valid UTF-8 (surrogates not allowed)"
    )


def test_reference_cycle_is_an_error() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError) as caught:
        SAMPLES.encode(Holder(loop))
    assert str(caught.value) == (
        "cannot encode tests.test_serialization.Holder as 'Holder': field 'value[1]' refers back "
        "to an enclosing value (a reference cycle)"
    )


class Broken:
    def to_fields(self) -> dict[str, Any]:
        raise RuntimeError("no fields today")

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Broken:
        return cls()


def test_failing_to_fields_hook_is_a_serialization_error() -> None:
    serializer = samples()
    serializer.register(Broken, "Broken")
    with pytest.raises(SerializationError) as caught:
        serializer.encode(Holder([Broken()]))
    assert str(caught.value) == (
        "cannot encode tests.test_serialization.Holder as 'Holder': field 'value[0]': "
        "RuntimeError: no fields today"
    )
    with pytest.raises(SerializationError) as caught:
        serializer.encode(Broken())
    assert str(caught.value) == (
        "cannot encode tests.test_serialization.Broken as 'Broken': RuntimeError: no fields today"
    )


def test_encoder_works_normally_after_a_failed_encode() -> None:
    serializer = samples()
    good = Holder([Point(1, 2), (3, Decimal("4.0"))])
    expected = serializer.encode(good)
    for bad in [object(), [1, (2, object())], "\ud800"]:
        with pytest.raises(SerializationError):
            serializer.encode(Holder(bad))
        assert serializer.encode(good) == expected


class Reentrant:
    """A hooked class whose stored form embeds another encoded object (nested encode calls)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def to_fields(self) -> dict[str, Any]:
        manifest, payload = SAMPLES.encode(self.inner)
        return {"manifest": manifest, "payload": payload}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Reentrant:
        return cls(SAMPLES.decode_one(fields["manifest"], fields["payload"]))


def test_encode_called_while_encoding_does_not_corrupt_either_payload() -> None:
    serializer = samples()
    serializer.register(Reentrant, "Reentrant")
    original = Holder([Reentrant(Holder((1, Point(2, 3)))), (4, Reentrant(Point(5, 6)))])
    manifest, payload = serializer.encode(original)
    decoded = serializer.decode_one(manifest, payload)
    assert isinstance(decoded, Holder)
    assert decoded.value[0].inner == Holder((1, Point(2, 3)))
    assert decoded.value[1][1].inner == Point(5, 6)


# -- decode errors -------------------------------------------------------------------------------


def test_unknown_type_name_is_an_error_naming_it_and_the_persistence_id() -> None:
    with pytest.raises(UnknownManifestError) as caught:
        SAMPLES.decode("ClientDeleted", msgpack.packb({}), persistence_id="client-7")
    assert (caught.value.manifest, caught.value.persistence_id) == ("ClientDeleted", "client-7")
    assert str(caught.value) == (
        "unknown type name 'ClientDeleted' (persistence_id='client-7'): register the type, or an "
        "upcaster for it, with the serializer before replaying"
    )
    with pytest.raises(UnknownManifestError, match="'ClientDeleted' \\(persistence_id='c-8'\\)"):
        SAMPLES.decode_one("ClientDeleted", msgpack.packb({}), persistence_id="c-8")


def test_unknown_nested_type_name_is_an_error_naming_it_and_the_persistence_id() -> None:
    payload = msgpack.packb({"value": msgpack.ExtType(1, msgpack.packb(["Gone", {}]))})
    for decode in (SAMPLES.decode, SAMPLES.decode_one):
        with pytest.raises(UnknownManifestError) as caught:
            decode("Holder", payload, "client-7")
        assert (caught.value.manifest, caught.value.persistence_id) == ("Gone", "client-7")


def test_nested_value_that_does_not_fit_its_class_is_an_error_naming_both_types() -> None:
    payload = msgpack.packb({"value": msgpack.ExtType(1, msgpack.packb(["Point", {"x": 1}]))})
    with pytest.raises(SerializationError) as caught:
        SAMPLES.decode("Holder", payload, "client-7")
    assert str(caught.value) == (
        "cannot decode 'Holder' (persistence_id='client-7'): nested 'Point': stored form lacks "
        "required field(s) 'y' of Point; give them defaults or register an upcaster for 'Point' "
        "that adds them"
    )


VALID = SAMPLES.encode(Holder([Decimal("1.0"), (2, "three"), Point(4, 5), uuid.UUID(int=6)]))[1]


@given(st.integers(min_value=0, max_value=len(VALID) - 1))
def test_truncated_payload_is_a_serialization_error_naming_type_and_persistence_id(
    cut: int,
) -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.decode("Holder", VALID[:cut], persistence_id="client-7")
    assert caught.type is SerializationError
    assert str(caught.value).startswith(
        "cannot decode 'Holder' (persistence_id='client-7'): corrupt payload: "
    )


def test_payload_with_trailing_bytes_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.decode_one("Holder", VALID + b"\x00", persistence_id="client-7")
    assert str(caught.value).startswith(
        "cannot decode 'Holder' (persistence_id='client-7'): corrupt payload: ExtraData"
    )


@pytest.mark.parametrize(
    ("ext", "reason"),
    [
        (msgpack.ExtType(99, b""), "ValueError: unknown extension type code 99"),
        (msgpack.ExtType(2, b"ten"), "InvalidOperation"),
        (msgpack.ExtType(6, b"short"), "ValueError: bytes is not a 16-char string"),
        (msgpack.ExtType(1, msgpack.packb("Point")), "ValueError: a nested object must be stored"),
        (msgpack.ExtType(5, msgpack.packb([1, 2])), "ValueError: timedelta must be stored"),
        (msgpack.ExtType(10, b""), "ValueError: empty big integer"),
    ],
)
def test_malformed_extension_value_is_a_serialization_error(ext: Any, reason: str) -> None:
    with pytest.raises(SerializationError) as caught:
        SAMPLES.decode("Holder", msgpack.packb({"value": ext}), persistence_id="client-7")
    assert str(caught.value).startswith(
        f"cannot decode 'Holder' (persistence_id='client-7'): corrupt payload: {reason}"
    )


@given(st.binary(max_size=64) | st.binary(max_size=8).map(lambda tail: VALID[:40] + tail))
@example(b"\xc7\x00\x02")
@example(b"\x81\xc0\x00")
def test_any_bytes_either_decode_or_raise_serialization_error(payload: bytes) -> None:
    for manifest in ("Holder", "Color", "Money", "Temperature"):
        error: SerializationError | None = None
        try:
            SAMPLES.decode(manifest, payload, persistence_id="client-7")
        except SerializationError as exc:
            error = exc
        assert error is None or "client-7" in str(error)
        with contextlib.suppress(SerializationError):
            SAMPLES.to_primitive(manifest, payload)


# -- upcasters -----------------------------------------------------------------------------------


def stored(cls: type, obj: Any, name: str, version: int = 1) -> tuple[str, bytes]:
    """Encode ``obj`` the way an older version of the application stored it."""
    old = Serializer()
    old.register(cls, name, version=version)
    return old.encode(obj)


@dataclass(frozen=True)
class ClientAddedV1:
    client_id: str
    name: str


@dataclass(frozen=True)
class ClientRegistered:
    client_id: str
    name: str


def test_upcaster_renames_an_event_type() -> None:
    serializer = Serializer()
    serializer.register(ClientRegistered, "ClientRegistered")
    serializer.add_upcaster("ClientAdded", lambda fields: [("ClientRegistered", fields)])
    manifest, payload = stored(ClientAddedV1, ClientAddedV1("c-1", "Ann"), "ClientAdded")
    assert serializer.decode(manifest, payload, "client-1") == [ClientRegistered("c-1", "Ann")]
    assert serializer.decode_one(manifest, payload, "client-1") == ClientRegistered("c-1", "Ann")


@dataclass(frozen=True)
class DepositedV1:
    client_id: str
    amount: Decimal


@dataclass(frozen=True)
class Deposited:
    client_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class DepositedWithDefault:
    client_id: str
    amount: Decimal
    currency: str = "EUR"


def add_currency(fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("Deposited", {"currency": "CHF", **fields})]


def test_upcaster_adds_a_field_keeping_the_type_name() -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=2)
    serializer.add_upcaster("Deposited", add_currency)
    old = stored(DepositedV1, DepositedV1("c-1", Decimal("5.00")), "Deposited")
    assert serializer.decode(*old) == [Deposited("c-1", Decimal("5.00"), "CHF")]
    new = serializer.encode(Deposited("c-1", Decimal("6.00"), "USD"))
    assert serializer.decode(*new) == [Deposited("c-1", Decimal("6.00"), "USD")]


def test_field_added_with_a_default_needs_no_upcaster() -> None:
    serializer = Serializer()
    serializer.register(DepositedWithDefault, "Deposited")
    old = stored(DepositedV1, DepositedV1("c-1", Decimal("5.00")), "Deposited")
    assert serializer.decode_one(*old) == DepositedWithDefault("c-1", Decimal("5.00"), "EUR")


@dataclass(frozen=True)
class AddressChanged:
    street: str
    city: str


@dataclass(frozen=True)
class StreetChanged:
    street: str


@dataclass(frozen=True)
class CityChanged:
    city: str


def split_address(fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("StreetChanged", {"street": fields["street"]}),
        ("CityChanged", {"city": fields["city"]}),
    ]


def test_upcaster_splits_an_event_into_several() -> None:
    serializer = Serializer()
    serializer.register(StreetChanged, "StreetChanged")
    serializer.register(CityChanged, "CityChanged")
    serializer.add_upcaster("AddressChanged", split_address)
    old = stored(AddressChanged, AddressChanged("Main St 1", "Bern"), "AddressChanged")
    assert serializer.decode(*old, persistence_id="client-1") == [
        StreetChanged("Main St 1"),
        CityChanged("Bern"),
    ]
    with pytest.raises(SerializationError) as caught:
        serializer.decode_one(*old, persistence_id="client-1")
    assert str(caught.value) == (
        "cannot decode 'AddressChanged' (persistence_id='client-1') as one object: its upcasters "
        "turned it into 2; use decode()"
    )


def test_upcaster_drops_an_event_type() -> None:
    serializer = Serializer()
    serializer.add_upcaster("AddressChanged", lambda fields: [])
    old = stored(AddressChanged, AddressChanged("Main St 1", "Bern"), "AddressChanged")
    assert serializer.decode(*old, persistence_id="client-1") == []
    with pytest.raises(SerializationError, match="turned it into 0; use decode\\(\\)"):
        serializer.decode_one(*old, persistence_id="client-1")


def test_upcasters_chain_through_renames_and_added_fields() -> None:
    serializer = Serializer()
    serializer.register(Deposited, "Deposited", version=2)
    serializer.add_upcaster("MoneyIn", lambda fields: [("FundsAdded", fields)])
    serializer.add_upcaster("FundsAdded", lambda fields: [("Deposited", fields)])
    serializer.add_upcaster("Deposited", add_currency)
    old = stored(DepositedV1, DepositedV1("c-1", Decimal("5.00")), "MoneyIn")
    assert serializer.decode_one(*old) == Deposited("c-1", Decimal("5.00"), "CHF")


def test_upcasters_that_loop_are_an_error() -> None:
    serializer = Serializer()
    serializer.add_upcaster("A", lambda fields: [("B", fields)])
    serializer.add_upcaster("B", lambda fields: [("A", fields)])
    with pytest.raises(SerializationError) as caught:
        serializer.decode("A", msgpack.packb({}))
    assert str(caught.value) == "upcasters form a cycle: A -> B -> A"


def test_upcaster_naming_an_unregistered_type_is_an_unknown_manifest_error() -> None:
    serializer = Serializer()
    serializer.add_upcaster("ClientAdded", lambda fields: [("ClientEnrolled", fields)])
    with pytest.raises(UnknownManifestError) as caught:
        serializer.decode(*stored(ClientAddedV1, ClientAddedV1("c", "n"), "ClientAdded"), "c-1")
    assert (caught.value.manifest, caught.value.persistence_id) == ("ClientEnrolled", "c-1")


def test_failing_upcaster_is_a_serialization_error_naming_type_and_persistence_id() -> None:
    serializer = Serializer()
    serializer.register(StreetChanged, "StreetChanged")
    serializer.add_upcaster("AddressChanged", lambda fields: [("StreetChanged", fields["road"])])
    old = stored(AddressChanged, AddressChanged("s", "c"), "AddressChanged")
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*old, "client-1")
    assert str(caught.value) == (
        "upcaster for 'AddressChanged' failed (persistence_id='client-1'): KeyError: 'road'"
    )


def test_upcaster_returning_something_other_than_pairs_is_an_error() -> None:
    serializer = Serializer()
    serializer.add_upcaster("AddressChanged", lambda fields: fields)  # type: ignore[arg-type,return-value]
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*stored(AddressChanged, AddressChanged("s", "c"), "AddressChanged"))
    assert str(caught.value) == (
        "upcaster for 'AddressChanged' must return a list of (manifest, fields) pairs, got "
        "{'street': 's', 'city': 'c'}"
    )


def test_second_upcaster_for_a_type_name_is_an_error() -> None:
    serializer = Serializer()
    serializer.add_upcaster("A", lambda fields: [])
    with pytest.raises(SerializationError) as caught:
        serializer.add_upcaster("A", lambda fields: [])
    assert str(caught.value) == "an upcaster for 'A' is already registered"


@dataclass(frozen=True)
class Customer:
    name: str
    address: Any


def test_upcaster_renames_a_nested_type() -> None:
    old_serializer = Serializer()
    old_serializer.register(Customer, "Customer")
    old_serializer.register(AddressChanged, "Addr")
    old = old_serializer.encode(Customer("Ann", [AddressChanged("Main St 1", "Bern")]))
    serializer = Serializer()
    serializer.register(Customer, "Customer")
    serializer.register(AddressChanged, "AddressChanged")
    serializer.add_upcaster("Addr", lambda fields: [("AddressChanged", fields)])
    assert serializer.decode_one(*old) == Customer("Ann", [AddressChanged("Main St 1", "Bern")])


def test_nested_value_must_upcast_to_exactly_one_value() -> None:
    old_serializer = Serializer()
    old_serializer.register(Customer, "Customer")
    old_serializer.register(AddressChanged, "AddressChanged")
    old = old_serializer.encode(Customer("Ann", AddressChanged("Main St 1", "Bern")))
    serializer = Serializer()
    serializer.register(Customer, "Customer")
    serializer.register(StreetChanged, "StreetChanged")
    serializer.register(CityChanged, "CityChanged")
    serializer.add_upcaster("AddressChanged", split_address)
    with pytest.raises(SerializationError) as caught:
        serializer.decode(*old, persistence_id="customer-1")
    assert str(caught.value) == (
        "cannot decode 'Customer' (persistence_id='customer-1'): upcasters turned nested "
        "'AddressChanged' into 2 values; a nested value must upcast to exactly one"
    )


# -- to_primitive --------------------------------------------------------------------------------


def test_to_primitive_needs_no_registered_classes_and_gives_plain_json() -> None:
    ident = uuid.UUID(int=7)
    manifest, payload = SAMPLES.encode(
        Basket(
            items=[
                Decimal("10000.00"),
                b"\x00\xff",
                dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                dt.date(2024, 5, 1),
                dt.timedelta(days=1, seconds=1, microseconds=500_000),
                ident,
                (1, 2),
                frozenset({"b", "a"}),
                Point(1, 2),
                Color.BLUE,
                float("nan"),
                float("-inf"),
                2**70,
            ],
            meta={"k": None, 3: True, (1, "x"): 1.5},
        )
    )
    primitive = Serializer().to_primitive(manifest, payload)
    assert primitive == {
        "items": [
            "10000.00",
            "AP8=",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01",
            "1 day, 0:00:01.500000",
            "00000000-0000-0000-0000-000000000007",
            [1, 2],
            ["a", "b"],
            {"$type": "Point", "$value": {"x": 1, "y": 2}},
            {"$type": "Color", "$value": [0, 0, 255]},
            "NaN",
            "-Infinity",
            2**70,
        ],
        "meta": {"k": None, "3": True, '[1, "x"]': 1.5},
    }
    json.dumps(primitive, allow_nan=False)


def test_to_primitive_keeps_unknown_extension_types_as_base64() -> None:
    payload = msgpack.packb({"future": msgpack.ExtType(99, b"\x01\x02")})
    assert Serializer().to_primitive("Future", payload) == {
        "future": {"$ext": 99, "$data": base64.b64encode(b"\x01\x02").decode()}
    }


@given(values)
def test_to_primitive_of_any_stored_value_is_strict_json(value: Any) -> None:
    manifest, payload = SAMPLES.encode(Holder(value))
    json.dumps(Serializer().to_primitive(manifest, payload), allow_nan=False)


def test_to_primitive_of_a_corrupt_payload_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError) as caught:
        Serializer().to_primitive("Holder", VALID[:-1])
    assert re.match(r"cannot decode 'Holder': corrupt payload: ValueError: ", str(caught.value))
