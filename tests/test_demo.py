"""`hedgerow demo --quick` end to end: 4 real validators, a leader crash under grassroots load, a
Newton and a gradient-coded job over the transport to worker processes beside the validators (one a
straggler), the village script; exit 0, every part checked, and honest about where each part ran."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.multiprocess


def test_demo_quick_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hedgerow.node.cli", "demo", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + done.stdout[-3000:]
    report = json.loads(done.stdout)
    assert report["failures"] == []
    chain = report["chain"]
    assert chain["violations"] == [] and chain["acknowledged"] > 0
    assert [p["action"] for p in chain["perturbations"]] == ["kill", "restart"]
    assert all(p["ok"] for p in chain["perturbations"])
    assert report["village"]["violations"] == [] and report["village"]["error"] is None
    assert report["newton"]["delivered"] == 1
    assert report["gradcoding"]["final_loss"] < report["gradcoding"]["first_loss"]
    assert report["newton"]["served_by"] != "v0"  # v0's worker is the straggler: the job was reassigned
    assert report["gradcoding"]["rounds"] > 0 and report["gradcoding"]["stragglers_seen"] > 0
    for part in ("newton", "gradcoding"):
        assert "a worker process beside each validator" in report[part]["where"]
    assert "not on the testnet" in report["village"]["where"]
    assert report["wall_s"] < 180
