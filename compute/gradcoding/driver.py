"""One training driver for COCO-EF and its baselines (spec 5.9), run through the cores in the simulator."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from hedgerow.compute.gradcoding.codes import ConfigError, build_code
from hedgerow.compute.gradcoding.compress import index_bits, k_of, value_bits
from hedgerow.compute.gradcoding.coordinator import GcConfig
from hedgerow.compute.gradcoding.messages import CompressorSpec, DataSpec, GcJobSpec, ModelSpec, RoundRecord
from hedgerow.compute.gradcoding.models import LogReg, Problem, make_problem, mlp_dim, synthetic_logreg
from hedgerow.compute.gradcoding.sim import GcSim, RoundHook, SimConfig, SimResult, median_latency_s

Array = NDArray[np.float64]

# method -> (scheme, mode, compressor kind: "biased" | "identity" | "randk", error feedback, uncoded)
METHODS: dict[str, tuple[str, str, str, bool, bool]] = {
    "cocoef": ("cyclic_ones", "stochastic", "biased", True, False),
    "gc": ("cyclic_ones", "stochastic", "identity", False, False),
    "gc_randk": ("cyclic_ones", "stochastic", "randk", False, False),
    "gc_biased": ("cyclic_ones", "stochastic", "biased", False, False),
    "ef_nogc": ("cyclic_ones", "stochastic", "biased", True, True),
    "uncoded": ("cyclic_ones", "stochastic", "identity", False, True),
    "uncoded_wait": ("cyclic_ones", "exact", "identity", False, True),
}
METHOD_TITLES = {
    "cocoef": "COCO-EF", "gc": "GC uncompressed", "gc_randk": "GC + rand-k (equal bits)",
    "gc_biased": "GC + biased, no EF", "ef_nogc": "EF without GC", "uncoded": "uncoded, uncompressed",
    "uncoded_wait": "uncoded, wait for all",
}


@dataclass(frozen=True, slots=True)
class TrainSetup:
    """Everything one run needs; `job_spec()` and `gc_config()` derive the messages and settings."""

    n: int = 8
    s: int = 2
    scheme: str = "cyclic_ones"
    mode: str = "stochastic"
    compressor: CompressorSpec = field(default_factory=lambda: CompressorSpec("topk", 0.05))
    error_feedback: bool = True
    rounds: int = 300
    eta: float = 1.0
    p: float = 0.2  # assumed by the coordinator and injected by the simulator
    wire_dtype: str = "f32"
    problem: str = "logreg"  # "logreg" | "mlp"
    data_seed: int = 0
    m: int = 500
    data_dim: int = 100
    l2: float = 1e-2
    mlp_sizes: tuple[int, ...] = (64, 32, 10)
    job_seed: int = 0
    code_seed: int = 0
    close: str = "auto"
    deadline_s: float | None = None  # None: 1.5x the simulated median latency
    fallback: str = "approx"
    weights: str = "fixed"
    p_mode: str = "fixed"
    checkpoint_every: int = 50
    method: str = "custom"

    def data_spec(self) -> DataSpec:
        kind = "synthetic_logreg" if self.problem == "logreg" else "gaussian_mixture"
        return DataSpec(kind, self.data_seed, self.m, self.data_dim)

    def model_spec(self) -> ModelSpec:
        if self.problem == "logreg":
            return ModelSpec("logreg", self.data_dim, self.l2, ())
        if self.problem == "mlp":
            return ModelSpec("mlp", mlp_dim(self.mlp_sizes), self.l2, self.mlp_sizes)
        raise ConfigError(f"problem: unknown {self.problem!r} (logreg, mlp)")

    def job_spec(self) -> GcJobSpec:
        b, code_seed = build_code(self.scheme, self.n, self.s, self.code_seed)
        support = tuple(tuple(int(j) for j in np.flatnonzero(row)) for row in b)
        if self.scheme != "frac":  # cyclic order: support[i] = (i, i+1, ..., i+s) mod n
            support = tuple(tuple((i + t) % self.n for t in range(self.s + 1)) for i in range(self.n))
        coeffs = tuple(tuple(float(b[i, j]) for j in row) for i, row in enumerate(support))
        job_id = hashlib.sha256(f"hedgerow-gc:{self.job_seed}:{self.method}".encode()).digest()[:16]
        return GcJobSpec(job_id, self.job_seed, self.n, self.s, self.scheme, self.mode, code_seed, support,
                         coeffs, self.data_spec(), self.model_spec(), self.compressor, self.error_feedback,
                         self.wire_dtype)

    def gc_config(self, sim: SimConfig) -> GcConfig:
        deadline = self.deadline_s
        if deadline is None:
            bits = message_bits(self.compressor, self.model_spec().dim, self.wire_dtype)
            deadline = 1.5 * median_latency_s(sim, self.s + 1, bits)
        return GcConfig(rounds=self.rounds, eta=self.eta, p=self.p, p_mode=self.p_mode, weights=self.weights,
                        close=self.close, fallback=self.fallback, deadline_s=deadline,
                        checkpoint_every=self.checkpoint_every)


def message_bits(spec: CompressorSpec, dim: int, wire_dtype: str) -> int:
    """Nominal bits of one message under `spec` (table 5.6)."""
    vb = value_bits(wire_dtype)
    if spec.name == "identity":
        return vb * dim
    if spec.name == "sign":
        return dim + vb
    k = k_of(spec, dim)
    if spec.name == "randk" and spec.shared_seed:
        return vb * k
    return k * (vb + index_bits(dim))


def equal_bits_randk(topk: CompressorSpec, dim: int) -> CompressorSpec:
    """rand-k at the bits of top-k: k_rand = floor(k_top*(32+ceil(log2 D))/32) (5.9)."""
    k_top = k_of(topk, dim)
    k_rand = max(1, (k_top * (32 + index_bits(dim))) // 32)
    return CompressorSpec("randk", k_rand / dim, True)


def method_setup(method: str, base: TrainSetup, biased: CompressorSpec | None = None) -> TrainSetup:
    """The TrainSetup of a named method (5.9); `biased` is the top-k or sign compressor."""
    if method not in METHODS:
        raise ConfigError(f"method: unknown {method!r} ({', '.join(METHODS)})")
    scheme, mode, kind, ef, uncoded = METHODS[method]
    biased = biased or base.compressor
    dim = base.model_spec().dim
    compressor = {"biased": biased, "identity": CompressorSpec("identity", 1.0),
                  "randk": equal_bits_randk(biased, dim)}[kind]
    setup = replace(base, scheme=scheme, mode=mode, compressor=compressor, error_feedback=ef,
                    s=0 if uncoded else base.s, method=method)
    if method == "uncoded_wait":
        setup = replace(setup, close="all", deadline_s=math.inf)
    return setup


@functools.lru_cache(maxsize=8)
def _logreg_cached(n: int, m: int, dim: int, seed: int, l2: float) -> LogReg:
    return LogReg(synthetic_logreg(n, m, dim, seed), l2)


def build_problem(setup: TrainSetup) -> Problem:
    if setup.problem == "logreg":
        return _logreg_cached(setup.n, setup.m, setup.data_dim, setup.data_seed, setup.l2)
    import torch

    # Tiny per-partition batches: intra-op threads cost 10x more than they save (measured 6.8 ms vs
    # 0.65 ms per partition gradient on a loaded 2-core machine). This is the simulator's process.
    torch.set_num_threads(1)
    return make_problem(setup.data_spec(), setup.model_spec(), setup.n)


@functools.lru_cache(maxsize=8)
def logreg_optimum(n: int, m: int, dim: int, seed: int, l2: float, steps: int = 5000,
                   eta: float = 2.0) -> float:
    """F* from `steps` full-gradient steps at `eta` from w=0 (spec section 9)."""
    problem = _logreg_cached(n, m, dim, seed, l2)
    x = np.concatenate([p[0] for p in problem.parts])
    y = np.concatenate([p[1] for p in problem.parts])
    w = np.zeros(dim)
    for _ in range(steps):
        coef = -y * np.exp(-np.logaddexp(0.0, y * (x @ w)))
        w = w - eta * (x.T @ coef / x.shape[0] + l2 * w)
    return problem.loss(w)


@dataclass
class TrainResult:
    setup: TrainSetup
    sim: SimResult
    losses: list[float]
    bits_cumulative: list[int]
    f_star: float | None

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan

    @property
    def final_gap(self) -> float | None:
        return None if self.f_star is None else self.final_loss - self.f_star

    def summary(self) -> dict[str, object]:
        history = self.sim.history
        counters = self.sim.counters
        aborted = getattr(self.sim.result, "reason", None)
        return {
            "method": self.setup.method, "scheme": self.setup.scheme, "mode": self.setup.mode,
            "compressor": f"{self.setup.compressor.name}:{self.setup.compressor.ratio:g}",
            "error_feedback": self.setup.error_feedback, "n": self.setup.n, "s": self.setup.s,
            "rounds": len(history), "final_loss": self.final_loss, "final_gap": self.final_gap,
            "bits_uplink": counters["bits_used"], "bits_sent": counters["bits_sent"],
            "bits_downlink": counters["bits_downlink"],
            "bytes_wire": counters["bytes_wire"], "stragglers_seen": straggler_count(history, self.setup.n),
            "late_replies": counters["late"], "malformed": counters["malformed"],
            "duplicates": counters["duplicate"], "fallbacks": counters["fallbacks"],
            "ef_resets": counters["ef_resets"], "virtual_time_s": self.sim.virtual_time_s,
            "aborted": aborted,
        }


def straggler_count(history: list[RoundRecord], n: int) -> int:
    """Worker-rounds whose reply was not aggregated."""
    return sum(n - len(record.responders) for record in history)


ProgressHook = Callable[[RoundRecord, float, int], None]  # (record, loss, uplink bits so far)


def train(setup: TrainSetup, sim: SimConfig, *, on_round: RoundHook | None = None,
          on_progress: ProgressHook | None = None, track_loss: bool = True,
          with_gap: bool = True) -> TrainResult:
    """Run one job in the seeded simulator; the loss after every round is recorded when asked."""
    problem = build_problem(setup)
    losses: list[float] = []
    bits: list[int] = []

    def hook(record: RoundRecord, w: Array, now: float) -> None:
        if track_loss:
            losses.append(problem.loss(w))
        bits.append((bits[-1] if bits else 0) + record.bits_used)
        if on_round is not None:
            on_round(record, w, now)
        if on_progress is not None:
            on_progress(record, losses[-1] if losses else math.nan, bits[-1])

    job = setup.job_spec()
    w0 = problem.initial_weights()
    result = GcSim(job, setup.gc_config(sim), w0, sim, problem=problem, on_round=hook).run()
    if not track_loss:
        losses = [problem.loss(result.w)]
    f_star = None
    if with_gap and setup.problem == "logreg":
        f_star = logreg_optimum(setup.n, setup.m, setup.data_dim, setup.data_seed, setup.l2)
    return TrainResult(setup, result, losses, bits, f_star)


def reproduction_base(rounds: int = 300) -> TrainSetup:
    """Section 9 settings: n=8, s=2, eta=1, T=300, top-k k=5, data seed 0, w0=0."""
    return TrainSetup(n=8, s=2, rounds=rounds, eta=1.0, compressor=CompressorSpec("topk", 0.05),
                      m=500, data_dim=100, l2=1e-2, data_seed=0)


def run_method(method: str, p: float, straggler_seed: int, base: TrainSetup | None = None,
               biased: CompressorSpec | None = None, track_loss: bool = False) -> TrainResult:
    """One reproduction run: Bernoulli stragglers with probability p, seed `straggler_seed`."""
    setup = replace(method_setup(method, base or reproduction_base(), biased), p=p, job_seed=straggler_seed)
    sim = SimConfig(straggler="bernoulli", p=p, straggler_seed=straggler_seed)
    return train(setup, sim, track_loss=track_loss)
