"""Builders for MonadBFT unit tests: real Ed25519 keys, signed votes, QCs, tips, TCs, proposals."""

from __future__ import annotations

from typing import Any

from hedgerow.protocols.actions import Broadcast, Persist, Send
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.monadbft import (
    GENESIS_QC,
    NEC,
    QC,
    TC,
    Block,
    Checkpoint,
    Header,
    MonadCore,
    NoTipCert,
    Params,
    Proposal,
    TimeoutMsg,
    Tip,
    ValidatorSet,
    Vote,
    VoteMsg,
    build_tc,
)
from hedgerow.protocols.monadbft.messages import (
    D_NE,
    D_PROPOSAL,
    D_TIP,
    D_VOTE,
    payload_hash_of,
    sign_payload_ne,
    sign_payload_proposal,
    sign_payload_tip,
    sign_payload_vote,
    statement_bytes,
    tc_hash_of,
)
from hedgerow.testnet.sim.byzantine import sign_timeout

CHAIN = "unit-chain"
N = 4
KEYS = [SigningKey.from_label(f"unit-v{i}") for i in range(7)]
VALIDATORS = ValidatorSet.equal([key.public for key in KEYS[:N]])
PARAMS = Params(delta_ms=100, local_processing_ms=100)


def sign(signer: int, domain: str, payload: Any) -> bytes:
    return KEYS[signer].sign_raw(statement_bytes(domain, CHAIN, payload))


def make_core(index: int, validators: ValidatorSet = VALIDATORS, **params: Any) -> MonadCore:
    settings: dict[str, Any] = {"delta_ms": 100, "local_processing_ms": 100}
    settings.update(params)
    return MonadCore(index, KEYS[index], validators, CHAIN, Params(**settings))


def vote(signer: int, block_id: bytes, round_: int) -> VoteMsg:
    return VoteMsg(Vote(block_id, round_), signer, sign(signer, D_VOTE, sign_payload_vote(block_id, round_)))


def qc(block_id: bytes, round_: int, signers: tuple[int, ...] = (0, 1, 2)) -> QC:
    return QC(
        block_id,
        round_,
        signers,
        tuple(sign(s, D_VOTE, sign_payload_vote(block_id, round_)) for s in signers),
    )


def nec(round_: int, tip_qc_round: int, signers: tuple[int, ...] = (0, 1, 2)) -> NEC:
    return NEC(
        round_,
        tip_qc_round,
        signers,
        tuple(sign(s, D_NE, sign_payload_ne(round_, tip_qc_round)) for s in signers),
    )


def make_tip(
    round_: int,
    parent: QC,
    height: int,
    txs: tuple[bytes, ...] = (),
    fresh_cert: Any = None,
    author: int | None = None,
    timestamp_ms: int = 0,
) -> Tip:
    author = round_ % N if author is None else author
    header = Header(round_, parent, author, height, timestamp_ms, payload_hash_of(txs))
    return Tip(header, sign(author, D_TIP, sign_payload_tip(header)), fresh_cert)


def make_block(
    round_: int,
    parent: QC,
    height: int,
    txs: tuple[bytes, ...] = (),
    fresh_cert: Any = None,
    timestamp_ms: int = 0,
) -> Block:
    return Block(make_tip(round_, parent, height, txs, fresh_cert, timestamp_ms=timestamp_ms), txs)


def proposal(
    round_: int, tip: Tip, txs: tuple[bytes, ...] = (), tc: TC | None = None, proposer: int | None = None
) -> Proposal:
    proposer = round_ % N if proposer is None else proposer
    payload = sign_payload_proposal(round_, tip.block_id, tc_hash_of(tc))
    return Proposal(round_, tip, txs, tc, proposer, sign(proposer, D_PROPOSAL, payload))


class _Signer:
    """Enough of a core for `sign_timeout`: index, chain id and `sign`."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.chain_id = CHAIN

    def sign(self, domain: str, payload: Any) -> bytes:
        return sign(self.index, domain, payload)


def timeout(
    signer: int, round_: int, extend: Tip | QC, last_round_cert: QC | TC | None = None, tip_vote: bool = False
) -> TimeoutMsg:
    return sign_timeout(_Signer(signer), round_, extend, last_round_cert, tip_vote)  # type: ignore[arg-type]


def make_tc(round_: int, reports: dict[int, Tip | QC], last: QC | TC | None = None) -> TC:
    return build_tc(round_, {s: timeout(s, round_, extend, last) for s, extend in reports.items()})


def no_tip_cert(tc: TC) -> NoTipCert:
    assert isinstance(tc.high_extend, QC)
    return NoTipCert(tc.round, tc.groups, tc.high_extend)


def happy_chain(length: int) -> tuple[list[Block], list[QC]]:
    """Blocks of rounds 1..length, each on the previous one's QC, with those QCs."""
    blocks: list[Block] = []
    qcs: list[QC] = []
    parent = GENESIS_QC
    for r in range(1, length + 1):
        block = make_block(r, parent, r, (f"tx{r}".encode(),))
        blocks.append(block)
        parent = qc(block.block_id, r)
        qcs.append(parent)
    return blocks, qcs


def sends(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, Send | Broadcast) and isinstance(a.message, kind)]


def persisted_before(actions: list[Any], kind: type) -> bool:
    """Every send of `kind` comes after some Persist(Checkpoint) in the same list."""
    seen = False
    for action in actions:
        if isinstance(action, Persist) and isinstance(action.record, Checkpoint):
            seen = True
        if isinstance(action, Send | Broadcast) and isinstance(action.message, kind) and not seen:
            return False
    return True


def deliveries(actions: list[Any], kind: str) -> list[Any]:
    from hedgerow.protocols.actions import Deliver

    return [a.value for a in actions if isinstance(a, Deliver) and a.value.kind == kind]
