"""GcWorker: the sans-IO worker core (spec 5.7). No clock, no I/O, no global RNG.

The node feeds it `on_message(sender, msg, now)`; it answers the sender (the coordinator) with one
`GradReply` per `GradRequest`. Its error-feedback update stays pending until the next request says
whether the reply was aggregated (`accepted_round`), then it is committed or rolled back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hedgerow.compute.gradcoding.codes import encode
from hedgerow.compute.gradcoding.compress import (
    compress,
    ef_step,
    from_wire_values,
    nominal_bits,
    to_wire_values,
    value_bits,
)
from hedgerow.compute.gradcoding.messages import (
    EfMemory,
    GcJobSpec,
    GradReply,
    GradRequest,
    JobAbort,
    NeedJob,
)
from hedgerow.compute.gradcoding.models import Problem, make_problem
from hedgerow.protocols.actions import Action, Persist, Send

Array = NDArray[np.float64]

STREAM_COMPRESS = 1  # rng stream of the compressor (rand-k), shared with the coordinator


def compress_rng(job_seed: int, round_: int, worker: int) -> np.random.Generator:
    return np.random.default_rng([job_seed, round_, worker, STREAM_COMPRESS])


@dataclass
class _Pending:
    round: int
    memory: Any  # numpy float64, or a float64 tensor on the problem's device


class _NumpyOps:
    encode = staticmethod(encode)
    ef_step = staticmethod(ef_step)
    compress = staticmethod(compress)


_NUMPY_OPS = _NumpyOps()


class GcWorker:
    """Worker `index` of one gradient-coding job at a time.

    `problem` may be injected (the simulator shares one); otherwise it is rebuilt from the job's
    data/model specs. After a process restart, construct it with `memory_epoch` one higher than
    before (the node keeps that counter): EF memory is soft state and restarts at zero.
    """

    def __init__(self, index: int, *, problem: Problem | None = None, memory_epoch: int = 0,
                 persist_memory: bool = False, device_resident: bool = False) -> None:
        self.index = index
        self.device_resident = device_resident  # torch problems: gradients and EF memory stay on device
        self._torch = False
        self.memory_epoch = memory_epoch
        self.persist_memory = persist_memory
        self._problem = problem
        self.job: GcJobSpec | None = None
        self.memory: Any = None  # numpy float64, or a float64 tensor on the problem's device
        self.pending: _Pending | None = None
        self.counters = {"requests": 0, "commits": 0, "rollbacks": 0, "bad_requests": 0, "unknown_job": 0,
                         "bad_jobs": 0}

    def start(self, now: float) -> list[Action]:
        del now
        return []

    def on_timer(self, timer: Any, now: float) -> list[Action]:
        del timer, now
        return []

    def on_message(self, sender: int, message: Any, now: float) -> list[Action]:
        del now
        if isinstance(message, GcJobSpec):
            self._learn(message)
            return []
        if isinstance(message, GradRequest):
            return self._on_request(sender, message)
        if isinstance(message, JobAbort) and self.job is not None and message.job_id == self.job.job_id:
            self.job, self.memory, self.pending = None, None, None
        return []

    def _learn(self, job: GcJobSpec) -> None:
        if self.job is not None and self.job.job_id == job.job_id:
            return  # re-sent spec (coordinator restart): keep memory
        problem = self._problem
        try:
            if problem is None or problem.n != job.n or problem.dim != job.model.dim:
                problem = make_problem(job.data, job.model, job.n)
        except ValueError:  # ConfigError included: a job this worker cannot run is dropped, not fatal
            self.counters["bad_jobs"] += 1
            return
        if problem.dim != job.model.dim or not 0 <= self.index < job.n:
            self.counters["bad_jobs"] += 1
            return
        self._problem = problem
        self.job = job
        self._torch = self.device_resident and hasattr(problem, "partition_grad_tensor")
        if self._torch:
            import torch

            device = getattr(problem, "device", None)
            self.memory = torch.zeros(job.model.dim, dtype=torch.float64, device=device)
        else:
            self.memory = np.zeros(job.model.dim)
        self.pending = None

    def _on_request(self, sender: int, req: GradRequest) -> list[Action]:
        job = self.job
        if job is None or req.job_id != job.job_id:
            self.counters["unknown_job"] += 1
            return [Send(sender, NeedJob(req.job_id, self.index))]
        problem = self._problem
        memory = self.memory
        if problem is None or memory is None:
            raise RuntimeError("worker has a job but no problem or memory")
        if len(req.weights) != job.model.dim * value_bits(job.wire_dtype) // 8:
            self.counters["bad_requests"] += 1
            return []
        w = from_wire_values(req.weights, job.wire_dtype)
        if not (bool(np.all(np.isfinite(w))) and math.isfinite(req.ef_scale)):
            self.counters["bad_requests"] += 1
            return []
        self.counters["requests"] += 1
        memory = self._settle(req, memory)
        if req.ef_scale != 1.0:
            memory = memory * req.ef_scale
        self.memory = memory
        support = job.support[self.index]
        row = np.zeros(job.n)
        row[list(support)] = job.coeffs[self.index]
        rng = compress_rng(job.job_seed, req.round, self.index) if job.compressor.name == "randk" else None
        ops: Any = self._ops()
        if self._torch:
            torch_problem: Any = problem
            grads: list[Any] = [torch_problem.partition_grad_tensor(j, w) for j in support]
        else:
            grads = [problem.partition_grad(j, w) for j in support]
        v = ops.encode(row, support, grads)
        actions: list[Action] = []
        if job.error_feedback:
            cv, memory_new = ops.ef_step(memory, v, job.compressor, rng, job.wire_dtype)
            self.pending = _Pending(req.round, memory_new)
            if self.persist_memory:
                host = memory_new.cpu().numpy() if self._torch else memory_new
                actions.append(Persist(EfMemory(job.job_id, req.round, to_wire_values(host, "f64"))))
        else:
            cv = ops.compress(job.compressor, v, rng, job.wire_dtype)
        reply = GradReply(job.job_id, req.round, self.index, cv, nominal_bits(cv), 0.0, self.memory_epoch)
        actions.append(Send(sender, reply))
        return actions

    def _ops(self) -> Any:
        """The numpy API, or its torch twin for device-resident torch problems."""
        if self._torch:
            from hedgerow.compute.gradcoding import torch_api

            return torch_api
        return _NUMPY_OPS

    def _settle(self, req: GradRequest, memory: Any) -> Any:
        """Commit or roll back the pending EF update (5.7 step 1)."""
        pending, self.pending = self.pending, None
        if pending is None:
            return memory
        if pending.round < req.round and req.accepted_round == pending.round:
            self.counters["commits"] += 1
            return pending.memory
        self.counters["rollbacks"] += 1  # not used, or the coordinator restarted below it
        return memory
