"""Shared fixtures for the parallel-Newton tests (built inside tests, never at import time)."""

from __future__ import annotations

import numpy as np
import torch

from hedgerow.compute.newton import NewtonConfig, NewtonResult, solve
from hedgerow.compute.newton.systems import Problem, make, solver_kwargs


def devices() -> list[str]:
    """cpu, plus cuda when this machine has one (no GPU is ever required)."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def run(problem: Problem, method: str, *, fused: bool = True, **config: object) -> NewtonResult:
    kwargs = solver_kwargs(problem.system) if fused else {}
    return solve(problem.system.f, problem.s0, problem.inputs, config=NewtonConfig(method=method, **config),  # type: ignore[arg-type]
                 init=problem.init, **kwargs)


def loop(problem: Problem) -> NewtonResult:
    return solve(problem.system.f, problem.s0, problem.inputs, config=NewtonConfig(method="sequential"))


def gru_numpy(problem: Problem) -> tuple[object, object, object]:
    """An independent numpy GRU (f, dense Jacobian, diagonal) from the problem's parameters."""
    p = {k: v.cpu().numpy() for k, v in problem.system.params.items()}

    def sig(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x))

    def parts(S: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, ...]:
        z = sig(S @ p["W_z"].T + U @ p["U_z"].T + p["b_z"])
        r = sig(S @ p["W_r"].T + U @ p["U_r"].T + p["b_r"])
        h = S @ p["W_n"].T
        n = np.tanh(U @ p["U_n"].T + p["b_n"] + r * h)
        return z, r, h, n

    def f(S: np.ndarray, U: np.ndarray) -> np.ndarray:
        z, _, _, n = parts(S, U)
        return (1 - z) * n + z * S

    def jac(S: np.ndarray, U: np.ndarray) -> np.ndarray:
        z, r, h, n = parts(S, U)
        dz = (z * (1 - z))[:, :, None] * p["W_z"]
        dr = (r * (1 - r))[:, :, None] * p["W_r"]
        dn = (1 - n * n)[:, :, None] * (h[:, :, None] * dr + r[:, :, None] * p["W_n"])
        eye = np.eye(S.shape[1])
        return (1 - z)[:, :, None] * dn + (S - n)[:, :, None] * dz + z[:, :, None] * eye

    def jac_diag(S: np.ndarray, U: np.ndarray) -> np.ndarray:
        return np.diagonal(jac(S, U), axis1=-2, axis2=-1).copy()

    return f, jac, jac_diag


def gru(T: int, *, seed: int = 1, dtype: torch.dtype = torch.float64, device: str = "cpu",
        B: int | None = None, D: int | None = None) -> Problem:
    return make("gru", T=T, seed=seed, dtype=dtype, device=device, B=B, D=D)
