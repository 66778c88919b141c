"""Parallel Newton methods for sequential computation (spec `parallel-newton.md`).

DEER, quasi-DEER, ELK, quasi-ELK, Picard and Jacobi solve `s_t = f(s_{t-1}, u_t)` for a whole
trajectory at once, each iteration a linear recurrence solved by a parallel associative scan.
"""

from hedgerow.compute.newton.config import Method, NewtonConfig, NewtonResult
from hedgerow.compute.newton.coordinator import NewtonCoordinator, NewtonOutcome
from hedgerow.compute.newton.jobs import NewtonJob, NewtonReject, NewtonReply, serve
from hedgerow.compute.newton.lle import estimate_lle, linear_recurrence
from hedgerow.compute.newton.solver import newton_step, residual, solve, workspace_bytes

__all__ = [
    "Method",
    "NewtonConfig",
    "NewtonCoordinator",
    "NewtonJob",
    "NewtonOutcome",
    "NewtonReject",
    "NewtonReply",
    "NewtonResult",
    "serve",
    "estimate_lle",
    "linear_recurrence",
    "newton_step",
    "residual",
    "solve",
    "workspace_bytes",
]
