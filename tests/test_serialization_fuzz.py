"""Fuzzing the decoder: whatever the bytes (random, hostile msgpack, nested thousands of levels
deep, truncated, bit-flipped), decoding gives a value or a SerializationError naming the type and
persistence id, and a journal dump gives plain JSON or a SerializationError. Never another
exception, never a crashed interpreter."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from persistence import SerializationError
from persistence.serialization import MAX_DEPTH
from tests.strategies import deep_payloads, extension_value, msgpack_values
from tests.test_serialization import SAMPLES, Holder, assert_same, values

MANIFESTS = ("Holder", "Point", "Color", "Money", "Temperature", "Basket")


def decodes_cleanly(payload: bytes) -> None:
    """Decoding ``payload`` under every sample type gives a value or a clean error; a replayed
    page decodes it to what :meth:`decode` gives, or leaves it to :meth:`decode`."""
    for manifest in MANIFESTS:
        decoded: list[Any] = []
        for decode in (SAMPLES.decode, SAMPLES.decode_one):
            error: SerializationError | None = None
            try:
                decoded.append(decode(manifest, payload, "client-7", 12))
            except SerializationError as exc:
                error = exc
            assert error is None or "'client-7'" in str(error), str(error)
        paged = SAMPLES.decode_rows([(12, manifest, payload)])
        assert paged == [] or (decoded and len(paged) == 1), (paged, decoded)
        if paged:
            assert_same(paged, decoded[0])
        error, plain = None, None
        try:
            plain = SAMPLES.to_primitive(manifest, payload)
        except SerializationError as exc:
            error = exc
        assert error is None or str(error).startswith(f"cannot decode {manifest!r}: "), str(error)
        json.dumps(plain, allow_nan=False)


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_random_bytes_decode_to_a_value_or_a_clean_error(payload: bytes) -> None:
    decodes_cleanly(payload)


@settings(max_examples=300)
@given(msgpack_values())
@example({"value": msgpack.ExtType(7, msgpack.packb([msgpack.Timestamp(0, 0)]))})
@example({"value": msgpack.ExtType(1, msgpack.packb(["Holder", {msgpack.ExtType(7, b"\x90"): 1}]))})
def test_any_msgpack_value_with_any_extension_types_decodes_to_a_value_or_a_clean_error(
    value: Any,
) -> None:
    decodes_cleanly(msgpack.packb(value))
    decodes_cleanly(msgpack.packb({"value": value}))


@settings(max_examples=300)
@given(
    st.integers(min_value=-128, max_value=127),
    st.binary(max_size=300) | msgpack_values(max_leaves=5).map(msgpack.packb),
)
def test_an_extension_value_of_any_type_code_decodes_to_a_value_or_a_clean_error(
    code: int, data: bytes
) -> None:
    decodes_cleanly(b"\x81\xa5value" + extension_value(code, data))


@settings(max_examples=60, deadline=None)
@given(deep_payloads())
def test_payloads_nested_hundreds_of_levels_deep_decode_or_fail_cleanly(payload: bytes) -> None:
    decodes_cleanly(payload)


@settings(deadline=None)
@given(values | deep_payloads(max_levels=MAX_DEPTH + 5), st.data())
def test_a_truncated_payload_is_a_serialization_error(value: Any, data: st.DataObject) -> None:
    payload = value if isinstance(value, bytes) else SAMPLES.encode(Holder(value))[1]
    cut = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="cut")
    for decode in (SAMPLES.decode, SAMPLES.decode_one):
        with pytest.raises(SerializationError) as corrupt:
            decode("Holder", payload[:cut], "client-7", 12)
        assert str(corrupt.value).startswith(
            "cannot decode 'Holder' (persistence_id='client-7', sequence_nr=12): corrupt payload: "
        )


@settings(deadline=None)
@given(values | deep_payloads(max_levels=MAX_DEPTH + 5), st.data())
def test_a_bit_flipped_payload_decodes_to_a_value_or_a_clean_error(
    value: Any, data: st.DataObject
) -> None:
    payload = bytearray(value if isinstance(value, bytes) else SAMPLES.encode(Holder(value))[1])
    positions = st.integers(min_value=0, max_value=len(payload) * 8 - 1)
    for bit in data.draw(st.lists(positions, min_size=1, max_size=4), label="bits"):
        payload[bit // 8] ^= 1 << (bit % 8)
    decodes_cleanly(bytes(payload))


@given(values)
def test_values_round_trip_whichever_way_the_payload_is_decoded(value: Any) -> None:
    """A payload with few bytes that can open a level takes a fast path; one with a hundred
    (here: a hundred empty lists beside the value) is decoded level by level. Both agree."""
    for event in (Holder(value), Holder([value, [[]] * MAX_DEPTH])):
        manifest, payload = SAMPLES.encode(event)
        assert_same(SAMPLES.decode_one(manifest, payload), event)
        assert_same(SAMPLES.decode(manifest, payload, "client-7", 12), [event])
