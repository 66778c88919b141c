"""Helpers of the dashboard's live tests."""

from __future__ import annotations

from pathlib import Path


def log_tails(directory: Path, lines: int = 8) -> str:
    """The last lines of every node's log (what a failed `testnet up` leaves behind)."""
    out = []
    for log in sorted(Path(directory).glob("*/data/logs/node.log")):
        out.append(f"== {log.parent.parent.parent.name}")
        out += log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(out)
