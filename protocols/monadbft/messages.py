"""MonadBFT messages, certificates and local records (spec §3) as typed wire messages.

Every class is a frozen dataclass registered with `hedgerow.protocols.wire` (tags 21-44), so a
nested certificate is always the array `[tag, *fields]`: unions (`QC | TC`, `Tip | QC`,
`NEC | NoTipCert | None`) need no extra tag, and `enc(x)` (canonical msgpack of that array) is both
the wire form and the byte string that hashes and signatures cover.

Frame tags (what a transport accepts from a peer) are `20 + spec tag`: Proposal 21, VoteMsg 22,
TimeoutMsg 23, AdvanceRound 24, RoundRecovery 25, NoEndorseMsg 26, BlockRequest 27, BlockResponse 28,
TxMsg 29, EvidenceMsg 30, EvidenceQuery 31 (`FRAME_TYPES`). Nested-only classes use 32-43 and the
local `Checkpoint` record 44; a transport rejects those as frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgpack

from hedgerow.protocols.canonical import canonical_pack
from hedgerow.protocols.crypto import sign_bytes
from hedgerow.protocols.wire import message, to_wire

HASH_BYTES = 32
SIG_BYTES = 64
GENESIS_ID = bytes(HASH_BYTES)
SIGNERS_MAX = 1024
TXS_MAX = 100_000
BLOCKS_MAX = 1024


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_BYTES:
        raise ValueError(f"{what} must be {HASH_BYTES} bytes")


def _check_sig(value: bytes, what: str) -> None:
    if len(value) != SIG_BYTES:
        raise ValueError(f"{what} must be {SIG_BYTES} bytes")


def _check_uint(*values: int) -> None:
    for value in values:
        if value < 0 or value >= 1 << 63:
            raise ValueError("integers must be in 0..2^63-1")


def _check_signers(signers: tuple[int, ...], sigs: tuple[bytes, ...]) -> None:
    if len(signers) != len(sigs) or len(signers) > SIGNERS_MAX:
        raise ValueError("signers and sigs must pair up")
    _check_uint(*signers)
    for sig in sigs:
        _check_sig(sig, "signature")


# --------------------------------------------------------------------------------------------
# Certificates


@message(32)
@dataclass(frozen=True, slots=True)
class QC:
    """Quorum certificate: stake >= Q signed vote(block_id, round)."""

    block_id: bytes
    round: int
    signers: tuple[int, ...]
    sigs: tuple[bytes, ...]

    def validate(self) -> None:
        _check_hash(self.block_id, "QC block_id")
        _check_uint(self.round)
        _check_signers(self.signers, self.sigs)


@message(38)
@dataclass(frozen=True, slots=True)
class Header:
    block_round: int
    parent_qc: QC
    author: int
    height: int
    timestamp_ms: int
    payload_hash: bytes

    def validate(self) -> None:
        _check_uint(self.block_round, self.author, self.height, self.timestamp_ms)
        _check_hash(self.payload_hash, "payload_hash")


@message(35)
@dataclass(frozen=True, slots=True)
class NEC:
    """No-endorsement certificate: stake >= Q signed ne(round, tip_qc_round)."""

    round: int
    tip_qc_round: int
    signers: tuple[int, ...]
    sigs: tuple[bytes, ...]

    def validate(self) -> None:
        _check_uint(self.round, self.tip_qc_round)
        _check_signers(self.signers, self.sigs)


@message(39)
@dataclass(frozen=True, slots=True)
class TcGroup:
    """The signers of one TimeoutInfo (round, high_qc_round, high_tip_round) inside a TC."""

    high_qc_round: int
    high_tip_round: int
    signers: tuple[int, ...]
    sigs: tuple[bytes, ...]

    def validate(self) -> None:
        _check_uint(self.high_qc_round, self.high_tip_round)
        _check_signers(self.signers, self.sigs)

    @property
    def key(self) -> tuple[int, int]:
        return (self.high_qc_round, self.high_tip_round)


@message(33)
@dataclass(frozen=True, slots=True)
class TC:
    """Timeout certificate of `round`; `high_extend` is the highest-rank report among its groups."""

    round: int
    groups: tuple[TcGroup, ...]
    high_extend: Tip | QC

    def validate(self) -> None:
        _check_uint(self.round)
        if not 1 <= len(self.groups) <= SIGNERS_MAX:
            raise ValueError("a TC has 1..n groups")


@message(36)
@dataclass(frozen=True, slots=True)
class NoTipCert:
    """A TC whose high extend is a QC, carried as a fresh block's `fresh_cert` (distinct tag)."""

    round: int
    groups: tuple[TcGroup, ...]
    high_extend: QC

    def validate(self) -> None:
        _check_uint(self.round)
        if not 1 <= len(self.groups) <= SIGNERS_MAX:
            raise ValueError("a NoTipCert has 1..n groups")

    def as_tc(self) -> TC:
        return TC(self.round, self.groups, self.high_extend)


@message(34)
@dataclass(frozen=True, slots=True)
class Tip:
    """A leader-signed header; `fresh_cert` justifies a block not built on the previous round's QC."""

    header: Header
    leader_sig: bytes
    fresh_cert: NEC | NoTipCert | None

    def validate(self) -> None:
        _check_sig(self.leader_sig, "leader_sig")

    @property
    def block_id(self) -> bytes:
        return block_id_of(self.header)

    @property
    def block_round(self) -> int:
        return self.header.block_round


@message(40)
@dataclass(frozen=True, slots=True)
class Block:
    tip: Tip
    txs: tuple[bytes, ...]

    def validate(self) -> None:
        if len(self.txs) > TXS_MAX:
            raise ValueError("too many txs")

    @property
    def block_id(self) -> bytes:
        return block_id_of(self.tip.header)

    @property
    def header(self) -> Header:
        return self.tip.header


# --------------------------------------------------------------------------------------------
# Messages exchanged by validators


@message(37)
@dataclass(frozen=True, slots=True)
class Vote:
    block_id: bytes
    round: int

    def validate(self) -> None:
        _check_hash(self.block_id, "vote block_id")
        _check_uint(self.round)


@message(22)
@dataclass(frozen=True, slots=True)
class VoteMsg:
    vote: Vote
    signer: int
    sig: bytes

    def validate(self) -> None:
        _check_uint(self.signer)
        _check_sig(self.sig, "vote sig")


@message(41)
@dataclass(frozen=True, slots=True)
class TimeoutInfo:
    round: int
    high_qc_round: int
    high_tip_round: int  # 0 = no tip

    def validate(self) -> None:
        _check_uint(self.round, self.high_qc_round, self.high_tip_round)


@message(23)
@dataclass(frozen=True, slots=True)
class TimeoutMsg:
    info: TimeoutInfo
    signer: int
    sig: bytes
    high_extend: Tip | QC
    tip_vote_sig: bytes | None
    last_round_cert: QC | TC | None

    def validate(self) -> None:
        _check_uint(self.signer)
        _check_sig(self.sig, "timeout sig")
        if self.tip_vote_sig is not None:
            _check_sig(self.tip_vote_sig, "tip_vote_sig")


@message(21)
@dataclass(frozen=True, slots=True)
class Proposal:
    proposal_round: int
    tip: Tip
    txs: tuple[bytes, ...]
    last_round_tc: TC | None
    proposer: int
    proposer_sig: bytes

    def validate(self) -> None:
        _check_uint(self.proposal_round, self.proposer)
        _check_sig(self.proposer_sig, "proposer_sig")
        if len(self.txs) > TXS_MAX:
            raise ValueError("too many txs")

    @property
    def block(self) -> Block:
        return Block(self.tip, self.txs)


@message(24)
@dataclass(frozen=True, slots=True)
class AdvanceRound:
    cert: QC | TC


@message(25)
@dataclass(frozen=True, slots=True)
class RoundRecovery:
    round: int
    tc: TC
    proposer: int
    sig: bytes

    def validate(self) -> None:
        _check_uint(self.round, self.proposer)
        _check_sig(self.sig, "recovery sig")


@message(26)
@dataclass(frozen=True, slots=True)
class NoEndorseMsg:
    round: int
    tip_qc_round: int
    signer: int
    sig: bytes

    def validate(self) -> None:
        _check_uint(self.round, self.tip_qc_round, self.signer)
        _check_sig(self.sig, "ne sig")


@message(27)
@dataclass(frozen=True, slots=True)
class BlockRequest:
    block_id: bytes
    count: int

    def validate(self) -> None:
        _check_hash(self.block_id, "requested block_id")
        if not 1 <= self.count <= BLOCKS_MAX:
            raise ValueError("count must be 1..1024")


@message(28)
@dataclass(frozen=True, slots=True)
class BlockResponse:
    block_id: bytes
    blocks: tuple[Block, ...]  # newest first

    def validate(self) -> None:
        _check_hash(self.block_id, "response block_id")
        if len(self.blocks) > BLOCKS_MAX:
            raise ValueError("too many blocks")


@message(29)
@dataclass(frozen=True, slots=True)
class TxMsg:
    txs: tuple[bytes, ...]

    def validate(self) -> None:
        if len(self.txs) > TXS_MAX:
            raise ValueError("too many txs")


@message(42)
@dataclass(frozen=True, slots=True)
class SignedStatement:
    """One signed statement: `payload` is enc of the signed tuple, `domain` its SIGN domain."""

    domain: str
    payload: bytes
    signer: int
    sig: bytes

    def validate(self) -> None:
        _check_uint(self.signer)
        _check_sig(self.sig, "statement sig")


EVIDENCE_KINDS = (
    "EQUIVOCATION_HEADER",
    "EQUIVOCATION_PROPOSAL",
    "DOUBLE_VOTE",
    "CONFLICTING_TIMEOUT",
    "CONFLICTING_NE",
)


@message(43)
@dataclass(frozen=True, slots=True)
class EvidenceProof:
    """Two statements of one signer, domain and round with different payloads (spec's `Evidence`)."""

    kind: str
    offender: int
    round: int
    a: SignedStatement
    b: SignedStatement

    def validate(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"unknown evidence kind {self.kind!r}")
        _check_uint(self.offender, self.round)


@message(30)
@dataclass(frozen=True, slots=True)
class EvidenceMsg:
    evidence: EvidenceProof


@message(31)
@dataclass(frozen=True, slots=True)
class EvidenceQuery:
    tip: Tip


FRAME_TYPES: tuple[type, ...] = (
    Proposal,
    VoteMsg,
    TimeoutMsg,
    AdvanceRound,
    RoundRecovery,
    NoEndorseMsg,
    BlockRequest,
    BlockResponse,
    TxMsg,
    EvidenceMsg,
    EvidenceQuery,
)

# --------------------------------------------------------------------------------------------
# Encoding, hashing and sign payloads

DOMAIN_PREFIX = "hedgerow/monadbft/v1/"
D_VOTE = DOMAIN_PREFIX + "vote"
D_TIMEOUT = DOMAIN_PREFIX + "timeout"
D_NE = DOMAIN_PREFIX + "ne"
D_TIP = DOMAIN_PREFIX + "tip"
D_PROPOSAL = DOMAIN_PREFIX + "proposal"
D_RECOVERY = DOMAIN_PREFIX + "recovery"
H_HEADER = DOMAIN_PREFIX + "header"
H_PAYLOAD = DOMAIN_PREFIX + "payload"
H_TC = DOMAIN_PREFIX + "tc"


def enc(value: Any) -> bytes:
    """Canonical bytes of a message (its wire form)."""
    return canonical_pack(to_wire(value))


def sign_payload_vote(block_id: bytes, round_: int) -> list[Any]:
    return [block_id, round_]


def sign_payload_timeout(info: TimeoutInfo) -> list[Any]:
    return [info.round, info.high_qc_round, info.high_tip_round]


def sign_payload_ne(round_: int, tip_qc_round: int) -> list[Any]:
    return [round_, tip_qc_round]


def sign_payload_proposal(proposal_round: int, block_id: bytes, tc_hash: bytes) -> list[Any]:
    return [proposal_round, block_id, tc_hash]


def sign_payload_recovery(round_: int, tc_hash: bytes) -> list[Any]:
    return [round_, tc_hash]


def sign_payload_tip(header: Header) -> list[Any]:
    return to_wire(header)


_PREFIXES: dict[tuple[str, str], bytes] = {}


def statement_bytes(domain: str, chain_id: str, payload: Any) -> bytes:
    """Exactly `crypto.sign_bytes(domain, chain_id, payload)` for our payloads (lists of ints, bytes,
    str and nested lists, no maps), without the generic normalising pass: the hot path of every
    signature and verification."""
    prefix = _PREFIXES.get((domain, chain_id))
    if prefix is None:
        prefix = _PREFIXES[(domain, chain_id)] = sign_bytes(domain, chain_id, [])[:-1]
    packed: bytes = msgpack.packb(payload, use_bin_type=True)
    return prefix + packed


def hash_of(domain: str, chain_id: str, payload: Any) -> bytes:
    """HASH(d, x): SHA-256 of the same bytes SIGN(d, x) covers."""
    return hashlib.sha256(statement_bytes(domain, chain_id, payload)).digest()


_BLOCK_IDS: dict[Header, bytes] = {}
_BLOCK_IDS_MAX = 200_000


def block_id_of(header: Header) -> bytes:
    """HASH("header", header) with an empty chain id, memoised (headers are immutable).

    Departure: the id does not bind the chain id, so it can be computed from a header alone; every
    statement about a block (tip, vote, proposal) is signed with the chain id, which is what binds it.
    """
    cached = _BLOCK_IDS.get(header)
    if cached is None:
        cached = hash_of(H_HEADER, "", to_wire(header))
        if len(_BLOCK_IDS) >= _BLOCK_IDS_MAX:
            _BLOCK_IDS.clear()
        _BLOCK_IDS[header] = cached
    return cached


def payload_hash_of(txs: tuple[bytes, ...]) -> bytes:
    return hash_of(H_PAYLOAD, "", list(txs))


_TC_HASHES: dict[TC, bytes] = {}


def tc_hash_of(tc: TC | None) -> bytes:
    """HASH("tc", tc) over the TC's own encoding, or b"" for no TC (memoised)."""
    if tc is None:
        return b""
    cached = _TC_HASHES.get(tc)
    if cached is None:
        cached = hash_of(H_TC, "", to_wire(tc))
        if len(_TC_HASHES) >= 10_000:
            _TC_HASHES.clear()
        _TC_HASHES[tc] = cached
    return cached
