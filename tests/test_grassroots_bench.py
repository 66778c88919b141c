"""The ledger benchmark as a replay check: record a seeded workload, replay every committed tx from
genesis reaching the recorded app_hash at every height (5k txs in CI, 100k slow-marked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "ledger.py"


def run_bench(tmp_path: Path, txs: int) -> dict[str, float]:
    out = tmp_path / "ledger.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--txs", str(txs), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures: dict[str, float] = json.loads(out.read_text())
    return figures


def test_replay_of_5k_committed_txs(tmp_path: Path) -> None:
    figures = run_bench(tmp_path, 5_000)
    assert figures["txs"] == 5_000 and figures["invariant_violations"] == 0
    assert figures["ok_share"] > 0.9  # a mostly valid workload: the benchmark measures real work
    for name in (
        "decode_us_per_tx",
        "verify_us_per_tx",
        "apply_us_per_tx",
        "app_hash_ms_per_block",
        "end_to_end_tx_per_s",
        "ed25519_verify_per_s",
    ):
        assert figures[name] > 0


@pytest.mark.slow
def test_replay_of_100k_committed_txs_under_a_minute(tmp_path: Path) -> None:
    figures = run_bench(tmp_path, 100_000)
    assert figures["invariant_violations"] == 0
    assert figures["replay_s"] < 60  # spec 10 target, process CPU time on one core
