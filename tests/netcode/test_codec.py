"""The wire codec: round trips (HIDDEN included), canonical checksums, client refusals."""

from __future__ import annotations

import math
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.codec import (
    MAX_CLIENT_MESSAGE,
    PoseUpdate,
    ProtocolError,
    canonical,
    checksum,
    decode_server_message,
    encode,
    encode_single,
    parse_client_message,
)
from netcode.state import HIDDEN
from tests.netcode.sync_helpers import SLOW_OK

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.just(HIDDEN)
)
KEYS = st.integers(-(2**31), 2**31) | st.text(max_size=10)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_OK)
@given(VALUES)
def test_any_value_survives_encode_and_decode(value: Any) -> None:
    assert decode_server_message(encode(value)) == value


@settings(max_examples=50, deadline=None, suppress_health_check=SLOW_OK)
@given(VALUES)
def test_hidden_decodes_to_the_hidden_singleton(value: Any) -> None:
    decoded = decode_server_message(encode([value, HIDDEN, {"f": HIDDEN}]))
    assert decoded[1] is HIDDEN
    assert decoded[2]["f"] is HIDDEN


def test_hidden_is_ext_type_1_with_no_data() -> None:
    assert encode(HIDDEN) == b"\xc7\x00\x01"
    assert decode_server_message(encode({"t": "x", "v": HIDDEN}))["v"] is HIDDEN


def shuffled(value: Any, data: st.DataObject) -> Any:
    """The same value with every map's insertion order permuted."""
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {k: shuffled(value[k], data) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, data) for v in value]
    return value


def integral_floats_as_float(value: Any) -> Any:
    """The same value with every int that fits a float exactly written as a float."""
    if isinstance(value, dict):
        return {k: integral_floats_as_float(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_float(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return float(value)
    return value


STATE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=6)
    | st.just(HIDDEN)
    | st.floats(allow_nan=False)
)
STATE_VALUES = st.recursive(
    STATE_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
VIEW_STATES = st.fixed_dictionaries(
    {
        "e": st.dictionaries(
            st.integers(1, 10**6),
            st.tuples(
                st.text(max_size=5),
                st.dictionaries(st.text(max_size=5), STATE_VALUES, max_size=4),
            ).map(list),
            max_size=5,
        ),
        "l": st.dictionaries(st.text(max_size=5), st.lists(STATE_VALUES, max_size=3), max_size=3),
        "p": st.dictionaries(
            st.integers(1, 10**6),
            st.lists(st.integers(-(2**31), 2**32), min_size=4, max_size=4),
            max_size=4,
        ),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(VIEW_STATES, st.data())
def test_checksum_ignores_map_order_and_integral_float_spelling(
    state: dict[str, Any], data: st.DataObject
) -> None:
    expected = checksum(state)
    assert checksum(shuffled(state, data)) == expected
    assert checksum(integral_floats_as_float(state)) == expected
    # what a client decodes (tuples as lists, any order) checksums the same
    assert checksum(decode_server_message(encode(shuffled(state, data)))) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
@given(VIEW_STATES)
def test_checksum_sees_a_changed_value(state: dict[str, Any]) -> None:
    changed = dict(state, l={**state["l"], "\x00extra": ["x"]})
    assert checksum(changed) != checksum(state)


def test_canonical_orders_int_keys_numerically_then_str_keys_by_utf8() -> None:
    value = {"b": 1, 10: 2, "a": 3, 2: 4, "é": 5, "z": 6, -1: 7}
    assert list(canonical(value)) == [-1, 2, 10, "a", "b", "z", "é"]
    assert canonical({"x": [1.0, 2.5, -0.0]}) == {"x": [1, 2.5, 0]}
    assert isinstance(canonical(3.0), int)


def test_checksum_is_crc32_of_the_documented_bytes() -> None:
    # docs/protocol.md: sorted keys, smallest headers, HIDDEN as c7 00 01
    state = {"p": {}, "l": {}, "e": {1: ["k", {"f": HIDDEN, "n": 2.0}]}}
    expected = b"\x83\xa1e\x81\x01\x92\xa1k\x82\xa1f\xc7\x00\x01\xa1n\x02\xa1l\x80\xa1p\x80"
    assert checksum(state) == zlib.crc32(expected)


def test_checksum_of_a_state_holding_a_huge_integral_float() -> None:
    """Integral floats beyond msgpack's integers stay floats (fixed in f42d980)."""
    state = {"e": {1: ["monitor", {"count": 1e20}]}, "l": {}, "p": {}}
    assert isinstance(checksum(state), int)
    assert checksum(state) != checksum({"e": {1: ["monitor", {"count": 1e21}]}, "l": {}, "p": {}})


# -- client messages -------------------------------------------------------------------
def refused(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(data)
    return info.value


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x81\xa1t",
        b"\x81\xa1t\xa4ping\x00",
        b"\xff" * 10,
        encode({"t": "ping", "id": 1}) + b"\x01",
    ],
)
def test_bytes_that_are_not_one_msgpack_value_are_bad_frame(data: bytes) -> None:
    assert refused(data).code == "bad_frame"


@pytest.mark.parametrize("value", [[1, 2], "ping", 7, None, b"x"])
def test_a_message_that_is_not_a_map_is_bad_message(value: Any) -> None:
    assert refused(encode(value)).code == "bad_message"


@pytest.mark.parametrize("message", [{}, {"id": 1}, {"t": 1}, {"t": None}, {"t": b"ping"}])
def test_a_message_without_a_string_t_is_bad_message(message: dict[Any, Any]) -> None:
    error = refused(encode(message))
    assert error.code == "bad_message"
    assert "'t'" in error.message


@pytest.mark.parametrize("kind", ["pong", "welcome", "", "HELLO", "s"])
def test_an_unknown_type_is_unknown_type(kind: str) -> None:
    error = refused(encode({"t": kind}))
    assert error.code == "unknown_type"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"t": "ack", "tick": "ten"}, "tick"),
        ({"t": "ack", "tick": 1.5}, "tick"),
        ({"t": "ack", "tick": -1}, "tick"),
        ({"t": "ack"}, "tick"),
        ({"t": "ping", "id": [1]}, "id"),
        ({"t": "ping", "id": 2**53}, "id"),
        ({"t": "hello", "v": 1, "token": 5}, "token"),
        ({"t": "hello", "v": "one", "token": "x"}, "v"),
        (
            {"t": "hello", "v": 1, "token": "x", "resume": {"session": "s", "tick": "x", "op": 0}},
            "resume.tick",
        ),
        ({"t": "intent", "id": 1, "do": 3}, "do"),
        ({"t": "intent", "id": 1, "do": ""}, "do"),
        ({"t": "intent", "id": 1, "do": "chat", "args": [1]}, "args"),
        ({"t": "pose", "head": [0, 0, 0, 0, 0, 0]}, "head"),
        ({"t": "pose", "left": ["a", 0, 0, 0, 0, 0, 1]}, "left.0"),
        ({"t": "pose", "objects": {"one": [0, 0, 0, 0, 0, 0, 1]}}, "objects"),
        ({"t": "resync", "reason": 5}, "reason"),
    ],
)
def test_wrong_field_types_are_bad_message_naming_the_field(
    message: dict[str, Any], field: str
) -> None:
    error = refused(encode(message))
    assert error.code == "bad_message"
    assert f": {field}" in error.message, error.message


@pytest.mark.parametrize(
    "message",
    [
        {"t": "ack", "tick": 1, "extra": 1},
        {"t": "ping", "id": 1, "tick": 3},
        {"t": "intent", "id": 1, "do": "chat", "args": {}, "as": "facilitator"},
        {
            "t": "hello",
            "v": 1,
            "token": "x",
            "resume": {"session": "s", "tick": 0, "op": 0, "member": 1},
        },
    ],
)
def test_extra_fields_are_bad_message(message: dict[str, Any]) -> None:
    assert refused(encode(message)).code == "bad_message"


def test_rtc_messages_may_carry_extra_fields() -> None:
    message = parse_client_message(encode({"t": "rtc", "op": "offer", "sdp": "v=0"}))
    assert message.t == "rtc"


def test_an_oversize_message_is_too_large() -> None:
    big = encode(
        {"t": "intent", "id": 1, "do": "chat", "args": {f"k{i}": "x" * 4000 for i in range(20)}}
    )
    assert len(big) > MAX_CLIENT_MESSAGE
    assert refused(big).code == "too_large"
    assert refused(b"\x00" * (MAX_CLIENT_MESSAGE + 1)).code == "too_large"


def test_nesting_deeper_than_eight_levels_is_bad_message() -> None:
    # the message map is level 1, args level 2: 6 more lists reach level 8
    ok = {"t": "intent", "id": 1, "do": "x", "args": {"a": nested(6)}}
    assert parse_client_message(encode(ok)).t == "intent"
    deep = {"t": "intent", "id": 1, "do": "x", "args": {"a": nested(7)}}
    error = refused(encode(deep))
    assert error.code == "bad_message"
    assert "nests deeper" in error.message
    very_deep = b"\x83\xa1t\xa4ping\xa2id\x01\xa1x" + b"\x91" * 60_000 + b"\x01"
    assert refused(very_deep).code in ("bad_message", "bad_frame")


@pytest.mark.parametrize(
    "message",
    [
        {"t": "intent", "id": 1, "do": "chat", "args": {"text": "x" * (8 * 1024 + 1)}},
        {"t": "intent", "id": 1, "do": "chat", "args": {"text": b"x" * (8 * 1024 + 1)}},
        {"t": "intent", "id": 1, "do": "chat", "args": {"list": list(range(1025))}},
        {"t": "intent", "id": 1, "do": "chat", "args": {f"k{i}": 0 for i in range(257)}},
    ],
)
def test_over_long_strings_arrays_and_maps_are_bad_frame(message: dict[str, Any]) -> None:
    data = encode(message)
    assert len(data) <= MAX_CLIENT_MESSAGE
    assert refused(data).code == "bad_frame"


def test_ext_types_other_than_hidden_with_data_are_bad_frame() -> None:
    data = msgpack.packb({"t": "ping", "id": 1, "x": msgpack.ExtType(5, b"abc")})
    assert refused(data).code == "bad_frame"


@pytest.mark.parametrize(
    "message",
    [
        {"t": "intent", "id": 1, "do": "chat", "args": {"text": HIDDEN}},
        {"t": "intent", "id": 1, "do": "present", "args": {"member": [HIDDEN]}},
        {"t": "ping", "id": 1, "x": {"y": HIDDEN}},
    ],
)
def test_hidden_from_a_client_is_bad_message(message: dict[str, Any]) -> None:
    """HIDDEN is something the server says; a client echoing it would poison the record."""
    error = refused(encode(message))
    assert error.code == "bad_message"
    assert "extension" in error.message


NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=50)
@given(NON_FINITE, st.integers(0, 3))
def test_a_non_finite_number_anywhere_is_bad_message(number: float, depth: int) -> None:
    value: Any = number
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    error = refused(encode({"t": "intent", "id": 1, "do": "give", "args": {"dose": value}}))
    assert error.code == "bad_message"
    assert "finite" in error.message


POSE_PLACES = st.sampled_from(["head", "left", "right", "objects"])


@settings(max_examples=50)
@given(NON_FINITE, POSE_PLACES, st.integers(0, 6), st.booleans())
def test_a_non_finite_number_in_a_pose_is_bad_message(
    number: float, place: str, index: int, single: bool
) -> None:
    """Poses skip the codec's walk (their model refuses what it would have): still refused."""
    values: list[float] = [0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0]
    values[index] = number
    message: dict[str, Any] = {"t": "pose"}
    message[place] = {5: values} if place == "objects" else values
    error = refused((encode_single if single else encode)(message))
    assert error.code == "bad_message"
    assert "finite" in error.message and place in error.message


def test_nesting_in_a_typed_message_is_bad_message() -> None:
    """Only free-form types (intent, rtc) are walked for depth; the others' models refuse
    anything their fields do not name, however deep."""
    assert refused(encode({"t": "ping", "id": 1, "x": nested(20)})).code == "bad_message"
    assert refused(encode({"t": "ack", "tick": nested(20)})).code == "bad_message"


@pytest.mark.parametrize(
    "message",
    [
        {"t": "hello", "v": 1, "token": "abc"},
        {
            "t": "hello",
            "v": 1,
            "token": "abc",
            "room": "r1",
            "resume": {"session": "s", "tick": 3, "op": 9},
        },
        {"t": "ack", "tick": 0},
        {
            "t": "pose",
            "head": [0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0],
            "objects": {7: [0, 0, 0, 0, 0, 0, 1]},
        },
        {"t": "intent", "id": 2**53 - 1, "do": "chat", "args": {"text": "hi"}},
        {"t": "resync"},
        {"t": "ping", "id": 0},
    ],
)
def test_well_formed_messages_are_accepted(message: dict[str, Any]) -> None:
    parsed = parse_client_message(encode(message))
    assert parsed.t == message["t"]


def test_pose_values_arrive_as_floats() -> None:
    parsed = parse_client_message(encode({"t": "pose", "head": [0, 1, 2, 0, 0, 0, 1]}))
    assert isinstance(parsed, PoseUpdate)
    head = parsed.head
    assert head is not None
    assert head == [0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 1.0]
    assert all(isinstance(v, float) and math.isfinite(v) for v in head)


@pytest.mark.parametrize(
    "message",
    [
        {"t": "ack", "tick": "5"},
        {"t": "ack", "tick": True},
        {"t": "ping", "id": "7"},
        {"t": "hello", "v": "1", "token": "x"},
        {"t": "intent", "id": 1, "do": b"chat"},
        {"t": "pose", "head": ["0", "0", "0", "0", "0", "0", "1"]},
    ],
)
def test_values_of_another_type_are_not_coerced(message: dict[str, Any]) -> None:
    """No silent coercion: lax pydantic once turned '5' into 5 (fixed in f42d980)."""
    assert refused(encode(message)).code == "bad_message"


@pytest.mark.parametrize(
    ("value", "as_int"),
    [
        (2.0**62, True),
        (-(2.0**62), True),
        (2.0**63 - 1024, True),
        (2.0**63, False),
        (-(2.0**63), False),
        (1e300, False),
        (float("inf"), False),
        (0.5, False),
    ],
)
def test_integral_floats_below_2_63_in_magnitude_are_written_as_integers(
    value: float, as_int: bool
) -> None:
    # docs/protocol.md, "Checksums"
    assert isinstance(canonical(value), int) is as_int
    assert isinstance(checksum({"e": {}, "l": {"x": [value]}, "p": {}}), int)
