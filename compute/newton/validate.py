"""Input checks (spec section 7) and the numpy adapter.

The numpy backend runs the same torch code on CPU: arrays are shared with torch (`from_numpy`,
no copy), f and the Jacobians the caller wrote for numpy are wrapped, results come back as numpy.
numpy needs the Jacobian its method uses (`jac` for DEER/ELK, `jac_diag` or `jac` for the quasi
methods): there is no autodiff through numpy code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hedgerow.compute.newton.config import NewtonConfig
from hedgerow.compute.newton.jacobians import Evaluator, Fn, FusedFn, JacKind

_FLOAT_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _is_numpy(x: Any) -> bool:
    return isinstance(x, np.ndarray)


def _as_tensor(name: str, x: Any, numpy_backend: bool) -> Tensor:
    if numpy_backend:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name} must be a numpy array like s0, got {type(x).__name__}")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} has dtype {x.dtype}; only float32 and float64 are supported")
        return torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch tensor like s0, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}; only float32 and float64 are supported")
    return x


def check_f_output(out: Any, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    if not isinstance(out, Tensor):
        raise ValueError(f"f returned {type(out).__name__}, expected an array of shape {list(shape)}")
    if tuple(out.shape) != shape:
        raise ValueError(f"f returned shape {list(out.shape)}, expected {list(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"f returned shape {list(out.shape)} with dtype {out.dtype}, expected {dtype}")


def _numpy_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(S: Tensor, U: Tensor) -> Any:
        out = fn(S.numpy(), U.numpy())
        if isinstance(out, tuple):
            return tuple(torch.from_numpy(np.asarray(o)) for o in out)
        return torch.from_numpy(np.asarray(out)) if isinstance(out, np.ndarray | np.generic) else out

    return wrapped


@dataclass
class Problem:
    """Validated, batched torch view of one call's inputs."""

    s0: Tensor           # [D]
    U: Tensor            # [T,B,m], time-major and contiguous
    init: Tensor | None  # [T,B,D] or None
    batched: bool
    numpy_backend: bool
    tol: float
    jac: Fn | None
    jac_diag: Fn | None
    f_and_jac: FusedFn | None
    f_and_jac_diag: FusedFn | None

    @property
    def B(self) -> int:
        return int(self.U.shape[1])

    @property
    def T(self) -> int:
        return int(self.U.shape[0])

    @property
    def D(self) -> int:
        return int(self.s0.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.s0.dtype

    @property
    def itemsize(self) -> int:
        return self.s0.element_size()

    def initial_guess(self) -> Tensor:
        if self.init is not None:
            return self.init.clone()
        return self.s0.reshape(1, 1, -1).expand(self.T, self.B, self.D).clone()

    def f_wrap(self, f: Fn) -> Fn:
        return _numpy_fn(f) if self.numpy_backend else f

    def evaluator(self, f: Fn, kind: JacKind, config: NewtonConfig, seed: int) -> Evaluator:
        generator = None
        if config.diag_estimator == "hutchinson":
            generator = torch.Generator(device="cpu")
            generator.manual_seed(int(seed))
        return Evaluator(f=self.f_wrap(f), kind=kind, jac=self.jac, jac_diag=self.jac_diag,
                         f_and_jac=self.f_and_jac, f_and_jac_diag=self.f_and_jac_diag,
                         hutchinson=config.diag_estimator == "hutchinson" and not self.numpy_backend,
                         n_probes=config.n_probes, generator=generator)

    def export(self, x: Tensor) -> Any:
        """Time-major [T,B,D] back to the caller's [B,T,D] (or [T,D]) and backend."""
        x = x.transpose(0, 1).contiguous() if self.batched else x[:, 0].contiguous()
        return x.cpu().numpy() if self.numpy_backend else x


def prepare(s0: Any, inputs: Any, init: Any, *, need: JacKind, method: str, jac: Fn | None = None,
            jac_diag: Fn | None = None, f_and_jac: FusedFn | None = None,
            f_and_jac_diag: FusedFn | None = None, config: NewtonConfig | None = None) -> Problem:
    """Check shapes, dtypes and finiteness (spec 7); raise ValueError/TypeError naming the argument."""
    numpy_backend = _is_numpy(s0)
    s0_t = _as_tensor("s0", s0, numpy_backend)
    U = _as_tensor("inputs", inputs, numpy_backend)
    if s0_t.dim() != 1:
        raise ValueError(f"s0 must have shape [D], got {list(s0_t.shape)}")
    if U.dtype != s0_t.dtype:
        raise TypeError(f"inputs dtype {U.dtype} differs from s0 dtype {s0_t.dtype}")
    if U.device != s0_t.device:
        raise ValueError(f"inputs on {U.device} but s0 on {s0_t.device}")
    if U.dim() not in (2, 3):
        raise ValueError(f"inputs must have shape [T,m] or [B,T,m], got {list(U.shape)} "
                         f"(s0 {list(s0_t.shape)})")
    batched = U.dim() == 3
    Ub = U if batched else U.unsqueeze(0)
    D = int(s0_t.shape[0])
    init_t = None
    if init is not None:
        init_t = _as_tensor("init", init, numpy_backend)
        want = (Ub.shape[0], Ub.shape[1], D) if batched else (Ub.shape[1], D)
        if tuple(init_t.shape) != want:
            raise ValueError(f"init must have shape {list(want)}, got {list(init_t.shape)} "
                             f"(inputs {list(U.shape)}, s0 {list(s0_t.shape)})")
        if init_t.dtype != s0_t.dtype:
            raise TypeError(f"init dtype {init_t.dtype} differs from s0 dtype {s0_t.dtype}")
        init_t = init_t.transpose(0, 1).contiguous() if batched else init_t.unsqueeze(1)
    for name, x in (("s0", s0_t), ("inputs", Ub), ("init", init_t)):
        if x is not None and x.numel() and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains non-finite values")
    if numpy_backend:
        fused = f_and_jac is not None or (need == "diag" and f_and_jac_diag is not None)
        jac, jac_diag = _numpy_jacobians("none" if fused else need, method, jac, jac_diag)
        f_and_jac = _numpy_fn(f_and_jac) if f_and_jac is not None else None
        f_and_jac_diag = _numpy_fn(f_and_jac_diag) if f_and_jac_diag is not None else None
    tol = (config or NewtonConfig()).resolved_tol(_FLOAT_DTYPES[s0_t.dtype])
    U_tm = Ub.transpose(0, 1).contiguous()
    return Problem(s0=s0_t, U=U_tm, init=init_t, batched=batched, numpy_backend=numpy_backend, tol=tol,
                   jac=jac, jac_diag=jac_diag, f_and_jac=f_and_jac, f_and_jac_diag=f_and_jac_diag)


def _numpy_jacobians(need: JacKind, method: str, jac: Fn | None,
                     jac_diag: Fn | None) -> tuple[Fn | None, Fn | None]:
    if need == "dense" and jac is None:
        raise ValueError(f"the numpy backend needs jac= for method {method} (no autodiff in numpy)")
    if need == "diag" and jac is None and jac_diag is None:
        raise ValueError(f"the numpy backend needs jac_diag= (or jac=) for method {method}")
    return (_numpy_fn(jac) if jac is not None else None,
            _numpy_fn(jac_diag) if jac_diag is not None else None)
