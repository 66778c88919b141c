"""`linear_recurrence` (public, numpy or torch) and `estimate_lle` (spec 5.7)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from hedgerow.compute.newton.scan import solve_recurrence


def linear_recurrence(A: Any, b: Any, *, diag: bool, parallel: bool = True, reverse: bool = False) -> Any:
    """x_t = A_t x_{t-1} + b_t with x_0 = 0 (reverse: x_t = A_t x_{t+1} + b_t), over axis -2 of b.

    A: `[..., T, D, D]` (dense) or `[..., T, D]` (diag); b: `[..., T, D]`; numpy in, numpy out.
    """
    numpy_backend = isinstance(b, np.ndarray)
    At = torch.from_numpy(np.ascontiguousarray(A)) if numpy_backend else A
    bt = torch.from_numpy(np.ascontiguousarray(b)) if numpy_backend else b
    want = tuple(bt.shape) if diag else (*bt.shape, bt.shape[-1])
    if tuple(At.shape) != want:
        raise ValueError(f"A has shape {list(At.shape)}, expected {list(want)} "
                         f"for b of shape {list(bt.shape)}")
    if At.dtype != bt.dtype or bt.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"A ({At.dtype}) and b ({bt.dtype}) must share a float32/float64 dtype")
    A_tm = At.movedim(-2 if diag else -3, 0)  # time-major views for the scan
    x = solve_recurrence(A_tm, bt.movedim(-2, 0), diag=diag, parallel=parallel, reverse=reverse)
    x = x.movedim(0, -2).contiguous()
    return x.numpy() if numpy_backend else x


def estimate_lle(jacobians: Any, *, seed: int, n_vectors: int = 3) -> tuple[float, float]:
    """Largest Lyapunov exponent of the products J_T ... J_2 and its overshoot a (first 100 steps).

    jacobians: `[T-1, D, D]` (numpy or torch). Seeded unit vectors are pushed through each J_t and
    renormalised; ℓ̂ is the mean over vectors of sum(log ||v||)/(T-1); a zero norm gives -inf.
    """
    J = jacobians.detach().cpu().numpy() if isinstance(jacobians, torch.Tensor) else np.asarray(jacobians)
    if J.ndim != 3 or J.shape[1] != J.shape[2]:
        raise ValueError(f"jacobians must have shape [T-1, D, D], got {list(J.shape)}")
    steps = J.shape[0]
    if steps == 0:
        raise ValueError("estimate_lle needs at least one Jacobian")
    J = J.astype(np.float64, copy=False)
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((J.shape[1], n_vectors))
    V /= np.linalg.norm(V, axis=0, keepdims=True)
    logsum = np.zeros(n_vectors)
    head = min(steps, 100)
    partial = np.zeros((head, n_vectors))
    for t in range(steps):
        V = J[t] @ V
        norms = np.linalg.norm(V, axis=0)
        with np.errstate(divide="ignore"):
            logsum = logsum + np.log(norms)
        V = V / np.where(norms > 0, norms, 1.0)
        if t < head:
            partial[t] = logsum
    lle_each = logsum / steps
    lle = float(np.mean(lle_each))
    if not math.isfinite(lle):
        return lle, float("inf")
    k = np.arange(1, head + 1)[:, None]
    with np.errstate(over="ignore"):
        overshoot = float(np.max(np.exp(partial - lle * k)))
    return lle, overshoot
