"""A compute job's progress log, `DIR/jobs/JOB.jsonl` under a testnet directory: one JSON object a
line, `{"job", "kind", "iteration", "residual" or "loss", "stragglers", "done"}`. `hedgerow job newton`
and `hedgerow job train` write it when they run against a testnet `--dir` (`node/job_client.py`);
the dashboard's collector reads it (`testnet/dashboard/sources.read_jobs`). A module of its own so
the node's job client writes it without importing the dashboard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JobLog:
    """Appends a compute job's progress to `DIR/jobs/JOB.jsonl` for the dashboard's jobs panel:

        log = JobLog(testnet_dir, "deer-1", "newton")
        log.point(iteration, residual=2.3e-7, stragglers=[3])
        log.point(iteration, residual=1e-12, done=True)
    """

    def __init__(self, directory: Path, job: str, kind: str) -> None:
        if not job or "/" in job or job.startswith("."):
            raise ValueError(f"bad job name {job!r}")
        self.job, self.kind = job, kind
        self.path = Path(directory) / "jobs" / f"{job}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def point(self, iteration: int, *, residual: float | None = None, loss: float | None = None,
              stragglers: list[int] | None = None, done: bool = False) -> None:
        record: dict[str, Any] = {"job": self.job, "kind": self.kind, "iteration": int(iteration),
                                  "stragglers": list(stragglers or []), "done": bool(done)}
        if residual is not None:
            record["residual"] = float(residual)
        if loss is not None:
            record["loss"] = float(loss)
        with open(self.path, "a") as out:
            out.write(json.dumps(record) + "\n")
