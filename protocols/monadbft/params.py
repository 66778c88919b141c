"""MonadBFT parameters (spec §8) and the static validator set with its stake thresholds (§2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hedgerow.protocols.crypto import VerifyKey


@dataclass(frozen=True, slots=True)
class Params:
    """Tunables; times in integer milliseconds. Defaults are the spec's 4-node laptop values."""

    delta_ms: int = 100
    local_processing_ms: int = 100
    vote_pace_ms: int = 0
    future_vote_bound: int = 10
    max_block_txs: int = 1000
    max_block_bytes: int = 1 << 20
    max_tx_bytes: int = 64 << 10
    max_mempool_txs: int = 10_000
    max_mempool_bytes: int = 16 << 20
    max_clock_skew_ms: int = 2000
    sync_batch: int = 64
    sync_retry_ms: int = 500
    evidence_window: int = 1000
    leader_election: str = "round_robin"  # or "stake_weighted"
    fast_recovery: bool = True
    tx_forward_leaders: int = 3
    restart_abstain_current_round: bool = False
    # Overrides (None = the spec's formulas); the S17 variant sets recovery_timer_ms = round_timer_ms.
    round_timer_ms_override: int | None = None
    tc_timer_ms_override: int | None = None
    recovery_timer_ms_override: int | None = None
    handled_proposal_rounds: int = 100
    finalized_tx_memory: int = 100_000
    finalized_blocks_kept: int = 100_000  # in memory for BlockRequests; the node's store keeps all

    def __post_init__(self) -> None:
        if self.delta_ms < 0 or self.local_processing_ms < 0 or self.vote_pace_ms < 0:
            raise ValueError("times must be >= 0")
        if self.future_vote_bound < 1 or self.sync_batch < 1 or self.sync_retry_ms < 1:
            raise ValueError("future_vote_bound, sync_batch and sync_retry_ms must be >= 1")
        if self.leader_election not in ("round_robin", "stake_weighted"):
            raise ValueError("leader_election must be round_robin or stake_weighted")

    @property
    def round_timer_ms(self) -> int:
        """A round entered by a QC: 3δ + vote_pace + local processing."""
        if self.round_timer_ms_override is not None:
            return self.round_timer_ms_override
        return 3 * self.delta_ms + self.vote_pace_ms + self.local_processing_ms

    @property
    def tc_timer_ms(self) -> int:
        """A round entered by a TC with a QC high extend: 4δ + vote_pace + lp (spec §8 decision a)."""
        if self.tc_timer_ms_override is not None:
            return self.tc_timer_ms_override
        return 4 * self.delta_ms + self.vote_pace_ms + self.local_processing_ms

    @property
    def recovery_timer_ms(self) -> int:
        """A round entered by a TC with a Tip high extend (NEC path): 6δ + vote_pace + lp."""
        if self.recovery_timer_ms_override is not None:
            return self.recovery_timer_ms_override
        return 6 * self.delta_ms + self.vote_pace_ms + self.local_processing_ms


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """Validators by index (sorted by node id at genesis) with their keys and stakes."""

    keys: tuple[VerifyKey, ...]
    stakes: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.keys or len(self.keys) != len(self.stakes):
            raise ValueError("one stake per key, at least one validator")
        if any(stake < 1 for stake in self.stakes):
            raise ValueError("every stake must be >= 1")

    @classmethod
    def equal(cls, keys: Sequence[VerifyKey]) -> ValidatorSet:
        return cls(tuple(keys), tuple(1 for _ in keys))

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def total(self) -> int:
        return sum(self.stakes)

    @property
    def quorum(self) -> int:
        """Q = floor(2S/3) + 1."""
        return 2 * self.total // 3 + 1

    @property
    def honest(self) -> int:
        """H = floor(S/3) + 1: any set this heavy holds an honest validator."""
        return self.total // 3 + 1

    @property
    def f(self) -> int:
        """The tolerated Byzantine stake, S - Q."""
        return self.total - self.quorum

    def stake_of(self, signers: Iterable[int]) -> int:
        return sum(self.stakes[signer] for signer in signers)

    def known(self, signer: int) -> bool:
        return 0 <= signer < len(self.keys)
