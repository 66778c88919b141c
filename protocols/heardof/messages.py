"""Heard-Of wire messages (tags 50-69) and the value codec for algorithm payloads (spec §3).

Algorithm payloads and decisions are arbitrary ordered values (ints, strings, tuples, frozensets,
Fractions, nested `Envelope`/`FloodPayload` records), so `RoundMsg` carries them as bytes packed by
`pack_value`: msgpack where arrays are tuples, maps have sorted keys, and three extension types
carry a frozenset (1), a Fraction (2) and a registered wire message (3). `unpack_value` is the
checking inverse; it raises `ValueError` on anything malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import msgpack

from hedgerow.protocols import wire
from hedgerow.protocols.canonical import _sort_key

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
SIGN_DOMAIN = "hedgerow/ho/v1"
VALUE_DEPTH_MAX = 32

_EXT_FROZENSET = 1
_EXT_FRACTION = 2
_EXT_MESSAGE = 3


def _check_range(name: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise ValueError(f"{name}={value} out of range 0..{top}")


@wire.message(50)
@dataclass(frozen=True, slots=True)
class RoundMsg:
    """Round-r message of `sender` in one HO run (`instance`); payload None = Null."""

    instance: int
    round: int
    sender: int
    payload: bytes | None
    decided: bytes | None
    sig: bytes | None

    def validate(self) -> None:
        _check_range("instance", self.instance, U64_MAX)
        _check_range("round", self.round, U32_MAX)
        _check_range("sender", self.sender, U16_MAX)
        if self.sig is not None and len(self.sig) != 64:
            raise ValueError("signature must be 64 bytes")

    def sign_fields(self) -> list[Any]:
        return [self.instance, self.round, self.sender, self.payload, self.decided]


@wire.message(51)
@dataclass(frozen=True, slots=True)
class DecidedNotice:
    """Sent once to all when a process halts (colorless algorithms only)."""

    instance: int
    sender: int
    round: int
    value: bytes
    sig: bytes | None

    def validate(self) -> None:
        _check_range("instance", self.instance, U64_MAX)
        _check_range("round", self.round, U32_MAX)
        _check_range("sender", self.sender, U16_MAX)


@wire.message(52)
@dataclass(frozen=True, slots=True)
class HoRecord:
    """Persist payload: the state a process resumes from (round entered, state, decision)."""

    instance: int
    round: int
    state: bytes
    decision: bytes | None

    def validate(self) -> None:
        _check_range("instance", self.instance, U64_MAX)
        _check_range("round", self.round, U32_MAX)


START, SEND, DELIVERED, DECIDED = 0, 1, 2, 3


@wire.message(53)
@dataclass(frozen=True, slots=True)
class Envelope:
    """One record of a process's AmpOverHo event log (spec §5.5); `body` is a packed value."""

    src: int
    seq: int
    kind: int
    dst: int
    body: bytes

    def validate(self) -> None:
        _check_range("src", self.src, U16_MAX)
        _check_range("seq", self.seq, U32_MAX)
        if self.kind not in (START, SEND, DELIVERED, DECIDED):
            raise ValueError(f"unknown envelope kind {self.kind}")
        if self.dst < -1 or self.dst > U16_MAX or (self.kind != SEND and self.dst != -1):
            raise ValueError(f"bad envelope destination {self.dst}")


@wire.message(54)
@dataclass(frozen=True, slots=True)
class FloodPayload:
    """AmpOverHo round payload: the sender's contiguous counts and the records the peer may lack."""

    vec: tuple[int, ...]
    env: tuple[Envelope, ...]


# ---------------------------------------------------------------------------------------------
# Value codec


def _default(value: Any) -> Any:
    if isinstance(value, frozenset):
        items = sorted(value, key=_packb)
        return msgpack.ExtType(_EXT_FROZENSET, _packb(tuple(items)))
    if isinstance(value, Fraction):
        return msgpack.ExtType(_EXT_FRACTION, _packb((value.numerator, value.denominator)))
    if wire.is_message(value):
        return msgpack.ExtType(_EXT_MESSAGE, wire.encode(value))
    if isinstance(value, dict):
        return {k: value[k] for k in sorted(value, key=_sort_key)}
    raise TypeError(f"cannot pack a {type(value).__name__} as a Heard-Of value")


def _packb(value: Any) -> bytes:
    if isinstance(value, dict):
        value = {k: value[k] for k in sorted(value, key=_sort_key)}
    packed: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
    return packed


def pack_value(value: Any) -> bytes:
    """Canonical bytes of an algorithm value (tuples, frozensets, Fractions, wire messages...)."""
    return _packb(value)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_FROZENSET:
        items = unpack_value(data)
        if not isinstance(items, tuple):
            raise ValueError("frozenset extension must hold an array")
        return frozenset(items)
    if code == _EXT_FRACTION:
        pair = unpack_value(data)
        ints = isinstance(pair, tuple) and len(pair) == 2 and all(type(x) is int for x in pair)
        if not ints or pair[1] <= 0:
            raise ValueError("bad fraction")
        return Fraction(pair[0], pair[1])
    if code == _EXT_MESSAGE:
        try:
            return wire.decode(data)
        except wire.DecodeError as error:
            raise ValueError(str(error)) from None
    raise ValueError(f"unknown extension type {code}")


def unpack_value(data: bytes) -> Any:
    """Inverse of `pack_value`; ValueError on malformed input (nothing else escapes)."""
    size = len(data)
    try:
        return msgpack.unpackb(
            data, raw=False, use_list=False, strict_map_key=False, ext_hook=_ext_hook,
            max_bin_len=size, max_str_len=size, max_array_len=size, max_map_len=size, max_ext_len=size,
        )
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - msgpack raises several types on bad input
        raise ValueError(f"bad value encoding: {type(error).__name__}: {error}") from None
