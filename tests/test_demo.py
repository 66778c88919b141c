"""`hedgerow demo --quick` end to end: 4 real validators, a leader crash under grassroots load, the
village script, the compute jobs; exit 0 and every part checked (and honest about where it ran)."""

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
    for part in ("newton", "gradcoding"):
        assert "NOT across the nodes" in report[part]["where"]
    assert report["wall_s"] < 180
