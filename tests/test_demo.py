"""`hedgerow demo --quick` end to end: 4 real validators, a leader crash under grassroots load, a
Newton job on the validators' compute workers (the first one it is sent to is killed holding it) and
a gradient-coded job on their GcWorkers (one validator paused for some rounds), the village script;
exit 0, every part checked, and honest about where each part ran."""

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
    newton, training = report["newton"], report["gradcoding"]
    assert newton["delivered"] == 1 and newton["status"] == "converged"
    assert newton["max_err_vs_seq"] <= 1e-8 and newton["iterations"] > 0
    assert len(newton["killed"]) == 1 and newton["served_by"] not in newton["killed"]  # reassigned
    assert training["final_loss"] < training["first_loss"] and training["final_gap"] is not None
    assert training["rounds"] > 0 and training["stragglers_seen"] > 0 and training["bits_uplink"] > 0
    assert len(training["paused"]) == 1
    for part in (newton, training):
        assert part["where"].startswith("the validators' compute-worker actors")
        assert "/jobs/" in part["job_log"]  # the dashboard's progress log
    assert "not on the testnet" in report["village"]["where"]
    assert report["wall_s"] < 180
