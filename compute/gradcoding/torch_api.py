"""Torch versions of the worker-side API for models that are torch modules (same names and signatures
as the numpy functions; tensors stay on their device, CUDA included, and only the compressed payload
is copied to the host). Output bytes equal the numpy versions' for identity and top-k; rand-k draws
its indices from the same numpy rng stream, so shared-seed decoding works unchanged; the sign scale
may differ from numpy's in the last bit (a different summation order).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hedgerow.compute.gradcoding.compress import k_of, randk_indices
from hedgerow.compute.gradcoding.messages import CompressedVector, CompressorSpec

Tensor = Any  # torch.Tensor; torch's stubs are optional for mypy here


def _torch() -> Any:
    import torch

    return torch


def _wire_dtype(wire_dtype: str) -> Any:
    torch = _torch()
    return torch.float32 if wire_dtype == "f32" else torch.float64


def _to_bytes(x: Tensor, wire_dtype: str) -> bytes:
    dtype = "<f4" if wire_dtype == "f32" else "<f8"
    host = x.detach().to(_wire_dtype(wire_dtype)).cpu().numpy()
    data: bytes = np.ascontiguousarray(host, dtype=dtype).tobytes()
    return data


def encode(b_row: Any, support: Iterable[int], part_grads: Iterable[Tensor]) -> Tensor:
    """v_i = sum_{j in support} B[i, j] * g_j, in float64 on the gradients' device."""
    total = None
    for j, grad in zip(support, part_grads, strict=True):
        term = float(b_row[j]) * grad.to(_torch().float64)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("encode: empty support")
    return total


def compress_dense(spec: CompressorSpec, u: Tensor, rng: np.random.Generator | None,
                   wire_dtype: str = "f32") -> tuple[CompressedVector, Tensor]:
    """(C(u) in its wire format, its float64 decompression on u's device)."""
    torch = _torch()
    u = u.to(torch.float64)
    dim = int(u.shape[0])
    empty = b""
    wire = _wire_dtype(wire_dtype)
    if spec.name == "identity":
        return (CompressedVector("dense", dim, _to_bytes(u, wire_dtype), empty, 0.0, empty, wire_dtype),
                u.to(wire).to(torch.float64))
    if spec.name in ("topk", "randk"):
        k = k_of(spec, dim)
        if spec.name == "topk":
            order = torch.sort(-u.abs(), stable=True).indices[:k]
            idx = torch.sort(order).values
            picked = u[idx]
        else:
            if rng is None:
                raise ValueError("randk needs an rng")
            idx = torch.as_tensor(randk_indices(rng, dim, k), device=u.device)
            picked = u[idx] * (dim / k)
        dense = torch.zeros_like(u)
        dense[idx] = picked.to(wire).to(torch.float64)
        send_idx = spec.name == "topk" or not spec.shared_seed
        indices = idx.cpu().numpy().astype("<u4").tobytes() if send_idx else empty
        cv = CompressedVector(spec.name, dim, _to_bytes(picked, wire_dtype), indices, 0.0, empty, wire_dtype)
        return cv, dense
    if spec.name == "sign":
        scale_t = (u.abs().sum() / dim).to(wire).to(torch.float64)
        positive = u >= 0
        bits = np.packbits(positive.cpu().numpy(), bitorder="little").tobytes()
        cv = CompressedVector("sign", dim, empty, empty, float(scale_t), bits, wire_dtype)
        return cv, torch.where(positive, scale_t, -scale_t)
    raise ValueError(f"unknown compressor {spec.name!r}")


def compress(spec: CompressorSpec, u: Tensor, rng: np.random.Generator | None,
             wire_dtype: str = "f32") -> CompressedVector:
    return compress_dense(spec, u, rng, wire_dtype)[0]


def ef_step(e: Tensor, v: Tensor, spec: CompressorSpec, rng: np.random.Generator | None,
            wire_dtype: str = "f32") -> tuple[CompressedVector, Tensor]:
    """u = v + e, cv = C(u), e_new = u - decompress(cv), against the wire-cast values."""
    u = v.to(_torch().float64) + e.to(_torch().float64)
    cv, c = compress_dense(spec, u, rng, wire_dtype)
    return cv, u - c


def aggregate(msgs: dict[int, Tensor], weights: Any) -> Tensor:
    """g_hat = sum_i weights[i] * msgs[i], in increasing worker order."""
    total = None
    for i in sorted(msgs):
        term = float(weights[i]) * msgs[i]
        total = term if total is None else total + term
    if total is None:
        raise ValueError("aggregate: no messages")
    return total
