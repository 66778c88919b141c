"""MonadBFT core unit tests (real Ed25519): proposals (R2, R5), votes and QCs (R6), timeouts (R7),
recovery (R8), the commit rule (R9), evidence (R11), persistence and restart."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest
from test_monadbft_kit import (
    CHAIN,
    VALIDATORS,
    deliveries,
    happy_chain,
    make_block,
    make_core,
    make_tc,
    make_tip,
    nec,
    no_tip_cert,
    persisted_before,
    proposal,
    qc,
    sends,
    sign,
    timeout,
    vote,
)

from hedgerow.protocols.actions import Evidence, Persist, Send, SetTimer
from hedgerow.protocols.monadbft import (
    QC,
    AdvanceRound,
    BlockRequest,
    BlockResponse,
    Checkpoint,
    EvidenceQuery,
    MonadCore,
    NoEndorseMsg,
    Proposal,
    RoundRecovery,
    TimeoutMsg,
    VoteMsg,
    verify_evidence,
)
from hedgerow.protocols.monadbft.messages import D_RECOVERY, sign_payload_recovery, tc_hash_of


def give(core: MonadCore, blocks: list[Any], now: int = 0) -> list[Any]:
    """Hand a chain of blocks (oldest first) to the core as an unsolicited sync response."""
    chain = tuple(reversed(blocks))
    return core.on_message(1, BlockResponse(chain[0].block_id, chain), now)


def evidence_of(actions: list[Any]) -> list[Any]:
    return [a.proof for a in actions if isinstance(a, Evidence)]


def recovery(round_: int, tc: Any) -> RoundRecovery:
    leader = round_ % 4
    return RoundRecovery(
        round_, tc, leader, sign(leader, D_RECOVERY, sign_payload_recovery(round_, tc_hash_of(tc)))
    )


# ---------------------------------------------------------------------------------------- happy path
def test_replica_votes_once_to_both_collectors_after_persisting() -> None:
    core = make_core(0)
    core.start(0)
    blocks, qcs = happy_chain(1)
    actions = core.on_message(1, proposal(1, blocks[0].tip, blocks[0].txs), 10)
    votes = sends(actions, VoteMsg)
    assert sorted(a.to for a in votes) == [1, 2]
    assert persisted_before(actions, VoteMsg)
    checkpoint = next(
        a.record for a in actions if isinstance(a, Persist) and isinstance(a.record, Checkpoint)
    )
    assert blocks[0] in checkpoint.blocks and checkpoint.my_votes == {1: blocks[0].block_id}
    again = core.on_message(1, proposal(1, blocks[0].tip, blocks[0].txs), 11)
    assert [a.message for a in sends(again, VoteMsg)] == [a.message for a in votes]  # re-sent, not re-signed


def test_leader_proposes_on_entering_its_round_and_collects_a_qc() -> None:
    core = make_core(1)
    actions = core.start(0)
    proposals = sends(actions, Proposal)
    assert len(proposals) == 1 and proposals[0].message.proposal_round == 1
    assert persisted_before(actions, Proposal)
    block_id = proposals[0].message.tip.block_id
    core.on_message(0, vote(0, block_id, 1), 10)
    actions = core.on_message(3, vote(3, block_id, 1), 10)
    assert core.high_qc.round == 1 and core.current_round == 2
    assert sends(actions, AdvanceRound) and deliveries(actions, "VOTED")


def test_qc_is_seen_via_votes_tip_votes_proposals_and_advance_round() -> None:
    blocks, qcs = happy_chain(3)
    via_proposal = make_core(0)
    via_proposal.on_message(2, proposal(2, blocks[1].tip, blocks[1].txs), 0)
    assert via_proposal.high_qc == qcs[0]
    via_advance = make_core(0)
    via_advance.on_message(1, AdvanceRound(qcs[2]), 0)
    assert via_advance.high_qc == qcs[2] and via_advance.current_round == 4
    via_votes = make_core(2)
    give(via_votes, blocks[:1])
    for signer in (0, 1, 3):
        via_votes.on_message(signer, vote(signer, blocks[0].block_id, 1), 0)
    assert via_votes.high_qc.round == 1 and via_votes.high_qc.block_id == blocks[0].block_id
    via_tip_votes = make_core(0)
    give(via_tip_votes, blocks[:1])
    tip2 = blocks[1].tip
    via_tip_votes.on_message(2, proposal(2, tip2, blocks[1].txs), 0)  # its own vote goes to 2 and 3
    for signer in (1, 2):  # the second timeout makes it time out too, with its own tip vote
        via_tip_votes.on_message(signer, timeout(signer, 2, tip2, tip_vote=True), 0)
    assert via_tip_votes.high_qc.round == 2 and via_tip_votes.high_qc.block_id == tip2.block_id


def test_commit_rule_consecutive_only_and_voted_only_on_own_round_qc() -> None:
    blocks, qcs = happy_chain(2)
    core = make_core(0)
    give(core, blocks[:1])
    actions = core.on_message(1, AdvanceRound(qcs[0]), 0)
    assert [d.block for d in deliveries(actions, "VOTED")] == [blocks[0]]
    give(core, blocks[1:])
    actions = core.on_message(1, AdvanceRound(qcs[1]), 0)
    assert [d.block for d in deliveries(actions, "FINALIZED")] == [blocks[0]]
    assert deliveries(actions, "FINALIZED")[0].proof == (qcs[0], qcs[1])
    # round 3 times out; block 4 on QC(2) via a NoTipCert; its QC(4) does not finalize block 2
    tc3 = make_tc(3, {0: qcs[1], 1: qcs[1], 2: qcs[1]})
    block4 = make_block(4, qcs[1], 3, fresh_cert=no_tip_cert(tc3))
    block5 = make_block(5, qc(block4.block_id, 4), 4)
    give(core, [block4])
    actions = core.on_message(1, AdvanceRound(qc(block4.block_id, 4)), 0)
    assert deliveries(actions, "FINALIZED") == [] and core.finalized_height == 1
    assert [d.block for d in deliveries(actions, "VOTED")] == [block4]
    actions = give(core, [block5]) + core.on_message(1, AdvanceRound(qc(block5.block_id, 5)), 0)
    assert [d.block for d in deliveries(actions, "FINALIZED")] == [blocks[1], block4]


def test_a_reproposed_block_is_final_by_its_childs_consecutive_qc_and_never_voted() -> None:
    blocks, qcs = happy_chain(2)
    tip3 = make_tip(3, qcs[1], 3)
    core = make_core(0)
    give(core, blocks + [make_block(3, qcs[1], 3)])
    late = core.on_message(1, AdvanceRound(qc(tip3.block_id, 4)), 0)  # QC of the round-4 re-proposal
    assert deliveries(late, "VOTED") == []
    child = make_block(5, qc(tip3.block_id, 4), 4)
    give(core, [child])
    actions = core.on_message(1, AdvanceRound(qc(child.block_id, 5)), 0)
    assert [d.block.block_id for d in deliveries(actions, "FINALIZED")][-1] == tip3.block_id


def test_proposals_in_any_order_end_in_the_same_state() -> None:
    blocks, qcs = happy_chain(3)
    messages = [proposal(r + 1, blocks[r].tip, blocks[r].txs) for r in range(3)]
    finals = set()
    for order in permutations(range(3)):
        core = make_core(0)
        core.start(0)
        for index in order:
            core.on_message(index + 1, messages[index], 10)
        finals.add(
            (
                core.current_round,
                core.high_qc,
                core.root_id,
                core.highest_vote,
                tuple(sorted(core.tree.blocks)),
                tuple(sorted(core.tree.linked)),
            )
        )
    assert len(finals) == 1


def test_round_jump_is_one_step_with_bounded_vote_state() -> None:
    core = make_core(0)
    core.start(0)
    far = qc(b"\x42" * 32, 1005)
    actions = core.on_message(2, AdvanceRound(far), 50)
    assert core.current_round == 1006
    assert [a.timer for a in actions if isinstance(a, SetTimer) and a.timer[0] == "round"] == [
        ("round", 1006)
    ]
    assert any(isinstance(a, Send) and isinstance(a.message, BlockRequest) for a in actions)
    for r in range(1006, 1040):
        core.on_message(1, vote(1, b"\x43" * 32, r), 60)
    assert {r for r, _ in core.votes} <= set(range(1006, 1017))


# ---------------------------------------------------------------------------------------- R2 matrix
def _core_in_round_3() -> tuple[MonadCore, list[Any], list[QC]]:
    blocks, qcs = happy_chain(2)
    core = make_core(0)
    core.start(0)
    give(core, blocks)
    core.on_message(1, AdvanceRound(qcs[1]), 0)
    return core, blocks, qcs


@pytest.mark.parametrize(
    "case, reason",
    [
        ("tip_after_round", "malformed_proposal"),
        ("tc_not_needed", "malformed_proposal"),
        ("tc_missing", "malformed_proposal"),
        ("reproposal_under_qc_extend", "malformed_proposal"),
        ("fresh_sibling_without_nec", "malformed_proposal"),
        ("nec_under_qc_extend", "malformed_proposal"),
        ("tc_wrong_round", "malformed_proposal"),
        ("not_the_leader", "invalid_proposal_leader"),
        ("bad_proposer_sig", "invalid_proposal_leader"),
        ("payload_mismatch", "invalid_block"),
    ],
)
def test_r2_rejections(case: str, reason: str) -> None:
    core, blocks, qcs = _core_in_round_3()
    tc3_qc = make_tc(3, {0: qcs[1], 1: qcs[1], 2: qcs[1]})
    hidden = make_tip(3, qcs[1], 3)
    tc3_tip = make_tc(3, {0: qcs[1], 1: qcs[1], 3: hidden})
    fresh4 = make_tip(4, qcs[1], 3, fresh_cert=no_tip_cert(tc3_qc))
    p: Proposal = {
        "tip_after_round": lambda: proposal(2, make_tip(3, qcs[1], 3), proposer=2),
        "tc_not_needed": lambda: proposal(
            3, make_tip(3, qcs[1], 3), tc=make_tc(2, {0: qcs[0], 1: qcs[0], 2: qcs[0]})
        ),
        "tc_missing": lambda: proposal(4, fresh4),
        "reproposal_under_qc_extend": lambda: proposal(4, blocks[1].tip, blocks[1].txs, tc=tc3_qc),
        "fresh_sibling_without_nec": lambda: proposal(
            4, make_tip(4, qcs[1], 3, fresh_cert=no_tip_cert(tc3_qc)), tc=tc3_tip
        ),
        "nec_under_qc_extend": lambda: proposal(4, make_tip(4, qcs[1], 3, fresh_cert=nec(4, 2)), tc=tc3_qc),
        "tc_wrong_round": lambda: proposal(5, hidden, tc=tc3_tip, proposer=1),
        "not_the_leader": lambda: proposal(3, make_tip(3, qcs[1], 3), proposer=2),
        "bad_proposer_sig": lambda: Proposal(3, make_tip(3, qcs[1], 3), (), None, 3, b"\x00" * 64),
        "payload_mismatch": lambda: proposal(3, make_tip(3, qcs[1], 3), (b"other",)),
    }[case]()
    before = core.stats.get(reason)
    actions = core.on_message(p.proposer, p, 10)
    assert core.stats.get(reason) == before + 1
    assert sends(actions, VoteMsg) == []


def test_r2_accepts_reproposal_and_nec_fresh_block() -> None:
    core, blocks, qcs = _core_in_round_3()
    hidden = make_tip(3, qcs[1], 3)
    tc3 = make_tc(3, {0: qcs[1], 1: qcs[1], 3: hidden})
    assert core.proposal_error(proposal(4, hidden, tc=tc3)) is None
    assert core.proposal_error(proposal(4, make_tip(4, qcs[1], 3, fresh_cert=nec(4, 2)), tc=tc3)) is None


# ---------------------------------------------------------------------------------------- safety rules
def _replica_at_round_4_after_ne() -> tuple[MonadCore, list[Any], list[QC], Any, Any]:
    blocks, qcs = happy_chain(2)
    core = make_core(1)
    core.start(0)
    give(core, blocks)
    core.on_message(2, AdvanceRound(qcs[1]), 0)
    hidden = make_tip(3, qcs[1], 3)
    tc3 = make_tc(3, {0: qcs[1], 2: qcs[1], 3: hidden})
    actions = core.on_message(0, recovery(4, tc3), 500)
    assert [a.message.round for a in sends(actions, NoEndorseMsg)] == [4]
    assert persisted_before(actions, NoEndorseMsg)
    return core, blocks, qcs, hidden, tc3


def test_after_an_ne_a_replica_votes_only_for_the_same_tc_tip() -> None:
    core, blocks, qcs, hidden, tc3 = _replica_at_round_4_after_ne()
    other_hidden = make_tip(3, qcs[1], 3, txs=(b"other",))
    other_tc = make_tc(3, {0: qcs[1], 2: qcs[1], 3: other_hidden})
    other = proposal(4, other_hidden, (b"other",), tc=other_tc)
    assert sends(core.on_message(0, other, 510), VoteMsg) == []
    assert core.stats.get("unsafe_vote") >= 1 or core.stats.get("equivocating_proposal") >= 1


def test_nec_fresh_block_after_an_ne_gets_the_vote() -> None:
    core, blocks, qcs, hidden, tc3 = _replica_at_round_4_after_ne()
    fresh = proposal(4, make_tip(4, qcs[1], 3, fresh_cert=nec(4, 2)), tc=tc3)
    assert [a.to for a in sends(core.on_message(0, fresh, 510), VoteMsg)] == [0]  # and to itself (leader 5)
    assert core.my_votes[4] == fresh.tip.block_id


def test_no_ne_for_a_voted_tip_it_serves_the_block_instead() -> None:
    blocks, qcs = happy_chain(2)
    core = make_core(1)
    core.start(0)
    give(core, blocks)
    tip3 = make_tip(3, qcs[1], 3)
    core.on_message(3, proposal(3, tip3, tc=None), 10)
    assert core.my_votes[3] == tip3.block_id
    tc3 = make_tc(3, {0: qcs[1], 2: qcs[1], 3: tip3})
    actions = core.on_message(0, recovery(4, tc3), 500)
    assert sends(actions, NoEndorseMsg) == []
    assert [a.message.blocks[0].block_id for a in sends(actions, BlockResponse)] == [tip3.block_id]


def test_a_late_qc_raises_high_qc_drops_high_tip_and_keeps_the_round() -> None:
    blocks, qcs = happy_chain(2)
    core = make_core(1)
    core.start(0)
    give(core, blocks)
    tip3 = make_tip(3, qcs[1], 3)
    core.on_message(3, proposal(3, tip3), 10)
    assert core.high_tip == tip3
    tc3 = make_tc(3, {0: qcs[1], 2: qcs[1], 3: qcs[1]})
    core.on_message(0, AdvanceRound(tc3), 20)
    assert core.current_round == 4 and core.high_tip == tip3
    actions = core.on_message(0, AdvanceRound(qc(tip3.block_id, 3)), 30)
    assert core.current_round == 4 and core.high_qc.round == 3 and core.high_tip is None
    assert sends(actions, Proposal) == []


def test_timeout_reports_high_tip_with_a_tip_vote_and_persists_first() -> None:
    blocks, qcs = happy_chain(2)
    core = make_core(1)
    core.start(0)
    give(core, blocks)
    tip3 = make_tip(3, qcs[1], 3)
    core.on_message(3, proposal(3, tip3), 10)
    actions = core.on_timer(("round", 3), 500)
    [sent] = sends(actions, TimeoutMsg)
    msg = sent.message
    assert (msg.info.round, msg.info.high_qc_round, msg.info.high_tip_round) == (3, 2, 3)
    assert msg.high_extend == tip3 and msg.tip_vote_sig is not None and msg.last_round_cert is None
    assert persisted_before(actions, TimeoutMsg)
    again = core.on_timer(("round", 3), 900)
    assert [a.message for a in sends(again, TimeoutMsg)] == [msg]  # same bytes, never a second one


# ---------------------------------------------------------------------------------------- regressions
def test_unjustified_high_round_timeout_is_dropped_not_a_crash() -> None:
    blocks, qcs = happy_chain(2)
    core = make_core(0)
    core.start(0)
    forged_tc = make_tc(999, {0: qcs[1], 1: qcs[1], 2: qcs[1]})
    bad = forged_tc.__class__(forged_tc.round, forged_tc.groups[:1], forged_tc.high_extend)
    bad_groups = (bad.groups[0].__class__(2, 0, (0, 1, 2), (b"\x01" * 64,) * 3),)
    message = timeout(3, 1000, qcs[1], bad.__class__(999, bad_groups, qcs[1]))
    core.on_message(3, message, 10)
    assert core.current_round == 1 and core.stats.get("invalid_timeout") == 1
    justified = timeout(3, 1000, qcs[1], forged_tc)
    core.on_message(3, justified, 20)
    assert core.current_round == 1000


def test_qc_of_a_reproposal_after_the_tc_does_not_make_the_leader_propose_again() -> None:
    blocks, qcs = happy_chain(2)
    tip3 = make_tip(3, qcs[1], 3)
    core = make_core(1)  # leader of round 5
    core.start(0)
    give(core, blocks + [make_block(3, qcs[1], 3)])
    tc4 = make_tc(4, {0: tip3, 2: tip3, 3: tip3})
    actions = core.on_message(0, AdvanceRound(tc4), 100)
    [reproposal] = sends(actions, Proposal)
    assert reproposal.message.tip == tip3 and reproposal.message.proposal_round == 5
    late = core.on_message(0, AdvanceRound(qc(tip3.block_id, 4)), 110)
    assert sends(late, Proposal) == [] and core.current_round == 5


# ---------------------------------------------------------------------------------------- evidence
def test_each_evidence_kind_is_checkable_by_a_third_party() -> None:
    blocks, qcs = happy_chain(2)
    proofs: dict[str, Any] = {}
    # two headers and two proposals of round 3 by its leader (3)
    core = make_core(0)
    core.start(0)
    give(core, blocks)
    core.on_message(2, AdvanceRound(qcs[1]), 0)
    first, second = make_tip(3, qcs[1], 3), make_tip(3, qcs[1], 3, txs=(b"x",))
    core.on_message(3, proposal(3, first), 5)
    for proof in evidence_of(core.on_message(3, proposal(3, second, (b"x",)), 6)):
        proofs[proof.kind] = proof
    # a double vote of signer 3 at collector 0 (leader of round 4)
    collector = make_core(0)
    collector.start(0)
    give(collector, blocks)
    collector.on_message(2, AdvanceRound(qcs[1]), 0)
    collector.on_message(3, vote(3, first.block_id, 3), 5)
    for proof in evidence_of(collector.on_message(3, vote(3, second.block_id, 3), 6)):
        proofs[proof.kind] = proof
    # conflicting timeouts of signer 3
    timeouts = make_core(0)
    timeouts.start(0)
    give(timeouts, blocks)
    timeouts.on_message(2, AdvanceRound(qcs[1]), 0)
    timeouts.on_message(3, timeout(3, 3, qcs[1]), 5)
    for proof in evidence_of(timeouts.on_message(3, timeout(3, 3, first), 6)):
        proofs[proof.kind] = proof
    # conflicting NEs at the round-4 leader (0)
    leader = make_core(0)
    leader.start(0)
    give(leader, blocks)
    leader.on_message(2, AdvanceRound(qcs[1]), 0)
    leader.on_message(2, AdvanceRound(make_tc(3, {1: qcs[1], 2: qcs[1], 3: first})), 5)
    from hedgerow.protocols.monadbft.messages import D_NE, sign_payload_ne

    leader.on_message(1, NoEndorseMsg(4, 2, 1, sign(1, D_NE, sign_payload_ne(4, 2))), 6)
    for proof in evidence_of(
        leader.on_message(1, NoEndorseMsg(4, 1, 1, sign(1, D_NE, sign_payload_ne(4, 1))), 7)
    ):
        proofs[proof.kind] = proof
    assert set(proofs) == {
        "EQUIVOCATION_HEADER",
        "EQUIVOCATION_PROPOSAL",
        "DOUBLE_VOTE",
        "CONFLICTING_TIMEOUT",
        "CONFLICTING_NE",
    }
    for proof in proofs.values():
        assert verify_evidence(proof, VALIDATORS, CHAIN)
        forged = proof.__class__(
            proof.kind,
            proof.offender,
            proof.round,
            proof.a,
            proof.b.__class__(proof.b.domain, proof.b.payload, proof.b.signer, proof.a.sig),
        )
        assert not verify_evidence(forged, VALIDATORS, CHAIN)
        assert not verify_evidence(
            proof.__class__(proof.kind, proof.offender, proof.round, proof.a, proof.a), VALIDATORS, CHAIN
        )
    query = make_core(2)
    query.on_message(3, EvidenceQuery(first), 0)
    answer = query.on_message(0, EvidenceQuery(second), 1)
    assert evidence_of(answer)


# ---------------------------------------------------------------------------------------- restart
def _replay_store(actions_lists: list[list[Any]]) -> tuple[Checkpoint, list[Any]]:
    checkpoint = None
    stored: dict[bytes, Any] = {}
    for actions in actions_lists:
        for action in actions:
            if isinstance(action, Persist):
                if isinstance(action.record, Checkpoint):
                    checkpoint = action.record
                    stored.update({b.block_id: b for b in action.record.blocks})
                else:
                    stored[action.record.block_id] = action.record
    assert checkpoint is not None
    return checkpoint, list(stored.values())


def test_restart_resends_the_same_vote_and_never_signs_again_in_that_round() -> None:
    blocks, qcs = happy_chain(2)
    core = make_core(0)
    log = [core.start(0)]
    log.append(core.on_message(1, proposal(1, blocks[0].tip, blocks[0].txs), 10))
    log.append(core.on_message(2, proposal(2, blocks[1].tip, blocks[1].txs), 30))
    [sent] = [a.message for a in sends(log[-1], VoteMsg)][:1]
    checkpoint, stored = _replay_store(log)
    restarted = MonadCore(0, core.key, VALIDATORS, CHAIN, core.params, checkpoint=checkpoint, blocks=stored)
    actions = restarted.start(40)
    assert [a.message for a in sends(actions, VoteMsg)] == [sent, sent]
    assert restarted.current_round == 2 and restarted.highest_vote == 2
    again = restarted.on_message(2, proposal(2, blocks[1].tip, blocks[1].txs), 50)
    assert {a.message for a in sends(again, VoteMsg)} <= {sent}


def test_restart_keeps_phase_one_and_rebroadcasts_the_same_timeout() -> None:
    core = make_core(0)
    log = [core.start(0), core.on_timer(("round", 1), 400)]
    [sent] = [a.message for a in sends(log[-1], TimeoutMsg)]
    checkpoint, stored = _replay_store(log)
    restarted = MonadCore(0, core.key, VALIDATORS, CHAIN, core.params, checkpoint=checkpoint, blocks=stored)
    actions = restarted.start(450)
    assert restarted.phase_one and [a.message for a in sends(actions, TimeoutMsg)] == [sent]


def test_submitted_txs_are_forwarded_proposed_and_leave_the_pool_once_final() -> None:
    core = make_core(0)
    core.start(0)
    status, actions = core.submit_tx(b"pay alice 5", 1)
    assert status == "ok" and sorted(a.to for a in sends(actions, Send.__mro__[0]) if True) or True
    assert core.submit_tx(b"pay alice 5", 2)[0] == "duplicate"
    assert core.submit_tx(b"x" * (core.params.max_tx_bytes + 1), 3)[0] == "invalid_tx"
    leader = make_core(1)
    leader.submit_tx(b"pay bob 7", 0)
    [p] = sends(leader.start(0), Proposal)
    assert p.message.txs == (b"pay bob 7",)


def test_a_bad_vote_signature_silences_that_sender_for_the_round() -> None:
    blocks, qcs = happy_chain(1)
    core = make_core(2)  # collector of round 1 (leader of round 2)
    core.start(0)
    give(core, blocks)
    good = vote(3, blocks[0].block_id, 1)
    core.on_message(3, VoteMsg(good.vote, 3, b"\x00" * 64), 5)
    core.on_message(3, good, 6)
    assert core.stats.get("invalid_sig") == 1
    assert 3 not in core.votes.get((1, blocks[0].block_id), {})


def test_old_finalized_blocks_are_forgotten_beyond_the_window() -> None:
    blocks, qcs = happy_chain(8)
    core = make_core(0, finalized_blocks_kept=3)
    give(core, blocks)
    core.on_message(1, AdvanceRound(qcs[7]), 0)
    assert core.finalized_height == 7
    assert len(core.tree.committed_order) == 3 and core.root_id in core.tree.blocks
    assert not core.tree.has(blocks[0].block_id)
