"""Local records of the core: the persisted `Checkpoint` and the three kinds of delivery.

`Persist(Checkpoint)` must be written in one fsynced transaction before any later send of the same
action list; `Persist(Block)` is a block write that needs no fsync. A restarted core is rebuilt from
the latest Checkpoint plus the blocks the store holds (`MonadCore(..., checkpoint=, blocks=)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hedgerow.protocols.actions import InvariantViolation
from hedgerow.protocols.monadbft.messages import QC, TC, Block, Tip
from hedgerow.protocols.wire import message


@message(44)
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The signer's safety state and the block tree's durable summary (spec §3, §4)."""

    highest_vote: int
    highest_ne_round: int
    highest_ne_tip: bytes | None
    highest_propose: int
    highest_recovery_request: int
    root: bytes  # last finalized block id
    high_tip: Tip | None
    high_qc: QC
    high_cert: QC | TC
    last_timeout: bytes | None  # exact bytes of the last TimeoutMsg sent
    last_vote: bytes | None  # exact bytes of the last VoteMsg sent
    my_votes: dict[int, bytes]  # round -> block id voted (VoteMsg or tip vote), rounds >= root's
    spec_final: dict[bytes, bytes]  # speculatively final block id -> anchor id
    blocks: tuple[Block, ...]  # blocks made durable by this same fsync

    def validate(self) -> None:
        """Checked before it is written and again when it is read back (STYLE: check after load)."""
        if self.high_qc.round > self.high_cert.round:
            raise ValueError("high_qc above high_cert")
        if self.high_tip is not None and self.high_tip.header.block_round <= self.high_qc.round:
            raise ValueError("high_tip not above high_qc")
        if (
            min(self.highest_vote, self.highest_ne_round, self.highest_propose, self.highest_recovery_request)
            < 0
        ):
            raise ValueError("negative safety counter")
        if (self.highest_ne_tip is None) != (self.highest_ne_round == 0):
            raise ValueError("highest_ne_tip must be set exactly when an NE was sent")

    def check(self) -> None:
        try:
            self.validate()
        except ValueError as error:
            raise InvariantViolation(f"bad checkpoint: {error}") from None


@dataclass(frozen=True, slots=True)
class Voted:
    """Speculative finality: `block` is below an anchor whose QC formed in its own proposal round.
    `proof` is that QC; it may be empty when re-delivered after a restart that no longer holds it."""

    kind: ClassVar[str] = "VOTED"
    block: Block
    proof: tuple[QC, ...]
    anchor: bytes


@dataclass(frozen=True, slots=True)
class Finalized:
    """Final commit, in height order; proof = (parent QC, consecutive child QC)."""

    kind: ClassVar[str] = "FINALIZED"
    block: Block
    proof: tuple[QC, ...]
    anchor: None = None


@dataclass(frozen=True, slots=True)
class SpecRevert:
    """A speculatively final block was pruned (only possible when leader(anchor round) equivocated)."""

    kind: ClassVar[str] = "SPEC_REVERT"
    block: Block
    anchor: bytes
    proof: tuple[QC, ...] = ()


Delivery = Voted | Finalized | SpecRevert
