"""MonadBFT unit tests with real Ed25519: ranks, thresholds, encoding, certificate checks (R1)."""

from __future__ import annotations

import pytest
from test_monadbft_kit import (
    CHAIN,
    KEYS,
    VALIDATORS,
    happy_chain,
    make_block,
    make_tc,
    make_tip,
    nec,
    no_tip_cert,
    proposal,
    qc,
    timeout,
    vote,
)

from hedgerow.protocols.crypto import sign_bytes
from hedgerow.protocols.monadbft import (
    GENESIS_QC,
    QC,
    TC,
    Checkpoint,
    NoTipCert,
    ValidatorSet,
    Verifier,
)
from hedgerow.protocols.monadbft.certificates import CertChecker, rank_info, rank_qc, rank_tip
from hedgerow.protocols.monadbft.leader import round_robin, stake_weighted
from hedgerow.protocols.monadbft.messages import FRAME_TYPES, TcGroup, statement_bytes
from hedgerow.protocols.wire import DecodeError, decode, encode


def checker() -> CertChecker:
    return CertChecker(VALIDATORS, CHAIN, round_robin(4), Verifier())


def tip_of(round_: int, parent_round: int):  # noqa: ANN201 - a Tip with the given rank inputs
    return make_tip(round_, qc(bytes([parent_round]) * 32, parent_round), height=1)


def test_rank_table() -> None:
    q1, q2 = qc(bytes(32), 1), qc(bytes(32), 2)
    assert rank_qc(q1) == rank_qc(qc(b"\x01" * 32, 1))
    assert rank_qc(q1) < rank_qc(q2)
    assert rank_tip(tip_of(1, 0)) < rank_tip(tip_of(2, 0))
    assert rank_tip(tip_of(3, 1)) < rank_tip(tip_of(3, 2))
    assert rank_tip(tip_of(1, 0)) < rank_qc(q1)
    assert rank_tip(tip_of(2, 0)) > rank_qc(q1)
    assert rank_info(1, 0) == rank_qc(q1) and rank_info(0, 2) == rank_tip(tip_of(2, 0))


@pytest.mark.parametrize("n, quorum, honest", [(4, 3, 2), (7, 5, 3), (10, 7, 4), (16, 11, 6)])
def test_quorum_and_honest_thresholds(n: int, quorum: int, honest: int) -> None:
    validators = ValidatorSet.equal([key.public for key in KEYS[:1]] * n)
    assert (validators.quorum, validators.honest, validators.f) == (quorum, honest, (n - 1) // 3)


def test_thresholds_with_unequal_stake() -> None:
    validators = ValidatorSet(tuple(key.public for key in KEYS[:4]), (4, 3, 2, 1))
    assert (validators.total, validators.quorum, validators.honest, validators.f) == (10, 7, 4, 3)
    assert validators.stake_of([0, 2, 3]) == 7


def test_stake_weighted_leaders_follow_stake() -> None:
    validators = ValidatorSet(tuple(key.public for key in KEYS[:4]), (4, 3, 2, 1))
    leader = stake_weighted(validators, CHAIN)
    counts = [0] * 4
    for r in range(1, 4001):
        counts[leader(r)] += 1
    assert [round(c / 40) for c in counts] == pytest.approx([40, 30, 20, 10], abs=4)
    assert leader(17) == stake_weighted(validators, CHAIN)(17)


def test_every_frame_round_trips_and_tc_differs_from_notipcert() -> None:
    blocks, qcs = happy_chain(3)
    tc = make_tc(4, {0: qcs[2], 1: qcs[2], 2: qcs[2]})
    frames = [
        proposal(3, blocks[2].tip, blocks[2].txs),
        vote(1, blocks[0].block_id, 1),
        timeout(1, 4, qcs[2]),
        no_tip_cert(tc),
        tc,
        nec(5, 3),
    ]
    for frame in frames:
        assert decode(encode(frame)) == frame
    ntc = no_tip_cert(tc)
    assert encode(ntc) != encode(TC(ntc.round, ntc.groups, ntc.high_extend))
    with pytest.raises(DecodeError):
        decode(encode(ntc), expected=TC)
    assert len(FRAME_TYPES) == 11


def test_statement_bytes_match_the_generic_sign_bytes() -> None:
    blocks, _ = happy_chain(2)
    for payload in ([b"\x00" * 32, 7], [3, 2, 0], [blocks[1].tip.block_id, 5, b""], []):
        assert statement_bytes("d", CHAIN, payload) == sign_bytes("d", CHAIN, payload)


def test_checkpoint_round_trips_and_validates() -> None:
    blocks, qcs = happy_chain(2)
    record = Checkpoint(
        2,
        0,
        None,
        1,
        0,
        blocks[0].block_id,
        blocks[1].tip,
        qcs[0],
        qcs[0],
        None,
        encode(vote(0, blocks[1].block_id, 2)),
        {2: blocks[1].block_id},
        {},
        (blocks[1],),
    )
    record.check()
    assert decode(encode(record)) == record
    bad = Checkpoint(2, 0, None, 1, 0, blocks[0].block_id, None, qcs[1], qcs[0], None, None, {}, {}, ())
    with pytest.raises(Exception, match="high_qc above high_cert"):
        bad.check()


# ---------------------------------------------------------------------------------------- R1
def test_qc_checks() -> None:
    certs = checker()
    blocks, qcs = happy_chain(1)
    assert certs.check_qc(qcs[0]) is None
    assert certs.check_qc(GENESIS_QC) is None
    assert certs.check_qc(QC(blocks[0].block_id, 0, (), ())) == "invalid_cert"
    assert certs.check_qc(qc(blocks[0].block_id, 1, (0, 1))) == "invalid_cert"  # stake < Q
    unsorted = QC(qcs[0].block_id, 1, (1, 0, 2), (qcs[0].sigs[1], qcs[0].sigs[0], qcs[0].sigs[2]))
    assert certs.check_qc(unsorted) == "invalid_cert"
    assert certs.check_qc(QC(qcs[0].block_id, 1, (0, 1, 9), qcs[0].sigs)) == "invalid_cert"
    swapped = QC(qcs[0].block_id, 1, qcs[0].signers, (qcs[0].sigs[1], qcs[0].sigs[0], qcs[0].sigs[2]))
    assert certs.check_qc(swapped) == "invalid_sig"


def _tc3() -> TC:
    blocks, qcs = happy_chain(2)
    return make_tc(3, {0: qcs[1], 1: qcs[1], 2: qcs[1]})


def test_tc_checks_accept_a_well_formed_tc() -> None:
    blocks, qcs = happy_chain(2)
    hidden = make_tip(3, qcs[1], height=3)
    tc = make_tc(3, {0: qcs[1], 1: qcs[1], 3: hidden})
    assert [g.key for g in tc.groups] == [(2, 0), (2, 3)]
    assert tc.high_extend == hidden
    assert checker().check_tc(tc) is None


@pytest.mark.parametrize(
    "mutation",
    [
        "unsorted",
        "duplicate_key",
        "hq_not_below_round",
        "tip_above_round",
        "signer_twice",
        "below_quorum",
        "bad_sig",
        "extend_not_max",
    ],
)
def test_tc_checks_reject(mutation: str) -> None:
    blocks, qcs = happy_chain(2)
    hidden = make_tip(3, qcs[1], height=3)
    tc = make_tc(3, {0: qcs[1], 1: qcs[1], 3: hidden})
    low, high = tc.groups
    groups = {
        "unsorted": (high, low),
        "duplicate_key": (low, TcGroup(2, 0, (3,), high.sigs)),
        "hq_not_below_round": (TcGroup(3, 0, low.signers, low.sigs), high),
        "tip_above_round": (low, TcGroup(2, 4, high.signers, high.sigs)),
        "signer_twice": (low, TcGroup(2, 3, (0,), high.sigs)),
        "below_quorum": (TcGroup(2, 0, (0,), low.sigs[:1]), high),
        "bad_sig": (TcGroup(2, 0, low.signers, (low.sigs[1], low.sigs[0])), high),
        "extend_not_max": tc.groups,
    }[mutation]
    extend = qcs[1] if mutation == "extend_not_max" else tc.high_extend
    assert checker().check_tc(TC(3, groups, extend)) in ("invalid_tc", "invalid_sig")


def test_tip_checks_fresh_cert_rules() -> None:
    certs = checker()
    blocks, qcs = happy_chain(2)
    assert certs.check_tip(blocks[1].tip) is None
    wrong_author = make_tip(3, qcs[1], height=3, author=0)
    assert certs.check_tip(wrong_author) == "invalid_sig"
    assert certs.check_tip(make_tip(4, qcs[1], height=3)) == "malformed_proposal"  # gap without a cert
    tc = make_tc(3, {0: qcs[1], 1: qcs[1], 2: qcs[1]})
    assert certs.check_tip(make_tip(4, qcs[1], height=3, fresh_cert=no_tip_cert(tc))) is None
    assert certs.check_tip(make_tip(4, qcs[1], height=3, fresh_cert=nec(4, 2))) is None
    assert certs.check_tip(make_tip(4, qcs[1], height=3, fresh_cert=nec(4, 1))) == "malformed_proposal"
    other = NoTipCert(3, tc.groups, qcs[0])
    assert certs.check_tip(make_tip(4, qcs[1], height=3, fresh_cert=other)) == "invalid_cert"
    assert certs.check_tip(make_tip(3, qcs[1], height=3, fresh_cert=nec(3, 2))) == "malformed_proposal"
    assert make_block(3, qcs[1], 3).block_id != make_block(3, qcs[1], 3, (b"x",)).block_id
