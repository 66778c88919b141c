"""Library types of the parallel-Newton solver (spec section 3) and their validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Method = Literal["sequential", "deer", "quasi_deer", "elk", "quasi_elk", "picard", "jacobi"]
Status = Literal["converged", "max_iter", "non_finite"]
ElkPass = Literal["smoother", "filter"]
LamSchedule = Literal["fixed", "adaptive"]
ScanKind = Literal["parallel", "sequential"]
DiagEstimator = Literal["exact", "hutchinson"]

METHODS: tuple[str, ...] = get_args(Method)
DENSE_METHODS = frozenset({"deer", "elk"})
QUASI_METHODS = frozenset({"quasi_deer", "quasi_elk"})
ELK_METHODS = frozenset({"elk", "quasi_elk"})

TOL_FLOAT64 = 1e-10
TOL_FLOAT32 = 1e-5
LAM_MIN = 1e-12
LAM_MAX = 1e12


@dataclass(frozen=True, slots=True)
class NewtonConfig:
    """How `solve` iterates; every field as in spec section 3 ([D] defaults)."""

    method: Method = "quasi_deer"
    tol: float | None = None
    max_iter: int | None = None
    lam: float = 1e-2
    lam_schedule: LamSchedule = "fixed"
    elk_pass: ElkPass = "smoother"
    jac_clip: float | None = None
    damping_k: float = 0.0
    prefix_guard: bool = True
    state_clip: float = 1e8
    scan: ScanKind = "parallel"
    diag_estimator: DiagEstimator = "exact"
    n_probes: int = 1
    record_trace: bool = False

    def __post_init__(self) -> None:
        _check_choice("method", self.method, METHODS)
        _check_choice("elk_pass", self.elk_pass, get_args(ElkPass))
        _check_choice("lam_schedule", self.lam_schedule, get_args(LamSchedule))
        _check_choice("scan", self.scan, get_args(ScanKind))
        _check_choice("diag_estimator", self.diag_estimator, get_args(DiagEstimator))
        if self.tol is not None and not (isinstance(self.tol, int | float) and self.tol > 0):
            raise ValueError(f"tol must be > 0, got {self.tol!r}")
        if self.max_iter is not None and (not isinstance(self.max_iter, int) or self.max_iter < 1):
            raise ValueError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if not (isinstance(self.lam, int | float) and self.lam >= 0 and math.isfinite(self.lam)):
            raise ValueError(f"lam must be a finite number >= 0, got {self.lam!r}")
        if not (isinstance(self.damping_k, int | float) and 0.0 <= self.damping_k < 1.0):
            raise ValueError(f"damping_k must be in [0, 1), got {self.damping_k!r}")
        if self.jac_clip is not None and not (isinstance(self.jac_clip, int | float) and self.jac_clip > 0):
            raise ValueError(f"jac_clip must be > 0, got {self.jac_clip!r}")
        if not (isinstance(self.state_clip, int | float) and self.state_clip > 0):
            raise ValueError(f"state_clip must be > 0 (inf allowed), got {self.state_clip!r}")
        if not isinstance(self.n_probes, int) or self.n_probes < 1:
            raise ValueError(f"n_probes must be an int >= 1, got {self.n_probes!r}")

    def resolved_tol(self, dtype_name: str) -> float:
        if self.tol is not None:
            return float(self.tol)
        return TOL_FLOAT64 if dtype_name == "float64" else TOL_FLOAT32

    def resolved_max_iter(self, T: int) -> int:
        return self.max_iter if self.max_iter is not None else T + 1

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _check_choice(name: str, value: object, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")


@dataclass(frozen=True)
class NewtonResult:
    """What `solve` returns (spec section 3). Batched fields are per-sequence arrays of length B."""

    states: Any
    status: Status
    iterations: Any
    max_residual: Any
    converged_prefix: Any
    resets: int
    residual_history: list[float]
    workspace_bytes: int
    trace: list[Any] = field(default_factory=list)
    statuses: tuple[Status, ...] = ()
