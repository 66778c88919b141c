"""The test systems of spec section 9 as a seeded registry: gru, mfrnn, logistic, ode_euler.

Each system is row-wise (`f(S[N,D], U[N,m]) -> [N,D]`) and supplies fused f-and-Jacobian fast paths
(`f_and_jac` dense, `f_and_jac_diag` diagonal), tested equal to torch.func's. Parameters are
drawn with `numpy.random.default_rng(seed)` in the spec's order: parameters, s0, inputs, guess.
A system is rebuilt from its parameter tensors alone (`build(name, params)`): code never travels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

SYSTEMS: tuple[str, ...] = ("gru", "mfrnn", "logistic", "ode_euler")
DEFAULT_D = {"gru": 4, "mfrnn": 32, "logistic": 1, "ode_euler": 8}


@dataclass
class System:
    """A registry system bound to its parameters (tensors on one device, one dtype)."""

    name: str
    params: dict[str, Tensor]
    D: int
    m: int
    _f: Callable[[System, Tensor, Tensor], Tensor] = field(repr=False)
    _fj: Callable[[System, Tensor, Tensor, bool], tuple[Tensor, Tensor]] = field(repr=False)

    def f(self, S: Tensor, U: Tensor) -> Tensor:
        return self._f(self, S, U)

    def f_and_jac(self, S: Tensor, U: Tensor) -> tuple[Tensor, Tensor]:
        return self._fj(self, S, U, False)

    def f_and_jac_diag(self, S: Tensor, U: Tensor) -> tuple[Tensor, Tensor]:
        return self._fj(self, S, U, True)

    def jac(self, S: Tensor, U: Tensor) -> Tensor:
        return self.f_and_jac(S, U)[1]

    def jac_diag(self, S: Tensor, U: Tensor) -> Tensor:
        return self.f_and_jac_diag(S, U)[1]


@dataclass
class Problem:
    """A seeded instance: the system, s0 [D], inputs [B,T,m] (or [T,m]) and the initial guess."""

    system: System
    s0: Tensor
    inputs: Tensor
    init: Tensor | None


# ---------------------------------------------------------------------------------------------
# GRU (contracting at weight scale 0.3)


def _gru_gates(sys: System, S: Tensor, U: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    p, D = sys.params, sys.D
    g = torch.addmm(p["b"], U, p["U_s"])             # [N, 3D]: U u + b
    gs = S @ p["W_s"]                                # [N, 3D]: W_z s | W_r s | W_n s
    zr = torch.sigmoid_(g[:, : 2 * D].add_(gs[:, : 2 * D]))
    z, r = zr[:, :D], zr[:, D:]
    h = gs[:, 2 * D :]
    n = torch.tanh_(torch.addcmul(g[:, 2 * D :], r, h))
    return z, r, n, h


def _gru_f(sys: System, S: Tensor, U: Tensor) -> Tensor:
    z, _, n, _ = _gru_gates(sys, S, U)
    return torch.addcmul(n, z, S - n)


def _gru_fj(sys: System, S: Tensor, U: Tensor, diag: bool) -> tuple[Tensor, Tensor]:
    z, r, n, h = _gru_gates(sys, S, U)
    s_n = S - n
    F = torch.addcmul(n, z, s_n)
    one_z = 1 - z
    dz = (z * one_z).mul_(s_n)                      # coefficient of the dz/ds rows
    dn = (1 - n * n).mul_(one_z)                    # coefficient of the dn/ds rows
    dr = (dn * h).mul_(r).mul_(1 - r)
    dnr = dn.mul_(r)
    p = sys.params
    if diag:
        d = p["diag_W"]                  # [3, D]: diag(W_z), diag(W_r), diag(W_n)
        out = torch.addcmul(z, dz, d[0])
        out.addcmul_(dr, d[1]).addcmul_(dnr, d[2])
        return F, out
    # A[c,i,:] = dz[c,i] W_z[i,:] + dr[c,i] W_r[i,:] + (dn r)[c,i] W_n[i,:]: one batched matmul over i
    coef = torch.stack([dz, dr, dnr], dim=-1).transpose(0, 1)         # [D, N, 3]
    A = torch.bmm(coef, p["W_by_row"]).transpose(0, 1).contiguous()  # [N, D, D]
    A.diagonal(dim1=-2, dim2=-1).add_(z)
    return F, A


def _gru_params(rng: np.random.Generator, D: int, m: int) -> dict[str, np.ndarray]:
    scale = 0.3
    W = [rng.normal(0.0, scale, (D, D)) for _ in range(3)]
    Uw = [rng.normal(0.0, scale, (D, m)) for _ in range(3)]
    bias = [rng.normal(0.0, scale, D) for _ in range(3)]
    return {"W_z": W[0], "W_r": W[1], "W_n": W[2], "U_z": Uw[0], "U_r": Uw[1], "U_n": Uw[2],
            "b_z": bias[0], "b_r": bias[1], "b_n": bias[2]}


def _gru_derived(p: dict[str, Tensor]) -> dict[str, Tensor]:
    W_rows = torch.stack([p["W_z"], p["W_r"], p["W_n"]])
    return {
        "W_s": torch.cat([p["W_z"], p["W_r"], p["W_n"]], dim=0).T.contiguous(),
        "U_s": torch.cat([p["U_z"], p["U_r"], p["U_n"]], dim=0).T.contiguous(),
        "b": torch.cat([p["b_z"], p["b_r"], p["b_n"]]),
        "W_rows": W_rows,
        "W_by_row": W_rows.permute(1, 0, 2).contiguous(),  # [D, 3, D]: row i of W_z, W_r, W_n
        "diag_W": torch.diagonal(W_rows, dim1=-2, dim2=-1).contiguous(),
    }


# ---------------------------------------------------------------------------------------------
# MF-RNN: f = W tanh(s) + u, zero diagonal (tunable LLE through the gain g)


def _mfrnn_f(sys: System, S: Tensor, U: Tensor) -> Tensor:
    return torch.addmm(U, torch.tanh(S), sys.params["W"].T)


def _mfrnn_fj(sys: System, S: Tensor, U: Tensor, diag: bool) -> tuple[Tensor, Tensor]:
    th = torch.tanh(S)
    W = sys.params["W"]
    F = torch.addmm(U, th, W.T)
    if diag:
        return F, torch.diagonal(W).expand_as(S) * (1 - th * th)
    return F, W * (1 - th * th)[:, None, :]


# ---------------------------------------------------------------------------------------------
# Logistic map (chaotic, LLE = ln 2) and ODE-Euler (near identity)


def _logistic_f(sys: System, S: Tensor, U: Tensor) -> Tensor:
    return 4.0 * S * (1.0 - S)


def _logistic_fj(sys: System, S: Tensor, U: Tensor, diag: bool) -> tuple[Tensor, Tensor]:
    F = 4.0 * S * (1.0 - S)
    d = 4.0 - 8.0 * S
    return F, d if diag else d.unsqueeze(-1)


def _ode_f(sys: System, S: Tensor, U: Tensor) -> Tensor:
    return S + 0.05 * (torch.tanh(S @ sys.params["W"].T) - S + U)


def _ode_fj(sys: System, S: Tensor, U: Tensor, diag: bool) -> tuple[Tensor, Tensor]:
    W = sys.params["W"]
    th = torch.tanh(S @ W.T)
    F = S + 0.05 * (th - S + U)
    sech2 = 1 - th * th
    if diag:
        return F, 0.95 + 0.05 * sech2 * torch.diagonal(W)
    A = (0.05 * sech2)[:, :, None] * W
    A.diagonal(dim1=-2, dim2=-1).add_(0.95)
    return F, A


_IMPL: dict[str, tuple[Callable[..., Tensor], Callable[..., tuple[Tensor, Tensor]]]] = {
    "gru": (_gru_f, _gru_fj),
    "mfrnn": (_mfrnn_f, _mfrnn_fj),
    "logistic": (_logistic_f, _logistic_fj),
    "ode_euler": (_ode_f, _ode_fj),
}
PARAM_NAMES = {
    "gru": ("W_z", "W_r", "W_n", "U_z", "U_r", "U_n", "b_z", "b_r", "b_n"),
    "mfrnn": ("W",),
    "logistic": (),
    "ode_euler": ("W",),
}


def build(name: str, params: dict[str, Tensor], *, D: int) -> System:
    """The system `name` with the given parameter tensors (all on one device and dtype)."""
    if name not in _IMPL:
        raise ValueError(f"unknown system {name!r}; choose one of {', '.join(SYSTEMS)}")
    missing = set(PARAM_NAMES[name]) - set(params)
    extra = set(params) - set(PARAM_NAMES[name])
    if missing or extra:
        raise ValueError(f"system {name} takes parameters {list(PARAM_NAMES[name])}, "
                         f"got {sorted(params)}")
    full = dict(params)
    m = _input_dim(name, params, D)
    for key in PARAM_NAMES[name]:
        want = _param_shape(name, key, D, m)
        if tuple(params[key].shape) != want:
            raise ValueError(f"{name} parameter {key} has shape {list(params[key].shape)}, want {list(want)}")
    if name == "gru":
        full.update(_gru_derived(params))
    f, fj = _IMPL[name]
    return System(name=name, params=full, D=D, m=m, _f=f, _fj=fj)


def _input_dim(name: str, params: dict[str, Tensor], D: int) -> int:
    if name == "gru":
        return int(params["U_z"].shape[1]) if "U_z" in params else 2
    return D if name == "mfrnn" else 1


def _param_shape(name: str, key: str, D: int, m: int) -> tuple[int, ...]:
    if key.startswith("W"):
        return (D, D)
    if key.startswith("U_"):
        return (D, m)
    return (D,)


def make(name: str, *, T: int, B: int | None = None, D: int | None = None, seed: int = 1,
         g: float = 0.5, m: int = 2, dtype: torch.dtype = torch.float64,
         device: str | torch.device = "cpu") -> Problem:
    """A seeded problem of the registry (spec 9): inputs [B,T,m] when B is given, else [T,m]."""
    if name not in _IMPL:
        raise ValueError(f"unknown system {name!r}; choose one of {', '.join(SYSTEMS)}")
    D = DEFAULT_D[name] if D is None or name == "logistic" else D
    rng = np.random.default_rng(seed)
    nb = 1 if B is None else B
    t = np.arange(1, T + 1, dtype=np.float64)
    guess: np.ndarray | None = None
    params: dict[str, np.ndarray]
    if name == "gru":
        params = _gru_params(rng, D, m)
        s0 = np.zeros(D)
        U = rng.normal(0.0, 1.0, (nb, T, m))
    elif name == "mfrnn":
        W = rng.normal(0.0, g / math.sqrt(D), (D, D))
        np.fill_diagonal(W, 0.0)
        params = {"W": W}
        s0 = rng.uniform(-1.0, 1.0, D)
        omega = rng.uniform(0.5, 3.0, D)
        U = np.broadcast_to(0.1 * np.sin(omega[None, :] * t[:, None]), (nb, T, D)).copy()
        guess = rng.uniform(-1.0, 1.0, (nb, T, D))
    elif name == "logistic":
        params = {}
        s0 = np.array([0.3])
        U = np.zeros((nb, T, 1))
        guess = np.full((nb, T, 1), 0.5)
    else:
        params = {"W": rng.normal(0.0, 1.0 / math.sqrt(D), (D, D))}
        s0 = np.zeros(D)
        U = np.broadcast_to(0.5 * np.sin(0.1 * t)[None, :, None], (nb, T, 1)).copy()

    def tensor(x: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype).to(device)

    system = build(name, {k: tensor(v) for k, v in params.items()}, D=D)
    inputs = tensor(U) if B is not None else tensor(U[0])
    init = None if guess is None else (tensor(guess) if B is not None else tensor(guess[0]))
    return Problem(system=system, s0=tensor(s0), inputs=inputs, init=init)


def solver_kwargs(system: System) -> dict[str, Any]:
    """The fused fast paths, as keyword arguments of `solve` / `newton_step`."""
    return {"f_and_jac": system.f_and_jac, "f_and_jac_diag": system.f_and_jac_diag}
