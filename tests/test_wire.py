"""The typed wire codec: round trips, canonical bytes, and a decoder that only ever raises DecodeError."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgerow.protocols import wire
from hedgerow.protocols.canonical import canonical_pack
from hedgerow.protocols.wire import DecodeError, decode, encode, from_wire, message, to_wire

# Test-only tags live far above the project's ranges (see CONTRIBUTING.md).


@message(60001)
@dataclass(frozen=True, slots=True)
class Leaf:
    flag: bool
    count: int
    ratio: float
    label: str
    blob: bytes


@message(60002)
@dataclass(frozen=True, slots=True)
class Other:
    n: int


@message(60003)
@dataclass(frozen=True, slots=True)
class Tree:
    leaf: Leaf
    maybe: int | None
    leaves: tuple[Leaf, ...]
    by_name: dict[str, int]
    by_id: dict[bytes, tuple[str, ...]]
    by_index: dict[int, Leaf | None]
    pair: tuple[int, str]
    either: Leaf | Other
    children: tuple[Tree, ...]


@message(60004)
@dataclass(frozen=True, slots=True)
class Ranged:
    height: int
    digest: bytes

    def validate(self) -> None:
        if not 0 <= self.height < 1_000:
            raise ValueError(f"height {self.height} out of range")
        if len(self.digest) != 32:
            raise ValueError("digest must be 32 bytes")


@message(60005)
@dataclass(frozen=True, slots=True)
class Scalars:
    blobs: tuple[bytes, ...]
    counts: tuple[int, ...]


ints = st.integers(-(2**63), 2**64 - 1)


def leaves() -> st.SearchStrategy[Leaf]:
    return st.builds(
        Leaf,
        flag=st.booleans(),
        count=st.integers(-(2**63), 2**64 - 1),
        ratio=st.floats(allow_nan=False),
        label=st.text(max_size=20),
        blob=st.binary(max_size=40),
    )


def trees() -> st.SearchStrategy[Tree]:
    def extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
        return st.builds(
            Tree,
            leaf=leaves(),
            maybe=st.none() | st.integers(-5, 5),
            leaves=st.lists(leaves(), max_size=3).map(tuple),
            by_name=st.dictionaries(st.text(max_size=5), ints, max_size=4),
            by_id=st.dictionaries(st.binary(max_size=4), st.lists(st.text(max_size=3), max_size=2).map(tuple),
                                  max_size=3),
            by_index=st.dictionaries(st.integers(-100, 100), st.none() | leaves(), max_size=3),
            pair=st.tuples(ints, st.text(max_size=4)),
            either=leaves() | st.builds(Other, n=st.integers(0, 9)),
            children=st.lists(children, max_size=2).map(tuple),
        )

    leaf_tree = st.builds(
        Tree, leaf=leaves(), maybe=st.none(), leaves=st.just(()), by_name=st.just({}), by_id=st.just({}),
        by_index=st.just({}), pair=st.just((0, "")), either=st.builds(Other, n=st.just(1)),
        children=st.just(()),
    )
    return st.recursive(leaf_tree, extend, max_leaves=4)


@given(trees())
def test_round_trip_and_canonical_bytes(tree: Tree) -> None:
    data = encode(tree)
    assert decode(data) == tree
    assert from_wire(to_wire(tree)) == tree
    assert data == canonical_pack(to_wire(tree))  # encode is the canonical encoding
    assert encode(decode(data)) == data


@given(st.binary(max_size=300))
def test_decoder_on_arbitrary_bytes_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8) | st.sampled_from([60001, 60002, 60003, 60004]),
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.integers(-3, 3) | st.text(max_size=3) | st.binary(max_size=3), inner, max_size=4),
    max_leaves=30,
)


@given(st.sampled_from([60001, 60002, 60003, 60004, 1, 60099]), st.lists(msgpack_values, max_size=10))
def test_decoder_on_arbitrary_structures_raises_only_decode_error(tag: int, fields: list[Any]) -> None:
    for attempt in ([tag, *fields], fields):
        with contextlib.suppress(DecodeError):
            decode(msgpack.packb(attempt, use_bin_type=True))
        with contextlib.suppress(DecodeError):
            from_wire(attempt)


@given(trees(), st.data())
def test_mutated_valid_frames_raise_only_decode_error(tree: Tree, data: st.DataObject) -> None:
    frame = bytearray(encode(tree))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(frame) - 1))
        frame[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    for candidate in (bytes(frame), bytes(frame[:cut])):
        with contextlib.suppress(DecodeError):
            decode(candidate)


def test_validate_ranges_are_enforced_on_decode_not_on_encode() -> None:
    good = Ranged(height=5, digest=bytes(32))
    assert decode(encode(good)) == good
    for bad in (Ranged(height=1_000, digest=bytes(32)), Ranged(height=1, digest=b"short")):
        data = encode(bad)  # encoding an invalid message is allowed (tests craft Byzantine input)
        with pytest.raises(DecodeError, match="Ranged"):
            decode(data)


@pytest.mark.parametrize(
    ("wire_list", "reason"),
    [
        ([60002, True], "expected int"),          # bool is not int
        ([60002, 1.0], "expected int"),
        ([60002], "fields"),                      # too few
        ([60002, 1, 2], "fields"),                # too many
        ([60001, 1, 1, 1.0, "", b""], "expected bool"),
        ([60001, True, 1, 1, "", b""], "expected float"),  # int is not float on the wire
        ([60001, True, 1, 1.0, b"", b""], "expected str"),
        ([60001, True, 1, 1.0, "", ""], "expected bytes"),
        ([59999, 1], "unknown message tag"),
        (["60002", 1], "tag must be an int"),
        ([], "non-empty"),
    ],
)
def test_type_errors_are_decode_errors(wire_list: list[Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(msgpack.packb(wire_list, use_bin_type=True))


@given(blobs=st.lists(st.binary(max_size=8), max_size=5), counts=st.lists(ints, max_size=5))
def test_scalar_tuples_round_trip_and_reject_a_stray_item(blobs: list[bytes], counts: list[int]) -> None:
    value = Scalars(tuple(blobs), tuple(counts))
    assert decode(encode(value)) == value
    for wire_list, reason in (([60005, [*blobs, 7], counts], r"blobs\[\]: expected bytes, got int"),
                              ([60005, blobs, [*counts, True]], r"counts\[\]: expected int, got bool"),
                              ([60005, blobs, [*counts, "1"]], r"counts\[\]: expected int, got str")):
        with pytest.raises(DecodeError, match=reason):
            decode(msgpack.packb(wire_list, use_bin_type=True))
    with pytest.raises(TypeError, match="expected bytes"):
        encode(Scalars((*blobs, "x"), tuple(counts)))  # type: ignore[arg-type]


def test_nested_message_must_have_the_declared_class() -> None:
    tree = Tree(Leaf(True, 1, 0.5, "a", b"b"), None, (), {}, {}, {}, (1, "x"), Other(3), ())
    wire_list = to_wire(tree)
    wire_list[1] = [60002, 1]  # an Other where a Leaf is declared
    with pytest.raises(DecodeError, match="Leaf"):
        from_wire(wire_list)
    wire_list = to_wire(tree)
    wire_list[5] = {1: 2}  # str keys declared
    with pytest.raises(DecodeError, match="key of type int"):
        from_wire(wire_list)


def test_frame_cap_and_msgpack_limits() -> None:
    data = encode(Leaf(True, 1, 0.0, "x", b"y" * 2000))
    with pytest.raises(DecodeError, match="exceeds cap"):
        decode(data, frame_bytes_max=1000)
    assert decode(data, frame_bytes_max=len(data)).blob == b"y" * 2000
    # An array header claiming 2**32-1 elements in a 6-byte frame is refused before allocating.
    with pytest.raises(DecodeError, match="bad msgpack"):
        decode(b"\xdd\xff\xff\xff\xff\x00")
    with pytest.raises(DecodeError, match="ext"):
        decode(msgpack.packb([60002, msgpack.ExtType(5, b"xx")]))
    with pytest.raises(DecodeError, match="bad msgpack"):
        decode(encode(Other(1)) + b"\x00")  # trailing bytes
    with pytest.raises(DecodeError):
        decode(b"")
    with pytest.raises(DecodeError):
        decode("not bytes")  # type: ignore[arg-type]


def test_deep_nesting_is_a_decode_error() -> None:
    deep = b"\x91" * 5000 + encode(Other(1))  # 5000 nested one-element arrays
    with pytest.raises(DecodeError):
        decode(deep)
    tree: Any = [60003, [60001, True, 1, 1.0, "", b""], None, [], {}, {}, {}, [1, ""], [60002, 1], []]
    for _ in range(3000):
        tree = [60003, [60001, True, 1, 1.0, "", b""], None, [], {}, {}, {}, [1, ""], [60002, 1], [tree]]
    with pytest.raises(DecodeError):
        from_wire(tree)


def test_expected_class() -> None:
    assert decode(encode(Other(2)), expected=Other) == Other(2)
    with pytest.raises(DecodeError, match="expected Leaf"):
        decode(encode(Other(2)), expected=Leaf)


def test_float_fields_widen_ints_and_keep_special_values() -> None:
    leaf = Leaf(False, 0, 3, "", b"")  # type: ignore[arg-type]  # an int where float is declared
    assert decode(encode(leaf)).ratio == 3.0
    assert math.isinf(decode(encode(Leaf(False, 0, math.inf, "", b""))).ratio)


def test_registration_rules() -> None:
    with pytest.raises(ValueError, match="already used"):

        @message(60002)
        @dataclass(frozen=True, slots=True)
        class Clash:
            n: int

    with pytest.raises(TypeError, match="frozen"):

        @message(60010)
        @dataclass
        class Mutable:
            n: int

    with pytest.raises(TypeError, match="above"):
        message(60011)(type("NotADataclass", (), {}))
    with pytest.raises(ValueError):
        message(-1)
    assert wire.tag_of(Tree) == 60003 and wire.registered()[60003] is Tree


def test_encode_rejects_wrong_types_with_type_error() -> None:
    with pytest.raises(TypeError):
        encode(Other(n="1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode(Other(n=True))
    with pytest.raises(TypeError, match="not a registered"):
        encode(object())


def test_unsupported_annotation_is_reported_on_first_use() -> None:
    @message(60020)
    @dataclass(frozen=True, slots=True)
    class WithList:
        items: list[int]

    with pytest.raises(TypeError, match="unsupported"):
        encode(WithList([1]))


def test_fields_follow_declaration_order() -> None:
    names = [f.name for f in dataclasses.fields(Leaf)]
    assert names == ["flag", "count", "ratio", "label", "blob"]
    assert to_wire(Leaf(True, 2, 0.5, "l", b"b")) == [60001, True, 2, 0.5, "l", b"b"]
    assert typing.get_type_hints(Leaf)["ratio"] is float
