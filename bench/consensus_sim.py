"""MonadBFT under the seeded simulator, n = 4, 7, 16, 31 (DESIGN.md: benchmarks report ratios).

Per n it measures, in the same run:
- messages sent per finalized block on the happy path (and per block per peer: flat = linear);
- rounds lost per crashed leader (one validator never starts; spec: exactly one TC per its round);
- commit latency in message delays d (fixed link delay): proposal -> VOTED and -> FINALIZED,
  at the collectors (spec: 2d, 4d) and elsewhere (3d, 5d);
- core events/s: MonadCore calls per CPU second with every core verifying its own signatures (no
  shared memo), and commits per CPU second against the bound from the measured Ed25519 verify rate,
  bound = verify/s / (n * (Q + 2 + 2Q/n)) blocks/s for all n cores in one process (spec §10).

    python bench/consensus_sim.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.monadbft import Verifier
from hedgerow.testnet.sim.engine import Network, fixed_delay
from hedgerow.testnet.sim.monadbft_harness import MonadSim, Setup
from hedgerow.testnet.sim.monadbft_scenarios import base_setup
from hedgerow.testnet.sim.scenario_kit import LatencyProbe

DELAY_MS = 10
SIZES = (4, 7, 16, 31)
COUNTED_APART = ("TxMsg", "EvidenceMsg", "EvidenceQuery", "BlockRequest", "BlockResponse")  # spec §6.10


def verify_rate(samples: int = 2000) -> float:
    key = SigningKey.from_label("bench")
    message = b"m" * 120
    sig = key.sign_raw(message)
    started = time.process_time()  # CPU time, like the core timing (the machine may be shared)
    for _ in range(samples):
        key.public.verify_raw(sig, message)
    return samples / max(1e-9, time.process_time() - started)


def happy(n: int, rounds: int) -> dict[str, Any]:
    mon = MonadSim(1, base_setup(n))
    probe = LatencyProbe(mon)
    mon.start()
    mon.run_to_round(rounds)
    summary = mon.summary()
    voted = [t for row in probe.latencies(probe.voted, 3, rounds - 3) for t in row]
    final = [t for row in probe.latencies(probe.final, 3, rounds - 3) for t in row]
    blocks = max(1, summary["finalized"])
    consensus = sum(count for name, count in mon.sim.sent.items() if name not in COUNTED_APART)
    return {
        "finalized": summary["finalized"],
        "messages_per_block": round(consensus / blocks, 1),
        "messages_per_block_per_peer": round(consensus / blocks / (n - 1), 2),
        "voted_d": (min(voted) / DELAY_MS, max(voted) / DELAY_MS, statistics.median(voted) / DELAY_MS),
        "final_d": (min(final) / DELAY_MS, max(final) / DELAY_MS, statistics.median(final) / DELAY_MS),
    }


def crashed_leader(n: int, rounds: int) -> dict[str, Any]:
    setup = base_setup(n)
    setup.not_started.add(n - 1)
    mon = MonadSim(1, setup)
    mon.start()
    mon.run_to_round(rounds)
    crashed_rounds = [r for r in range(2, rounds) if mon.leader(r) == n - 1]
    tcs = [r for r in mon.tc_rounds if r < rounds]
    return {
        "crashed_leader_rounds": len(crashed_rounds),
        "tcs_per_crashed_round": round(len(tcs) / max(1, len(crashed_rounds)), 2),
        "reproposals": mon.summary()["reproposals"],
        "necs": mon.summary()["necs"],
    }


def throughput(n: int, rounds: int) -> dict[str, Any]:
    """Every core verifies for itself (as real nodes do); time only the core calls. The bound uses
    the verify rate measured right before and after, and the spec's verifies per node per block."""
    setup = Setup(n=n, params=base_setup(n).params, network=Network(delay=fixed_delay(DELAY_MS)))
    mon = MonadSim(2, setup)
    spent = [0.0]
    calls = [0]
    verifiers = []
    for node in mon.nodes:
        core = node.core
        private = Verifier()
        verifiers.append(private)
        core.verifier = private
        core.certs.verifier = private
        core.certs._ok = {}
        node.core = _Timed(core, spent, calls)
    rate_before = verify_rate(500)
    mon.start()
    mon.run_to_round(rounds)
    rate = (rate_before + verify_rate(500)) / 2
    finalized = max(1, mon.summary()["finalized"])
    quorum = mon.validators.quorum
    per_node = quorum + 2 + 2 * quorum / n
    bound = rate / (n * per_node)
    commits = finalized / spent[0]
    return {
        "core_events_per_s": round(calls[0] / spent[0]),
        "commits_per_cpu_s": round(commits, 1),
        "verify_per_s": round(rate),
        "verifies_per_node_block": round(sum(v.verifications for v in verifiers) / n / finalized, 1),
        "verifies_per_node_block_spec": round(per_node, 1),
        "bound_blocks_per_s": round(bound, 1),
        "efficiency": round(commits / bound, 2),
    }


class _Timed:
    """Wraps a core: counts calls and CPU time spent inside it."""

    def __init__(self, core: Any, spent: list[float], calls: list[int]) -> None:
        self.inner = core
        self.spent = spent
        self.calls = calls

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def _timed(self, method: str, *args: Any) -> Any:
        started = time.process_time()
        result = getattr(self.inner, method)(*args)
        self.spent[0] += time.process_time() - started
        self.calls[0] += 1
        return result

    def start(self, now: int) -> Any:
        return self._timed("start", now)

    def on_message(self, sender: int, message: object, now: int) -> Any:
        return self._timed("on_message", sender, message, now)

    def on_timer(self, timer: Any, now: int) -> Any:
        return self._timed("on_timer", timer, now)

    def submit_tx(self, tx: bytes, now: int) -> Any:
        return self._timed("submit_tx", tx, now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args(argv)
    from hedgerow.node.output import console, table

    rows: list[dict[str, Any]] = []
    for n in SIZES:
        scale = 1 if args.quick else 3
        happy_rounds = max(12, (60 if n <= 7 else 30 if n <= 16 else 16) * scale)
        row: dict[str, Any] = {"n": n, "f": (n - 1) // 3, "rounds": happy_rounds}
        row.update(happy(n, happy_rounds))
        row.update(crashed_leader(n, max(3 * n, 24) if not args.quick else max(2 * n + 3, 16)))
        row.update(throughput(n, max(6, (40 if n <= 7 else 12 if n <= 16 else 6) * scale)))
        row["q"] = (2 * n) // 3 + 1
        rows.append(row)
        console.print(f"n={n} done", style="dim")
    first = [
        (
            r["n"],
            r["f"],
            r["q"],
            r["messages_per_block"],
            r["messages_per_block_per_peer"],
            f"{r['voted_d'][0]:g}/{r['voted_d'][1]:g}",
            f"{r['final_d'][0]:g}/{r['final_d'][1]:g}",
            r["tcs_per_crashed_round"],
            r["reproposals"] + r["necs"],
        )
        for r in rows
    ]
    console.print(
        table(
            f"MonadBFT: messages, latency (d = {DELAY_MS} ms), crashed leader",
            ["n", "f", "Q", "msgs/block", "per peer", "VOTED d", "FINAL d", "TCs/crash", "reprop+NEC"],
            first,
        )
    )
    second = [
        (
            r["n"],
            r["core_events_per_s"],
            r["commits_per_cpu_s"],
            r["verifies_per_node_block"],
            r["verifies_per_node_block_spec"],
            r["bound_blocks_per_s"],
            r["efficiency"],
        )
        for r in rows
    ]
    console.print(
        table(
            "MonadBFT: pure core speed (one process, own verification per core)",
            ["n", "events/s", "commits/CPU s", "verif/node/blk", "spec", "bound blk/s", "effic."],
            second,
        )
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"delay_ms": DELAY_MS, "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
