"""Compressors with their wire formats and exact bit counts (5.6), and error feedback (5.7)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from hedgerow.compute.gradcoding.messages import CompressedVector, CompressorSpec

Array = NDArray[np.float64]

_DTYPES: dict[str, np.dtype[np.floating]] = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8")}
_INDEX = np.dtype("<u4")


def value_bits(wire_dtype: str) -> int:
    return 8 * int(_DTYPES[wire_dtype].itemsize)


def index_bits(dim: int) -> int:
    return math.ceil(math.log2(dim)) if dim > 1 else 0


def k_of(spec: CompressorSpec, dim: int) -> int:
    """k = max(1, ceil(ratio*dim)), at most dim (a 1e-9 slack absorbs 0.06*100 = 6.000000000000001)."""
    return min(dim, max(1, math.ceil(spec.ratio * dim - 1e-9)))


def randk_indices(rng: np.random.Generator, dim: int, k: int) -> NDArray[np.int64]:
    """The rand-k index draw, shared by worker and coordinator (shared_seed)."""
    return np.sort(rng.choice(dim, size=k, replace=False)).astype(np.int64)


def to_wire_values(x: Array, wire_dtype: str) -> bytes:
    data: bytes = np.ascontiguousarray(x, dtype=_DTYPES[wire_dtype]).tobytes()
    return data


def from_wire_values(data: bytes, wire_dtype: str) -> Array:
    out: Array = np.frombuffer(data, dtype=_DTYPES[wire_dtype]).astype(np.float64)
    return out


def _round_scalar(x: float, wire_dtype: str) -> float:
    return float(np.float32(x)) if wire_dtype == "f32" else float(x)


def compress(spec: CompressorSpec, u: Array, rng: np.random.Generator | None,
             wire_dtype: str = "f32") -> CompressedVector:
    """C(u) in its wire format; `rng` is used by rand-k only."""
    return compress_dense(spec, u, rng, wire_dtype)[0]


def compress_dense(spec: CompressorSpec, u: Array, rng: np.random.Generator | None,
                   wire_dtype: str = "f32") -> tuple[CompressedVector, Array]:
    """(C(u) in its wire format, its float64 decompression) without a second rng draw."""
    u = np.asarray(u, dtype=np.float64)
    dim = int(u.shape[0])
    empty = b""
    if spec.name == "identity":
        values = to_wire_values(u, wire_dtype)
        cv = CompressedVector("dense", dim, values, empty, 0.0, empty, wire_dtype)
        return cv, from_wire_values(values, wire_dtype)
    if spec.name in ("topk", "randk"):
        k = k_of(spec, dim)
        if spec.name == "topk":
            idx = np.sort(np.argsort(-np.abs(u), kind="stable")[:k])
            picked = u[idx]
        else:
            if rng is None:
                raise ValueError("randk needs an rng")
            idx = randk_indices(rng, dim, k)
            picked = u[idx] * (dim / k)
        values = to_wire_values(picked, wire_dtype)
        send_idx = spec.name == "topk" or not spec.shared_seed
        indices = idx.astype(_INDEX).tobytes() if send_idx else empty
        dense = np.zeros(dim)
        dense[idx] = from_wire_values(values, wire_dtype)
        return CompressedVector(spec.name, dim, values, indices, 0.0, empty, wire_dtype), dense
    if spec.name == "sign":
        scale = _round_scalar(float(np.sum(np.abs(u))) / dim, wire_dtype)
        positive = u >= 0
        bits = np.packbits(positive, bitorder="little").tobytes()
        cv = CompressedVector("sign", dim, empty, empty, scale, bits, wire_dtype)
        return cv, np.where(positive, scale, -scale)
    raise ValueError(f"unknown compressor {spec.name!r}")


def decompress(cv: CompressedVector, rng: np.random.Generator | None = None) -> Array:
    """The dense float64 vector the coordinator aggregates. Shared-seed rand-k needs the same rng
    stream the worker used (its indices are not on the wire)."""
    out = np.zeros(cv.dim)
    if cv.kind == "dense":
        return from_wire_values(cv.values, cv.wire_dtype)
    if cv.kind == "sign":
        bits = np.unpackbits(np.frombuffer(cv.signbits, dtype=np.uint8), count=cv.dim, bitorder="little")
        return np.where(bits.astype(bool), cv.scale, -cv.scale)
    values = from_wire_values(cv.values, cv.wire_dtype)
    if cv.kind == "randk" and not cv.indices:
        if rng is None:
            raise ValueError("shared-seed randk: decompress needs the worker's rng stream")
        idx = randk_indices(rng, cv.dim, values.shape[0])
    else:
        idx = np.frombuffer(cv.indices, dtype=_INDEX).astype(np.int64)
    out[idx] = values
    return out


def nominal_bits(cv: CompressedVector) -> int:
    """Uplink bits of the table in 5.6 (value width from cv.wire_dtype)."""
    vb = value_bits(cv.wire_dtype)
    if cv.kind == "dense":
        return vb * cv.dim
    if cv.kind == "sign":
        return cv.dim + vb
    k = len(cv.values) // (vb // 8)
    if cv.kind == "randk" and not cv.indices:
        return vb * k
    return k * (vb + index_bits(cv.dim))


def check_vector(cv: CompressedVector, spec: CompressorSpec, dim: int, wire_dtype: str) -> str | None:
    """Why `cv` is malformed for this job (section 7), or None when it is well formed."""
    expected_kind = "dense" if spec.name == "identity" else spec.name
    if cv.kind != expected_kind:
        return f"kind {cv.kind!r}, want {expected_kind!r}"
    if cv.wire_dtype != wire_dtype:
        return f"wire_dtype {cv.wire_dtype!r}, want {wire_dtype!r}"
    if cv.dim != dim:
        return f"dim {cv.dim}, want {dim}"
    width = value_bits(wire_dtype) // 8
    if cv.kind == "sign":
        if cv.values or cv.indices or len(cv.signbits) != (dim + 7) // 8:
            return "bad sign lengths"
        return None if math.isfinite(cv.scale) and cv.scale >= 0 else "bad sign scale"
    if cv.signbits or cv.scale != 0.0:
        return "unexpected sign fields"
    if len(cv.values) % width:
        return "values length not a multiple of the value width"
    count = len(cv.values) // width
    if cv.kind == "dense":
        if count != dim or cv.indices:
            return "bad dense lengths"
    else:
        reason = _check_sparse(cv, spec, dim, count)
        if reason:
            return reason
    if not np.all(np.isfinite(from_wire_values(cv.values, wire_dtype))):
        return "non-finite values"
    return None


def _check_sparse(cv: CompressedVector, spec: CompressorSpec, dim: int, count: int) -> str | None:
    k = k_of(spec, dim)
    if count != k:
        return f"k={count}, want {k}" if count <= dim else f"k={count} > D={dim}"
    if cv.kind == "randk" and spec.shared_seed:
        return "indices sent with shared_seed randk" if cv.indices else None
    if len(cv.indices) != 4 * count:
        return "indices length does not match values"
    idx = np.frombuffer(cv.indices, dtype=_INDEX).astype(np.int64)
    if idx.size and (idx[-1] >= dim or np.any(np.diff(idx) <= 0)):
        return "indices unsorted, repeated or out of range"
    return None


def ef_step(e: Array, v: Array, spec: CompressorSpec, rng: np.random.Generator | None,
            wire_dtype: str = "f32") -> tuple[CompressedVector, Array]:
    """One error-feedback step: u = v + e, cv = C(u), e_new = u - decompress(cv) (the wire rule:
    the residual is taken against what the coordinator decodes, after the wire cast)."""
    u = np.asarray(v, dtype=np.float64) + np.asarray(e, dtype=np.float64)
    cv, c = compress_dense(spec, u, rng, wire_dtype)
    return cv, u - c
