"""Parallel-Newton jobs on the wire (spec 3, 5.9): messages, tensor codec, and the worker function.

Messages are frozen dataclasses registered with `hedgerow.protocols.wire` under tags 90-99. A
tensor is `WireTensor(dtype, shape, data)` (little-endian, C order); a job's config travels as
`JobConfig`, the typed map of `NewtonConfig` fields. Decoding checks types and lengths only;
the meaning (known system, shapes, config, size, finiteness) is checked by `check_job`, which the
worker and the coordinator share, so a bad job gets a `NewtonReject` with its reason.

`serve(job, worker=...)` is the pure worker function a node's compute-worker actor calls (on its
GPU when it has one); it never reads a clock unless the caller passes one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hedgerow.compute.newton.config import NewtonConfig
from hedgerow.compute.newton.solver import ProgressFn, solve
from hedgerow.compute.newton.systems import SYSTEMS, System, build
from hedgerow.protocols.wire import message

MAX_JOB_ELEMS_DEFAULT = 20_000_000
REJECT_REASONS = ("too_large", "bad_shape", "unknown_system", "bad_config", "non_finite_input")
_DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_JOB_ID_BYTES = 16
_DIGEST_BYTES = 32
_RANK_MAX = 8


@message(90)
@dataclass(frozen=True, slots=True)
class WireTensor:
    """`{dtype, shape, data}`: little-endian bytes of a float32/float64 array in C order."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def validate(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"tensor dtype {self.dtype!r} is not float32/float64")
        if len(self.shape) > _RANK_MAX or any(d < 0 for d in self.shape):
            raise ValueError(f"bad tensor shape {list(self.shape)}")
        want = math.prod(self.shape) * _DTYPES[self.dtype].itemsize
        if len(self.data) != want:
            raise ValueError(f"tensor data has {len(self.data)} B, shape {list(self.shape)} needs {want} B")


@message(91)
@dataclass(frozen=True, slots=True)
class JobConfig:
    """The NewtonConfig fields of a job (checked by `check_job`, rejected as `bad_config`)."""

    method: str = "quasi_deer"
    tol: float | None = None
    max_iter: int | None = None
    lam: float = 1e-2
    lam_schedule: str = "fixed"
    elk_pass: str = "smoother"
    jac_clip: float | None = None
    damping_k: float = 0.0
    prefix_guard: bool = True
    state_clip: float = 1e8
    scan: str = "parallel"
    diag_estimator: str = "exact"
    n_probes: int = 1
    record_trace: bool = False

    @classmethod
    def of(cls, config: NewtonConfig) -> JobConfig:
        values = config.to_dict()
        values["record_trace"] = False
        for key in ("tol", "jac_clip"):
            if values[key] is not None:
                values[key] = float(values[key])
        for key in ("lam", "damping_k", "state_clip"):
            values[key] = float(values[key])
        return cls(**values)

    def to_config(self) -> NewtonConfig:
        """The library config (ValueError on anything the library refuses)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return NewtonConfig(**values)


@message(92)
@dataclass(frozen=True, slots=True)
class NewtonJob:
    job_id: bytes
    system: str
    params: dict[str, WireTensor]
    s0: WireTensor
    inputs: WireTensor
    config: JobConfig
    deadline_ms: int
    return_states: bool

    def validate(self) -> None:
        if len(self.job_id) != _JOB_ID_BYTES:
            raise ValueError(f"job_id must be {_JOB_ID_BYTES} bytes, got {len(self.job_id)}")
        if self.deadline_ms <= 0:
            raise ValueError(f"deadline_ms must be > 0, got {self.deadline_ms}")


@message(93)
@dataclass(frozen=True, slots=True)
class NewtonReply:
    job_id: bytes
    worker: bytes
    status: str
    iterations: tuple[int, ...]
    max_residual: tuple[float, ...]
    wall_ms: int
    states: WireTensor | None
    states_digest: bytes
    last_state: WireTensor

    def validate(self) -> None:
        if len(self.job_id) != _JOB_ID_BYTES or len(self.states_digest) != _DIGEST_BYTES:
            raise ValueError("job_id must be 16 bytes and states_digest 32 bytes")
        if self.status not in ("converged", "max_iter", "non_finite"):
            raise ValueError(f"unknown status {self.status!r}")


@message(94)
@dataclass(frozen=True, slots=True)
class NewtonReject:
    job_id: bytes
    reason: str

    def validate(self) -> None:
        if len(self.job_id) != _JOB_ID_BYTES:
            raise ValueError("job_id must be 16 bytes")
        if self.reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {self.reason!r}")


# ---------------------------------------------------------------------------------------------
# Tensors


def to_wire_tensor(x: Tensor | np.ndarray) -> WireTensor:
    array = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    name = str(array.dtype)
    if name not in _DTYPES:
        raise TypeError(f"only float32/float64 tensors travel, got {name}")
    data = np.ascontiguousarray(array, dtype=_DTYPES[name]).tobytes()
    return WireTensor(dtype=name, shape=tuple(int(d) for d in array.shape), data=data)


def from_wire_tensor(t: WireTensor, *, device: str | torch.device = "cpu") -> Tensor:
    t.validate()
    array = np.frombuffer(t.data, dtype=_DTYPES[t.dtype]).reshape(t.shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True)).to(device)


def states_digest(states: Tensor | np.ndarray) -> bytes:
    """SHA-256 of the little-endian bytes of the states (C order)."""
    return hashlib.sha256(to_wire_tensor(states).data).digest()


# ---------------------------------------------------------------------------------------------
# Checking a job (worker and coordinator alike)


class JobRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class CheckedJob:
    system: System
    s0: Tensor
    inputs: Tensor
    config: NewtonConfig

    @property
    def tol(self) -> float:
        return self.config.resolved_tol(str(self.s0.dtype).removeprefix("torch."))


def check_job(job: NewtonJob, *, device: str | torch.device = "cpu",
              max_job_elems: int = MAX_JOB_ELEMS_DEFAULT) -> CheckedJob:
    """Decode and check a job (spec 7); raises JobRejected(reason, detail)."""
    if job.system not in SYSTEMS:
        raise JobRejected("unknown_system", f"{job.system!r} is not one of {', '.join(SYSTEMS)}")
    try:
        config = job.config.to_config()
    except (ValueError, TypeError) as error:
        raise JobRejected("bad_config", str(error)) from None
    try:
        s0 = from_wire_tensor(job.s0, device=device)
        inputs = from_wire_tensor(job.inputs, device=device)
        params = {k: from_wire_tensor(v, device=device) for k, v in job.params.items()}
    except ValueError as error:
        raise JobRejected("bad_shape", str(error)) from None
    if s0.dim() != 1 or inputs.dim() != 3:
        raise JobRejected("bad_shape", f"s0 {list(s0.shape)} must be [D] and inputs "
                                       f"{list(inputs.shape)} [B,T,m]")
    if any(t.dtype != s0.dtype for t in (inputs, *params.values())):
        raise JobRejected("bad_shape", "s0, inputs and params must share one dtype")
    B, T, m = (int(d) for d in inputs.shape)
    D = int(s0.shape[0])
    elems = B * T * D
    if elems > max_job_elems:
        raise JobRejected("too_large", f"B*T*D = {elems} exceeds {max_job_elems}")
    try:
        system = build(job.system, params, D=D)
    except ValueError as error:
        raise JobRejected("bad_shape", str(error)) from None
    if m != system.m or (job.system == "logistic" and D != 1):
        raise JobRejected("bad_shape", f"{job.system} wants inputs [B,T,{system.m}] and D fitting it")
    for name, t in (("s0", s0), ("inputs", inputs), *params.items()):
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise JobRejected("non_finite_input", f"{name} contains non-finite values")
    return CheckedJob(system=system, s0=s0, inputs=inputs, config=config)


# ---------------------------------------------------------------------------------------------
# The worker function


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def serve(job: NewtonJob, *, worker: bytes, device: str | None = None,
          max_job_elems: int = MAX_JOB_ELEMS_DEFAULT, clock: Callable[[], float] | None = None,
          on_iteration: ProgressFn | None = None) -> NewtonReply | NewtonReject:
    """Run one job and build its reply (spec 5.9 step 2); `clock` (seconds) only times wall_ms."""
    try:
        checked = check_job(job, device=device or default_device(), max_job_elems=max_job_elems)
    except JobRejected as rejected:
        return NewtonReject(job_id=job.job_id, reason=rejected.reason)
    started = clock() if clock is not None else 0.0
    system = checked.system
    result = solve(system.f, checked.s0, checked.inputs, config=checked.config,
                   f_and_jac=system.f_and_jac, f_and_jac_diag=system.f_and_jac_diag,
                   on_iteration=on_iteration)
    wall_ms = int(round(1000 * (clock() - started))) if clock is not None else 0
    return reply_for(job, worker, result.states, result.statuses, result.iterations,
                     result.max_residual, wall_ms, s0=checked.s0)


def reply_for(job: NewtonJob, worker: bytes, states: Tensor, statuses: Any, iterations: Any,
              max_residual: Any, wall_ms: int, *, s0: Tensor) -> NewtonReply:
    B, T, D = states.shape
    last = states[:, -1] if T else s0.reshape(1, D).expand(B, D)
    worst = "converged"
    for s in statuses:
        if s != "converged":
            worst = s
    return NewtonReply(
        job_id=job.job_id, worker=worker, status=worst,
        iterations=tuple(int(i) for i in np.asarray(iterations).reshape(-1)),
        max_residual=tuple(float(r) for r in np.asarray(max_residual).reshape(-1)),
        wall_ms=max(0, wall_ms), states=to_wire_tensor(states) if job.return_states else None,
        states_digest=states_digest(states), last_state=to_wire_tensor(last.contiguous()),
    )


def make_job(job_id: bytes, system: System, s0: Tensor, inputs: Tensor, config: NewtonConfig, *,
             deadline_ms: int = 10_000, return_states: bool = True) -> NewtonJob:
    """A job for a registry system (its original, non-derived parameters travel)."""
    from hedgerow.compute.newton.systems import PARAM_NAMES

    if inputs.dim() == 2:
        inputs = inputs.unsqueeze(0)
    params = {k: to_wire_tensor(system.params[k]) for k in PARAM_NAMES[system.name]}
    return NewtonJob(job_id=job_id, system=system.name, params=params, s0=to_wire_tensor(s0),
                     inputs=to_wire_tensor(inputs), config=JobConfig.of(config),
                     deadline_ms=deadline_ms, return_states=return_states)
