"""The invariant checker on plain data, as a testnet harness would feed it over RPC."""

from __future__ import annotations

from typing import Any

from hedgerow.testnet.invariants import InvariantChecker

STAKES = {v: 1 for v in "ABCD"}


def checker(**kwargs: Any) -> InvariantChecker:
    return InvariantChecker(stakes=STAKES, quorum=3, leader=lambda r: "ABCD"[r % 4], **kwargs)


def qc(block: str, round_: int, signers: str = "ABC") -> dict[str, Any]:
    return {"block_id": block, "round": round_, "signers": list(signers)}


def finalize(
    check: InvariantChecker, node: str, chain: list[tuple[str, int]], txs: list[str] | None = None
) -> None:
    parent = "genesis"
    for height, (block, round_) in enumerate(chain, start=1):
        check.finalized(
            node,
            height,
            block,
            parent if height > 1 else "genesis",
            round_,
            "ABCD"[round_ % 4],
            txs or [],
            [qc(parent, round_ - 1), qc(block, round_)],
            time_ms=100 * height,
        )
        parent = block


def kinds(check: InvariantChecker) -> list[str]:
    return [v.invariant for v in check.violations]


def test_identical_prefixes_pass_and_a_fork_is_an_agreement_violation() -> None:
    check = checker()
    for node in "ABC":
        finalize(check, node, [("b1", 1), ("b2", 2)])
    finalize(check, "D", [("b1", 1)])
    assert check.finish() == []
    forked = checker()
    finalize(forked, "C", [("b1", 1), ("x2", 2)])
    finalize(forked, "D", [("b1", 1), ("y2", 2)])
    assert kinds(forked) == ["agreement"]
    assert "C" in forked.violations[0].detail and "D" in forked.violations[0].detail


def test_a_finalized_block_is_never_reverted_or_replaced() -> None:
    check = checker()
    finalize(check, "A", [("b1", 1)])
    check.finalized("A", 1, "other", "genesis", 1, "B", [], [qc("genesis", 0), qc("other", 1)])
    check.spec_revert("A", "b1", "b1", 1, "B")
    assert kinds(check).count("no_revert") == 2


def test_speculative_revert_needs_equivocation_evidence_by_the_end() -> None:
    check = checker()
    check.voted("A", "b3", "b3", 3, "D", qc_round=3)
    check.spec_revert("A", "b3", "b3", 3, "D")
    assert [v.invariant for v in check.finish()] == ["speculative"]
    evidenced = checker()
    evidenced.spec_revert("A", "b3", "b3", 3, "D")
    evidenced.evidence("B", "EQUIVOCATION_HEADER", "D", 3)
    assert evidenced.finish() == []


def test_voted_needs_an_own_round_qc() -> None:
    check = checker()
    check.voted("A", "b3", "b3", 3, "D", qc_round=4)
    assert kinds(check) == ["speculative"]


def test_validity_and_ledger_digests() -> None:
    check = checker()
    check.submitted("t1")
    finalize(check, "A", [("b1", 1)], txs=["t1", "t9"])
    assert kinds(check) == ["validity"]
    dup = checker()
    for tx in ("t1", "t2"):
        dup.submitted(tx)
    finalize(dup, "A", [("b1", 1), ("b2", 2)], txs=["t1", "t2"])
    assert dup.duplicate_txs == 2 and dup.finish() == []


def test_commit_proofs_must_be_consecutive_and_quorate() -> None:
    check = checker()
    check.finalized("A", 1, "b1", "genesis", 1, "B", [], [qc("genesis", 0), qc("b2", 3)])
    check.finalized("B", 1, "b1", "genesis", 1, "B", [], [qc("genesis", 0), qc("b2", 1, signers="AB")])
    assert kinds(check) == ["justified", "justified"]
    verified = checker(qc_verifier=lambda q: q["round"] != 1)
    verified.finalized("A", 1, "b1", "genesis", 1, "B", [], [qc("genesis", 0), qc("b2", 1)])
    assert kinds(verified) == ["justified"]


def test_signer_safety_double_statements_and_ne_rules() -> None:
    check = checker()
    check.signed("A", "vote", 3, "x")
    check.signed("A", "vote", 3, "x")  # a re-send is fine
    check.signed("A", "vote", 3, "y")
    check.signed("B", "timeout", 3, (2, 0))
    check.signed("B", "timeout", 3, (2, 3))
    check.signed("C", "vote", 4, "t")
    check.signed("C", "ne", 4, 2, tip="u")
    check.signed("D", "vote", 3, "t")
    check.signed("D", "ne", 5, 2, tip="t")
    assert kinds(check) == ["signer_safety"] * 4
    exempt = checker(exempt_signers={"A"})
    exempt.signed("A", "vote", 3, "x")
    exempt.signed("A", "vote", 3, "y")
    assert exempt.violations == []


def test_rounds_and_reports_are_monotone() -> None:
    check = checker()
    check.round_entered("A", 5)
    check.round_entered("A", 4)
    check.timeout_sent("A", 6, (4, 1, 0), (5, 1, 0))
    assert kinds(check) == ["monotone_rounds", "monotone_reports"]


def test_tail_fork_resistance_a_quorum_voted_own_round_block_is_finalized() -> None:
    check = checker()
    for voter in "ABC":
        check.vote_seen(voter, "c2", 2, block_round=2)
    finalize(check, "A", [("b1", 1), ("x3", 3), ("b4", 4)])
    assert [v.invariant for v in check.finish()] == ["tail_fork"]  # c2 is not in the chain
    excused = checker()
    for voter in "ABC":
        excused.vote_seen(voter, "c2", 2, block_round=2)
    excused.evidence("A", "EQUIVOCATION_PROPOSAL", "C", 2)
    finalize(excused, "A", [("b1", 1), ("b4", 4)])
    assert excused.finish() == []  # leader(2) equivocated: no claim


def test_liveness_after_gst_bounds_the_gap_between_finalizations() -> None:
    check = checker()
    check.expect_liveness(["A"], from_ms=0, bound_ms=250)
    finalize(check, "A", [("b1", 1), ("b2", 2)])
    assert [v.invariant for v in check.finish(end_ms=1000)] == ["liveness"]
    strict = checker()
    strict.round_timer_fired("A", 7, 900, strict=False)
    strict.round_timer_fired("A", 8, 950, strict=True)
    assert kinds(strict) == ["liveness"]
