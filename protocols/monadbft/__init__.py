"""MonadBFT: a pipelined, leader-rotating BFT consensus core (spec `../shared/specs/monadbft.md`).

Public surface (what a node wires; everything is sans-IO, times are integer milliseconds):

    core = MonadCore(index, signing_key, validators, chain_id, params,
                     leader=None,             # default from params.leader_election (R0)
                     verifier=None,           # Verifier(memo=...) to share verification results
                     payload_source=None,     # PayloadSource; None = built-in FIFO mempool
                     checkpoint=None, blocks=())  # restore: latest Checkpoint + stored blocks
    core.start(now_ms)                       -> list[Action]
    core.on_message(sender_index, msg, now)  -> list[Action]   # msg: one of FRAME_TYPES, decoded
    core.on_timer(timer, now)                -> list[Action]   # timer: ("round"|"vote"|"sync", value)
    core.submit_tx(tx_bytes, now)            -> (status, list[Action])  # client tx (RPC)

Actions (`hedgerow.protocols.actions`), executed in order:
- `Send(to, msg)` / `Broadcast(msg)`: to validator `to` / to every *other* validator. Self-delivery is
  internal: the core never addresses itself and a node must not loop a Broadcast back to its core.
- `SetTimer(timer, at)`: arm or re-arm the named timer at absolute time `at` (ms, same clock as
  `now`); stale timers are harmless (the core ignores them), so nothing needs cancelling.
- `Persist(Checkpoint)`: the signer's safety state plus blocks made durable; write it in ONE fsynced
  transaction before executing any later action of the list (votes, timeouts, NEs, proposals and
  recoveries always come after their Checkpoint). `Persist(Block)`: store a block, no fsync needed.
- `Deliver(Voted | Finalized | SpecRevert)`: speculative finality (1 round), final commit (in height
  order, with proof = (parent QC, child QC)), speculative revert (only after leader equivocation).
  Delivery is at least once: deduplicate by (kind, block id).
- `Evidence(EvidenceProof)`: misbehaviour a third party can check with `verify_evidence`.

Restart: rebuild with `MonadCore(..., checkpoint=latest, blocks=all stored blocks)` and call
`start(now)`; it re-sends the last vote/timeout bytes of the current round and re-delivers VOTED
for speculatively final blocks. `Checkpoint` and every message encode with `hedgerow.protocols.wire`
(`encode`/`decode`); a transport accepts only `FRAME_TYPES` from peers.

Read-only views: `current_round`, `high_qc`, `high_cert`, `root_id`, `finalized_height`, `stats`.
"""

from hedgerow.protocols.monadbft.certificates import GENESIS_QC, CertChecker, Verifier, build_tc, qc_of
from hedgerow.protocols.monadbft.core import MonadCore
from hedgerow.protocols.monadbft.evidence import verify_evidence
from hedgerow.protocols.monadbft.leader import make_leader, round_robin, stake_weighted
from hedgerow.protocols.monadbft.messages import (
    FRAME_TYPES,
    NEC,
    QC,
    TC,
    AdvanceRound,
    Block,
    BlockRequest,
    BlockResponse,
    EvidenceMsg,
    EvidenceProof,
    EvidenceQuery,
    Header,
    NoEndorseMsg,
    NoTipCert,
    Proposal,
    RoundRecovery,
    SignedStatement,
    TcGroup,
    TimeoutInfo,
    TimeoutMsg,
    Tip,
    TxMsg,
    Vote,
    VoteMsg,
)
from hedgerow.protocols.monadbft.params import Params, ValidatorSet
from hedgerow.protocols.monadbft.records import Checkpoint, Finalized, SpecRevert, Voted
from hedgerow.protocols.monadbft.txpool import PayloadSource

__all__ = [
    "FRAME_TYPES",
    "GENESIS_QC",
    "NEC",
    "QC",
    "TC",
    "AdvanceRound",
    "Block",
    "BlockRequest",
    "BlockResponse",
    "CertChecker",
    "Checkpoint",
    "EvidenceMsg",
    "EvidenceProof",
    "EvidenceQuery",
    "Finalized",
    "Header",
    "MonadCore",
    "NoEndorseMsg",
    "NoTipCert",
    "Params",
    "PayloadSource",
    "Proposal",
    "RoundRecovery",
    "SignedStatement",
    "SpecRevert",
    "TcGroup",
    "TimeoutInfo",
    "TimeoutMsg",
    "Tip",
    "TxMsg",
    "ValidatorSet",
    "Verifier",
    "Vote",
    "VoteMsg",
    "Voted",
    "build_tc",
    "make_leader",
    "qc_of",
    "round_robin",
    "stake_weighted",
    "verify_evidence",
]
