"""Wire messages of gradient-coded training (spec section 3), tags 100-119.

Deviations from the spec's sketch, forced by the typed codec (no free-form dicts or lists on the
wire): `data`/`model` are the typed `DataSpec`/`ModelSpec`, `history` is a tuple of `RoundRecord`,
and `CompressedVector` carries its `wire_dtype` so `nominal_bits(cv)` needs nothing else.
`validate()` checks only what a message can say about itself; everything that needs the job
(dimension, compressor, bit count) is checked by the coordinator, which counts it as `malformed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hedgerow.protocols.wire import message

COMPRESSOR_NAMES = ("identity", "topk", "randk", "sign")
VECTOR_KINDS = ("dense", "topk", "randk", "sign")
SCHEMES = ("frac", "cyclic_random", "cyclic_mds", "cyclic_ones")
MODES = ("exact", "stochastic")
WIRE_DTYPES = ("f32", "f64")
JOB_ID_BYTES = 16


@message(100)
@dataclass(frozen=True, slots=True)
class CompressorSpec:
    name: str  # "identity" | "topk" | "randk" | "sign"
    ratio: float = 0.05  # topk/randk: k = max(1, ceil(ratio*dim))
    shared_seed: bool = True  # randk: indices regenerated from the rng, no index bits sent

    def validate(self) -> None:
        if self.name not in COMPRESSOR_NAMES:
            raise ValueError(f"compressor: unknown name {self.name!r}")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"compressor: ratio {self.ratio} not in (0, 1]")


@message(101)
@dataclass(frozen=True, slots=True)
class DataSpec:
    kind: str  # "synthetic_logreg" | "gaussian_mixture"
    seed: int
    m: int  # samples per partition
    dim: int  # input dimension


@message(102)
@dataclass(frozen=True, slots=True)
class ModelSpec:
    kind: str  # "logreg" | "mlp"
    dim: int  # number of parameters
    l2: float = 0.0
    sizes: tuple[int, ...] = ()  # mlp layer widths, e.g. (64, 32, 10)


@message(103)
@dataclass(frozen=True, slots=True)
class GcJobSpec:
    """Sent to every worker once (and again on `NeedJob`); persisted by the coordinator."""

    job_id: bytes
    job_seed: int
    n: int
    s: int
    scheme: str
    mode: str
    code_seed: int
    support: tuple[tuple[int, ...], ...]
    coeffs: tuple[tuple[float, ...], ...]
    data: DataSpec
    model: ModelSpec
    compressor: CompressorSpec
    error_feedback: bool
    wire_dtype: str

    def validate(self) -> None:
        if len(self.job_id) != JOB_ID_BYTES:
            raise ValueError("job_id must be 16 bytes")
        if not 0 <= self.s < self.n:
            raise ValueError(f"s={self.s} not in 0..n-1 (n={self.n})")
        if self.scheme not in SCHEMES or self.mode not in MODES or self.wire_dtype not in WIRE_DTYPES:
            raise ValueError("unknown scheme, mode or wire_dtype")
        if len(self.support) != self.n or len(self.coeffs) != self.n:
            raise ValueError("support/coeffs must have n rows")
        for row, coeff in zip(self.support, self.coeffs, strict=True):
            if len(row) != len(coeff) or any(not 0 <= j < self.n for j in row):
                raise ValueError("bad support row")


@message(104)
@dataclass(frozen=True, slots=True)
class GradRequest:
    job_id: bytes
    round: int
    weights: bytes  # model, little-endian wire_dtype
    accepted_round: int  # last round whose reply from THIS worker was aggregated; -1 if none
    ef_scale: float = 1.0  # eta_{t-1}/eta_t, multiplied into the worker's memory


@message(105)
@dataclass(frozen=True, slots=True)
class CompressedVector:
    kind: str  # "dense" | "topk" | "randk" | "sign"
    dim: int
    values: bytes  # dense: dim values; topk/randk: k values; sign: empty
    indices: bytes  # topk (randk if not shared_seed): k x uint32 little-endian, strictly increasing
    scale: float  # sign: common magnitude, else 0.0
    signbits: bytes  # sign: np.packbits(u >= 0, bitorder="little"), ceil(dim/8) bytes
    wire_dtype: str = "f32"  # width of `values` and `scale`


@message(106)
@dataclass(frozen=True, slots=True)
class GradReply:
    job_id: bytes
    round: int
    worker: int
    payload: CompressedVector
    bits: int  # nominal uplink bits (5.6); recomputed and checked by the coordinator
    compute_s: float  # metrics only
    memory_epoch: int  # +1 per EF memory reset (restart)


@message(107)
@dataclass(frozen=True, slots=True)
class RoundRecord:
    round: int
    responders: tuple[int, ...]  # the replies aggregated
    late: int  # late replies that arrived while this round was open
    bits_used: int
    bits_sent: int
    bytes_wire: int
    fallback: str  # "" | "approx" | "skip" | "stochastic" | "empty"
    residual: float


@message(108)
@dataclass(frozen=True, slots=True)
class GcJobResult:
    job_id: bytes
    rounds: int
    weights: bytes  # float64 little-endian
    history: tuple[RoundRecord, ...]


@message(109)
@dataclass(frozen=True, slots=True)
class JobAbort:
    job_id: bytes
    round: int
    reason: str


@message(110)
@dataclass(frozen=True, slots=True)
class GcCheckpoint:
    job_id: bytes
    round: int  # the round to resume at
    weights: bytes  # float64 little-endian
    accepted_round: tuple[int, ...]
    p_hat: float


@message(111)
@dataclass(frozen=True, slots=True)
class EfMemory:
    job_id: bytes
    round: int
    memory: bytes  # float64 little-endian


@message(112)
@dataclass(frozen=True, slots=True)
class NeedJob:
    """A worker got a request for a job it does not know (it restarted): please resend the spec."""

    job_id: bytes
    worker: int
