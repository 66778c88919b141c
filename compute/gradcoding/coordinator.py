"""GcCoordinator: the sans-IO coordinator core (spec 5.8, section 7). No clock, no I/O, no global RNG.

Workers are addressed by their index `0..n-1` in `Send(to, ...)`; the node maps indices to peers and
passes the worker index as `sender` to `on_message`. Timers are `("gc_deadline", job_id, round)`.
Action order: at a fresh `start`, `Persist(GcJobSpec)` then one `Send(i, GcJobSpec)` per worker; per
round, `Persist(GcCheckpoint)` when due, then one `GradRequest` per (non-quarantined) worker, then the
deadline `SetTimer` (none when `deadline_s` is infinite); at the end `Persist(GcCheckpoint)` then
`Deliver(GcJobResult)`; on abort one `Send(i, JobAbort)` per worker then `Deliver(JobAbort)`.
After a crash, build it again with the last persisted `GcCheckpoint` and call `start`: it resumes at the
checkpoint's round (workers keep their job and drop pending EF updates at or above that round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hedgerow.compute.gradcoding.codes import (
    ConfigError,
    DecodeError,
    aggregate,
    approx_decode_weights,
    assignment,
    column_load,
    decode_weights,
    mds_coefficients,
    stochastic_weights,
)
from hedgerow.compute.gradcoding.compress import (
    check_vector,
    decompress,
    from_wire_values,
    nominal_bits,
    to_wire_values,
)
from hedgerow.compute.gradcoding.messages import (
    GcCheckpoint,
    GcJobResult,
    GcJobSpec,
    GradReply,
    GradRequest,
    JobAbort,
    NeedJob,
    RoundRecord,
)
from hedgerow.compute.gradcoding.worker import compress_rng
from hedgerow.protocols import wire
from hedgerow.protocols.actions import Action, Deliver, Persist, Send, SetTimer

Array = NDArray[np.float64]
P_HAT_MAX = 0.9
P_EWMA = 0.05


@dataclass(frozen=True, slots=True)
class GcConfig:
    """Coordinator-local settings (not sent to workers)."""

    rounds: int = 300
    eta: float = 1.0
    p: float = 0.25  # assumed straggler probability (stochastic weights)
    p_mode: str = "fixed"  # "fixed" | "estimate"
    weights: str = "fixed"  # "fixed" | "realized"
    close: str = "auto"  # "auto" (first_k in exact, all in stochastic) | "first_k" | "all"
    fallback: str = "approx"  # exact mode, undecodable round: "approx" | "skip" | "stochastic"
    deadline_s: float = 0.5  # math.inf: wait without a timer
    checkpoint_every: int = 50
    max_empty_rounds: int = 20
    malformed_max: int = 3


def validate_job(job: GcJobSpec, cfg: GcConfig) -> None:
    """Raise ConfigError naming the field; nothing is sent for a bad config (section 7)."""
    support = assignment(job.n, job.s, job.scheme)  # checks n, s, frac divisibility
    if job.scheme == "cyclic_mds":
        mds_coefficients(job.n, job.s)  # checks n+s odd
    if [tuple(row) for row in job.support] != support:
        raise ConfigError("support: does not match the scheme's assignment")
    if not 0.0 < job.compressor.ratio <= 1.0:
        raise ConfigError(f"ratio: {job.compressor.ratio} not in (0, 1]")
    if not 0.0 <= cfg.p < 1.0:
        raise ConfigError(f"p: {cfg.p} not in [0, 1)")
    if cfg.rounds < 1:
        raise ConfigError(f"rounds: {cfg.rounds} < 1")
    if cfg.close not in ("auto", "first_k", "all") or cfg.fallback not in ("approx", "skip", "stochastic"):
        raise ConfigError(f"close/fallback: unknown {cfg.close!r}/{cfg.fallback!r}")
    if cfg.p_mode not in ("fixed", "estimate") or cfg.weights not in ("fixed", "realized"):
        raise ConfigError(f"p_mode/weights: unknown {cfg.p_mode!r}/{cfg.weights!r}")
    if not (cfg.deadline_s > 0 and cfg.eta > 0 and cfg.checkpoint_every >= 1 and cfg.max_empty_rounds >= 1):
        raise ConfigError("deadline_s, eta, checkpoint_every, max_empty_rounds must be positive")


def matrix_of(job: GcJobSpec) -> Array:
    b = np.zeros((job.n, job.n))
    for i, (row, coeffs) in enumerate(zip(job.support, job.coeffs, strict=True)):
        b[i, list(row)] = coeffs
    return b


class GcCoordinator:
    """Runs one job: opens rounds, collects replies, decodes/aggregates, steps `w`."""

    def __init__(self, job: GcJobSpec, cfg: GcConfig, w0: Array,
                 checkpoint: GcCheckpoint | None = None) -> None:
        validate_job(job, cfg)
        self.job, self.cfg, self.n = job, cfg, job.n
        self.b = matrix_of(job)
        if job.mode == "stochastic" or cfg.fallback == "stochastic":
            column_load(self.b)  # raises ConfigError when the fixed weights would be biased
        self._stochastic_cache: dict[tuple[tuple[int, ...], float], Array] = {}
        self.w: Array = np.array(w0, dtype=np.float64)
        if self.w.shape != (job.model.dim,):
            raise ConfigError(f"w0: shape {self.w.shape}, want ({job.model.dim},)")
        self.round = 0
        self.accepted_round = [-1] * self.n
        self.p_hat = cfg.p
        self.resumed = checkpoint is not None
        if checkpoint is not None:
            if checkpoint.job_id != job.job_id or len(checkpoint.accepted_round) != job.n:
                raise ConfigError("checkpoint: belongs to another job")
            self.round = checkpoint.round
            self.w = from_wire_values(checkpoint.weights, "f64")
            self.accepted_round = list(checkpoint.accepted_round)
            self.p_hat = checkpoint.p_hat
        self.open = False
        self.done = False
        self.replies: dict[int, Array] = {}
        self.reply_bits: dict[int, int] = {}
        self.round_late = 0
        self.round_bits_late = 0
        self.round_bytes = 0
        self.round_opened_at = 0.0
        self.empty_streak = 0
        self.history: list[RoundRecord] = []
        self.malformed_by_worker = [0] * self.n
        self.quarantined: set[int] = set()
        self.epochs: list[int | None] = [None] * self.n
        self.counters = {key: 0 for key in (
            "late", "bad_round", "duplicate", "malformed", "unknown", "quarantined_dropped", "ef_resets",
            "rounds_undecodable", "fallbacks", "bits_used", "bits_sent", "bytes_wire", "need_job",
            "bits_downlink")}
        self.result: GcJobResult | JobAbort | None = None

    # ------------------------------------------------------------------ core contract

    def start(self, now: float) -> list[Action]:
        """Persist the job spec (fresh start only), send it to every worker, open the first round."""
        actions: list[Action] = [] if self.resumed else [Persist(self.job)]
        actions += [Send(i, self.job) for i in range(self.n)]
        return actions + self._open_round(now)

    def on_timer(self, timer: Any, now: float) -> list[Action]:
        if (self.open and isinstance(timer, tuple) and len(timer) == 3 and timer[0] == "gc_deadline"
                and timer[1] == self.job.job_id and timer[2] == self.round):
            return self._close(now)
        return []  # an older round's timer

    def on_message(self, sender: int, message: Any, now: float) -> list[Action]:
        if isinstance(message, NeedJob) and self._is_worker(sender) and message.job_id == self.job.job_id:
            self.counters["need_job"] += 1
            return [] if self.done else [Send(sender, self.job)]
        if not isinstance(message, GradReply) or not self._is_worker(sender) or message.worker != sender \
                or message.job_id != self.job.job_id:
            self.counters["unknown"] += 1
            return []
        return self._on_reply(sender, message, now)

    # ------------------------------------------------------------------ replies

    def _is_worker(self, sender: int) -> bool:
        return type(sender) is int and 0 <= sender < self.n

    def _on_reply(self, i: int, reply: GradReply, now: float) -> list[Action]:
        if reply.round < self.round or (reply.round == self.round and not self.open):
            self.counters["late"] += 1
            bits = reply.bits if reply.bits > 0 else 0
            self.counters["bits_sent"] += bits
            if self.open:
                self.round_late += 1
                self.round_bits_late += bits
            return []
        if reply.round > self.round:
            self.counters["bad_round"] += 1
            return []
        if i in self.replies:
            self.counters["duplicate"] += 1
            return []
        if i in self.quarantined:
            self.counters["quarantined_dropped"] += 1
            return []
        vector = self._check(reply)
        if vector is None:
            return self._on_malformed(i, now)
        self._note_epoch(i, reply.memory_epoch)
        self.replies[i] = vector
        self.reply_bits[i] = reply.bits
        self.round_bytes += len(wire.encode(reply))
        if self._ready():
            return self._close(now)
        return []

    def _check(self, reply: GradReply) -> Array | None:
        job = self.job
        if check_vector(reply.payload, job.compressor, job.model.dim, job.wire_dtype) is not None:
            return None
        if reply.bits != nominal_bits(reply.payload):
            return None
        shared = reply.payload.kind == "randk" and not reply.payload.indices
        rng = compress_rng(job.job_seed, reply.round, reply.worker) if shared else None
        vector = decompress(reply.payload, rng)
        return vector if bool(np.all(np.isfinite(vector))) else None

    def _on_malformed(self, i: int, now: float) -> list[Action]:
        self.counters["malformed"] += 1
        self.malformed_by_worker[i] += 1
        if self.malformed_by_worker[i] >= self.cfg.malformed_max:
            self.quarantined.add(i)
            if len(self.quarantined) == self.n:
                return self._abort("every worker quarantined for malformed replies")
            if self.job.mode == "exact" and len(self.quarantined) > self.job.s:
                return self._abort(f"{len(self.quarantined)} workers quarantined for malformed replies "
                                   f"(more than s={self.job.s})")
        return self._close(now) if self._ready() else []

    def _note_epoch(self, i: int, epoch: int) -> None:
        seen = self.epochs[i]
        if seen is not None and epoch > seen:
            self.counters["ef_resets"] += epoch - seen
        if seen is None or epoch > seen:
            self.epochs[i] = epoch

    def _ready(self) -> bool:
        live = self.n - len(self.quarantined)
        if len(self.replies) >= live:
            return True
        close = self.cfg.close
        if close == "auto":
            close = "first_k" if self.job.mode == "exact" else "all"
        return close == "first_k" and len(self.replies) >= self.n - self.job.s

    # ------------------------------------------------------------------ rounds

    def checkpoint(self) -> GcCheckpoint:
        return GcCheckpoint(self.job.job_id, self.round, to_wire_values(self.w, "f64"),
                            tuple(self.accepted_round), float(self.p_hat))

    def _open_round(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.round % self.cfg.checkpoint_every == 0:
            actions.append(Persist(self.checkpoint()))
        self.open, self.replies, self.reply_bits = True, {}, {}
        self.round_late = self.round_bits_late = self.round_bytes = 0
        self.round_opened_at = now
        weights = to_wire_values(self.w, self.job.wire_dtype)
        for i in range(self.n):
            if i not in self.quarantined:
                self.counters["bits_downlink"] += 8 * len(weights)
                actions.append(Send(i, GradRequest(self.job.job_id, self.round, weights,
                                                   self.accepted_round[i], 1.0)))
        if math.isfinite(self.cfg.deadline_s):
            actions.append(SetTimer(("gc_deadline", self.job.job_id, self.round), now + self.cfg.deadline_s))
        return actions

    def _stochastic(self, responders: list[int]) -> Array:
        key = (tuple(responders), self.p_hat)
        weights = self._stochastic_cache.get(key)
        if weights is None:
            if len(self._stochastic_cache) > 1024:
                self._stochastic_cache.clear()
            weights = stochastic_weights(self.b, responders, self.p_hat, self.cfg.weights == "realized")
            self._stochastic_cache[key] = weights
        return weights

    def _weights(self, responders: list[int]) -> tuple[Array | None, str, float]:
        """(aggregation weights or None to skip, fallback used, residual)."""
        if not responders:
            return None, "empty", float(self.n)
        if self.job.mode == "stochastic":
            return self._stochastic(responders), "", 0.0
        try:
            return decode_weights(self.b, responders) / self.n, "", 0.0
        except DecodeError:
            self.counters["fallbacks"] += 1
            if self.cfg.fallback == "skip":
                self.counters["rounds_undecodable"] += 1
                return None, "skip", math.nan
            if self.cfg.fallback == "stochastic":
                return self._stochastic(responders), "stochastic", math.nan
            a, residual = approx_decode_weights(self.b, responders)
            return a / self.n, "approx", residual

    def _close(self, now: float) -> list[Action]:
        t = self.round
        responders = sorted(self.replies)
        weights, fallback, residual = self._weights(responders)
        used = [i for i in responders if weights is not None and weights[i] != 0.0]
        if used and weights is not None:
            g_hat = aggregate({i: self.replies[i] for i in used}, weights)
            with np.errstate(over="ignore", invalid="ignore"):
                w_new = self.w - self.cfg.eta * g_hat
            if not bool(np.all(np.isfinite(w_new))):
                return self._abort(f"diverged at round {t}")
            self.w = w_new
            for i in used:
                self.accepted_round[i] = t
        if self.cfg.p_mode == "estimate":
            miss = 1.0 - len(responders) / self.n
            self.p_hat = min(P_HAT_MAX, max(0.0, (1 - P_EWMA) * self.p_hat + P_EWMA * miss))
        bits_used = sum(self.reply_bits[i] for i in used)
        bits_round = sum(self.reply_bits.values())
        self.counters["bits_used"] += bits_used
        self.counters["bits_sent"] += bits_round
        self.counters["bytes_wire"] += self.round_bytes
        self.history.append(RoundRecord(t, tuple(used), self.round_late, bits_used,
                                        bits_round + self.round_bits_late, self.round_bytes, fallback,
                                        float(residual)))
        self.open = False
        self.round = t + 1
        self.empty_streak = self.empty_streak + 1 if not responders else 0
        if self.empty_streak >= self.cfg.max_empty_rounds:
            return self._abort(f"no workers responding for {self.empty_streak} rounds")
        if self.round >= self.cfg.rounds:
            self.done = True
            self.result = GcJobResult(self.job.job_id, self.round, to_wire_values(self.w, "f64"),
                                      tuple(self.history))
            return [Persist(self.checkpoint()), Deliver(self.result)]
        return self._open_round(now)

    def _abort(self, reason: str) -> list[Action]:
        self.open, self.done = False, True
        self.result = JobAbort(self.job.job_id, self.round, reason)
        actions: list[Action] = [Send(i, self.result) for i in range(self.n)]
        return actions + [Deliver(self.result)]
