"""Canonical msgpack: one byte string per value, so hashes and signatures agree across nodes."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack


def _normalise(value: Any) -> Any:
    """Sort map keys recursively and turn tuples into lists, so packing is deterministic."""
    if isinstance(value, dict):
        return {key: _normalise(value[key]) for key in sorted(value, key=_sort_key)}
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, bytes):
        return (0, key)
    if isinstance(key, str):
        return (1, key)
    if isinstance(key, int) and not isinstance(key, bool):
        return (2, key)
    raise TypeError(f"map key of type {type(key).__name__} cannot be packed canonically")


def canonical_pack(value: Any) -> bytes:
    """Pack `value` as canonical msgpack (sorted map keys, bin type for bytes, no floats' NaN games)."""
    packed: bytes = msgpack.packb(_normalise(value), use_bin_type=True)
    return packed


def digest(value: Any) -> bytes:
    """SHA-256 of the canonical encoding of `value`."""
    return hashlib.sha256(canonical_pack(value)).digest()
