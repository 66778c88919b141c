"""The typed wire codec: frozen dataclasses with an explicit type tag, canonical msgpack on the wire.

Declare a message once and the codec derives its encoder and its checking decoder from the
annotations (resolved lazily on first use, so modules may use `from __future__ import annotations`):

    @message(20)
    @dataclass(frozen=True, slots=True)
    class Vote:
        round: int
        block_hash: bytes
        signature: bytes

        def validate(self) -> None:          # optional: ranges and lengths, raise ValueError
            if self.round < 0 or len(self.block_hash) != 32:
                raise ValueError("bad vote")

On the wire a message is the msgpack array `[tag, field1, field2, ...]`; a nested message is its own
`[tag, ...]` array, a tuple an array, a dict a map with sorted keys (so `encode` is canonical).

Supported field annotations: `int`, `bool`, `str`, `bytes`, `float`, `X | None`, `tuple[X, ...]`,
`tuple[X, Y]`, `dict[K, X]` with K among `str`, `int`, `bytes` (or a union of them), a registered
message class, and a union of message classes (`A | B`).

`decode` is the single entry point for untrusted bytes. It enforces, in order: the frame cap,
msgpack limits (lengths bounded by the frame, no ext types), the tag, the exact field count, every
field's type (`bool` is not `int`, `int` is not `float`), then `__post_init__`/`validate()`. Anything
malformed raises `DecodeError`, and nothing else ever escapes it. Map keys are checked against the
declared key types (stricter than msgpack's `strict_map_key`, which would forbid int keys).

`encode` checks types too, but raises `TypeError` (a local bug, not a remote fault) and does not
call `validate()`, so tests can build invalid messages on purpose.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

from hedgerow.protocols.canonical import _sort_key

FRAME_BYTES_MAX_DEFAULT = 4 * 1024 * 1024
TAG_MAX = 0xFFFF

T = TypeVar("T")


class DecodeError(Exception):
    """Malformed input: the only exception `decode` and `from_wire` raise."""


# A codec pair per field: `enc(value) -> wire object` (raises TypeError), `dec(obj) -> value`
# (raises DecodeError).
Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _Spec:
    cls: type
    tag: int
    names: tuple[str, ...]
    encoders: tuple[Encoder, ...]
    decoders: tuple[Decoder, ...]
    validate: Callable[[Any], None] | None


_CLASSES: dict[int, type] = {}
_TAGS: dict[type, int] = {}
_SPECS: dict[type, _Spec] = {}


def message(tag: int) -> Callable[[type[T]], type[T]]:
    """Class decorator registering a frozen dataclass under `tag` (apply it above `@dataclass`)."""
    if type(tag) is not int or not 0 <= tag <= TAG_MAX:
        raise ValueError(f"message tag must be an int in 0..{TAG_MAX}, got {tag!r}")

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__}: @message goes above @dataclass(frozen=True, slots=True)")
        params = getattr(cls, "__dataclass_params__", None)
        if params is None or not params.frozen:
            raise TypeError(f"{cls.__name__}: wire messages must be frozen dataclasses")
        previous = _CLASSES.get(tag)
        if previous is not None and not _same_definition(previous, cls):
            raise ValueError(f"wire tag {tag} already used by {previous.__module__}.{previous.__qualname__}")
        if previous is not None:  # the same class re-executed (module reload): replace it
            _TAGS.pop(previous, None)
            _SPECS.pop(previous, None)
        _CLASSES[tag] = cls
        _TAGS[cls] = tag
        return cls

    return register


def _same_definition(a: type, b: type) -> bool:
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


def tag_of(cls: type) -> int:
    """The registered tag of a message class (KeyError if it is not registered)."""
    return _TAGS[cls]


def registered() -> dict[int, type]:
    """A copy of the tag -> class registry."""
    return dict(_CLASSES)


def is_message(value: Any) -> bool:
    return type(value) in _TAGS


# ---------------------------------------------------------------------------------------------
# Public encode / decode


def to_wire(msg: Any) -> list[Any]:
    """The msgpack-ready list `[tag, field1, ...]` of a registered message (TypeError otherwise)."""
    spec = _spec_of(type(msg))
    out: list[Any] = [spec.tag]
    for name, enc in zip(spec.names, spec.encoders, strict=True):
        out.append(enc(getattr(msg, name)))
    return out


def encode(msg: Any) -> bytes:
    """Canonical msgpack bytes of a registered message."""
    packed: bytes = msgpack.packb(to_wire(msg), use_bin_type=True)
    return packed


def from_wire(obj: Any, *, expected: type | None = None) -> Any:
    """Build a message from its unpacked `[tag, ...]` list; DecodeError for anything malformed."""
    try:
        return _decode_message(obj, expected)
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - the contract: nothing but DecodeError escapes
        raise DecodeError(f"malformed message: {type(error).__name__}: {error}") from error


def decode(
    data: bytes | bytearray | memoryview,
    *,
    frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
    expected: type | None = None,
) -> Any:
    """Decode untrusted bytes into a registered, validated message; DecodeError otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    size = len(data)
    if size > frame_bytes_max:
        raise DecodeError(f"frame of {size} B exceeds cap {frame_bytes_max} B")
    if size == 0:
        raise DecodeError("empty frame")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,  # key types are checked per field, see the module docstring
            max_bin_len=size,
            max_str_len=size,
            max_array_len=size,
            max_map_len=size,
            max_ext_len=0,
            ext_hook=_reject_ext,
            timestamp=0,
        )
    except Exception as error:  # noqa: BLE001 - msgpack raises several types on bad input
        raise DecodeError(f"bad msgpack: {type(error).__name__}: {error}") from None
    return from_wire(obj, expected=expected)


def _reject_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"msgpack ext type {code} is not allowed")


# ---------------------------------------------------------------------------------------------
# Per-class specs, built lazily from the annotations


def _spec_of(cls: type) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _build_spec(cls)
        _SPECS[cls] = spec
    return spec


def _build_spec(cls: type) -> _Spec:
    tag = _TAGS.get(cls)
    if tag is None:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a registered wire message")
    hints = typing.get_type_hints(cls, localns={cls.__name__: cls})
    names: list[str] = []
    encoders: list[Encoder] = []
    decoders: list[Decoder] = []
    for field in dataclasses.fields(cls):
        if not field.init:
            raise TypeError(f"{cls.__name__}.{field.name}: wire messages cannot have init=False fields")
        enc, dec = _codec(hints[field.name], f"{cls.__name__}.{field.name}")
        names.append(field.name)
        encoders.append(enc)
        decoders.append(dec)
    validate = getattr(cls, "validate", None)
    return _Spec(cls, tag, tuple(names), tuple(encoders), tuple(decoders),
                 validate if callable(validate) else None)


def _decode_message(obj: Any, expected: type | None) -> Any:
    if type(obj) is not list or not obj:
        raise DecodeError("a message is a non-empty array [tag, fields...]")
    tag = obj[0]
    if type(tag) is not int:
        raise DecodeError("message tag must be an int")
    cls = _CLASSES.get(tag)
    if cls is None:
        raise DecodeError(f"unknown message tag {tag}")
    if expected is not None and not issubclass(cls, expected):
        raise DecodeError(f"expected {expected.__name__}, got {cls.__name__} (tag {tag})")
    spec = _spec_of(cls)
    if len(obj) != len(spec.decoders) + 1:
        raise DecodeError(f"{cls.__name__}: {len(obj) - 1} fields, want {len(spec.decoders)}")
    values = [dec(item) for dec, item in zip(spec.decoders, obj[1:], strict=True)]
    try:
        msg = cls(*values)
        if spec.validate is not None:
            spec.validate(msg)
    except (ValueError, TypeError, OverflowError) as error:
        raise DecodeError(f"{cls.__name__}: {error}") from None
    return msg


# ---------------------------------------------------------------------------------------------
# Field codecs


def _codec(annotation: Any, where: str) -> tuple[Encoder, Decoder]:
    if annotation in _SCALARS:
        return _scalar_codec(annotation, where)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return _union_codec(args, where)
    if origin is tuple:
        return _tuple_codec(args, where)
    if origin is dict:
        return _dict_codec(args, where)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _message_codec((annotation,), where)
    raise TypeError(f"{where}: unsupported wire annotation {annotation!r}")


_SCALARS: dict[Any, str] = {int: "int", bool: "bool", str: "str", bytes: "bytes", float: "float"}


def _scalar_codec(kind: type, where: str) -> tuple[Encoder, Decoder]:
    name = _SCALARS[kind]

    def check(value: Any, error: type[Exception]) -> Any:
        if type(value) is not kind:
            raise error(f"{where}: expected {name}, got {type(value).__name__}")
        return value

    if kind is float:

        def enc_float(value: Any) -> Any:
            if type(value) is int:  # an int where a float is declared: widen, so it round-trips
                return float(value)
            return check(value, TypeError)

        return enc_float, lambda obj: check(obj, DecodeError)
    return (lambda value: check(value, TypeError)), (lambda obj: check(obj, DecodeError))


def _union_codec(args: tuple[Any, ...], where: str) -> tuple[Encoder, Decoder]:
    optional = type(None) in args
    rest = tuple(arg for arg in args if arg is not type(None))
    if all(isinstance(arg, type) and dataclasses.is_dataclass(arg) for arg in rest):
        enc, dec = _message_codec(rest, where)
    elif len(rest) == 1:
        enc, dec = _codec(rest[0], where)
    else:
        raise TypeError(f"{where}: unions other than X | None or of message classes are unsupported")
    if not optional:
        return enc, dec

    def enc_optional(value: Any) -> Any:
        return None if value is None else enc(value)

    def dec_optional(obj: Any) -> Any:
        return None if obj is None else dec(obj)

    return enc_optional, dec_optional


def _tuple_codec(args: tuple[Any, ...], where: str) -> tuple[Encoder, Decoder]:
    if len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS and args[0] is not float:
        return _scalar_tuple_codec(args[0], where)
    if len(args) == 2 and args[1] is Ellipsis:
        enc, dec = _codec(args[0], f"{where}[]")

        def enc_var(value: Any) -> Any:
            if type(value) is not tuple:
                raise TypeError(f"{where}: expected tuple, got {type(value).__name__}")
            return [enc(item) for item in value]

        def dec_var(obj: Any) -> Any:
            if type(obj) is not list:
                raise DecodeError(f"{where}: expected array, got {type(obj).__name__}")
            return tuple([dec(item) for item in obj])

        return enc_var, dec_var
    if not args or Ellipsis in args:
        raise TypeError(f"{where}: unsupported tuple annotation")
    pairs = [_codec(arg, f"{where}[{i}]") for i, arg in enumerate(args)]

    def enc_fixed(value: Any) -> Any:
        if type(value) is not tuple or len(value) != len(pairs):
            raise TypeError(f"{where}: expected a tuple of {len(pairs)}")
        return [enc(item) for (enc, _), item in zip(pairs, value, strict=True)]

    def dec_fixed(obj: Any) -> Any:
        if type(obj) is not list or len(obj) != len(pairs):
            raise DecodeError(f"{where}: expected an array of {len(pairs)}")
        return tuple([dec(item) for (_, dec), item in zip(pairs, obj, strict=True)])

    return enc_fixed, dec_fixed


def _scalar_tuple_codec(kind: type, where: str) -> tuple[Encoder, Decoder]:
    """`tuple[bytes, ...]` and the like (a block's txs): items type-checked in one C-level pass."""
    name = _SCALARS[kind]

    def check(items: list[Any] | tuple[Any, ...], error: type[Exception]) -> None:
        if items and set(map(type, items)) != {kind}:
            bad = next(type(item).__name__ for item in items if type(item) is not kind)
            raise error(f"{where}[]: expected {name}, got {bad}")

    def enc_var(value: Any) -> Any:
        if type(value) is not tuple:
            raise TypeError(f"{where}: expected tuple, got {type(value).__name__}")
        check(value, TypeError)
        return list(value)

    def dec_var(obj: Any) -> Any:
        if type(obj) is not list:
            raise DecodeError(f"{where}: expected array, got {type(obj).__name__}")
        check(obj, DecodeError)
        return tuple(obj)

    return enc_var, dec_var


_KEY_TYPES = (str, int, bytes)


def _dict_codec(args: tuple[Any, ...], where: str) -> tuple[Encoder, Decoder]:
    key_annotation, value_annotation = args
    key_args = typing.get_args(key_annotation) or (key_annotation,)
    if not all(arg in _KEY_TYPES for arg in key_args):
        raise TypeError(f"{where}: dict keys must be str, int or bytes")
    key_types = frozenset(key_args)
    enc_value, dec_value = _codec(value_annotation, f"{where}{{}}")

    def enc(value: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"{where}: expected dict, got {type(value).__name__}")
        for key in value:
            if type(key) not in key_types:
                raise TypeError(f"{where}: key of type {type(key).__name__} not allowed")
        return {key: enc_value(value[key]) for key in sorted(value, key=_sort_key)}

    def dec(obj: Any) -> Any:
        if type(obj) is not dict:
            raise DecodeError(f"{where}: expected map, got {type(obj).__name__}")
        out: dict[Any, Any] = {}
        for key, item in obj.items():
            if type(key) not in key_types:
                raise DecodeError(f"{where}: key of type {type(key).__name__} not allowed")
            out[key] = dec_value(item)
        return out

    return enc, dec


def _message_codec(classes: tuple[type, ...], where: str) -> tuple[Encoder, Decoder]:
    allowed = frozenset(classes)

    def enc(value: Any) -> Any:
        if type(value) not in allowed:
            raise TypeError(f"{where}: expected {_names(classes)}, got {type(value).__name__}")
        return to_wire(value)

    def dec(obj: Any) -> Any:
        if type(obj) is not list or not obj or type(obj[0]) is not int:
            raise DecodeError(f"{where}: expected a nested message")
        if _CLASSES.get(obj[0]) not in allowed:
            raise DecodeError(f"{where}: tag {obj[0]} is not one of {_names(classes)}")
        return _decode_message(obj, None)

    return enc, dec


def _names(classes: tuple[type, ...]) -> str:
    return " | ".join(cls.__name__ for cls in classes)
