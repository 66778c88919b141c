"""Gradient coding with COCO-EF: straggler-tolerant, compressed distributed training.

Spec: `../shared/specs/gradient-coding.md`. The pure API of section 5 lives here (numpy float64);
`GcCoordinator` / `GcWorker` are the sans-IO cores, `GcSim` the seeded simulator, and
`hedgerow.compute.gradcoding.driver` runs COCO-EF and its baselines.
"""

from __future__ import annotations

from hedgerow.compute.gradcoding.codes import (
    ConfigError,
    DecodeError,
    aggregate,
    approx_decode_weights,
    assignment,
    decode_weights,
    encode,
    encoding_matrix,
    stochastic_weights,
)
from hedgerow.compute.gradcoding.compress import compress, decompress, ef_step, nominal_bits
from hedgerow.compute.gradcoding.coordinator import GcConfig, GcCoordinator
from hedgerow.compute.gradcoding.messages import (
    CompressedVector,
    CompressorSpec,
    DataSpec,
    EfMemory,
    GcCheckpoint,
    GcJobResult,
    GcJobSpec,
    GradReply,
    GradRequest,
    JobAbort,
    ModelSpec,
    NeedJob,
    RoundRecord,
)
from hedgerow.compute.gradcoding.sim import GcSim, SimConfig, SimResult
from hedgerow.compute.gradcoding.worker import GcWorker

__all__ = [
    "CompressedVector", "CompressorSpec", "ConfigError", "DataSpec", "DecodeError", "EfMemory",
    "GcCheckpoint", "GcConfig", "GcCoordinator", "GcJobResult", "GcJobSpec", "GcSim", "GcWorker",
    "GradReply", "GradRequest", "JobAbort", "ModelSpec", "NeedJob", "RoundRecord", "SimConfig", "SimResult",
    "aggregate", "approx_decode_weights", "assignment", "compress", "decode_weights", "decompress",
    "ef_step", "encode", "encoding_matrix", "nominal_bits", "stochastic_weights",
]
