"""Leader election (spec R0): round robin, or stake weighted from a hash of (chain id, round)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import accumulate

from hedgerow.protocols.monadbft.params import ValidatorSet

LeaderFn = Callable[[int], int]


def round_robin(n: int) -> LeaderFn:
    """leader(r) = r mod n."""

    def leader(round_: int) -> int:
        return round_ % n

    return leader


def stake_weighted(validators: ValidatorSet, chain_id: str) -> LeaderFn:
    """x = int(SHA-256("leader" || chain_id || r as u64 BE)) mod S; the first validator in index
    order whose cumulative stake exceeds x."""
    cumulative = list(accumulate(validators.stakes))
    total = validators.total
    prefix = b"leader" + chain_id.encode()
    memo: dict[int, int] = {}

    def leader(round_: int) -> int:
        found = memo.get(round_)
        if found is None:
            digest = hashlib.sha256(prefix + round_.to_bytes(8, "big")).digest()
            x = int.from_bytes(digest, "big") % total
            found = next(index for index, upto in enumerate(cumulative) if upto > x)
            if len(memo) > 4096:
                memo.clear()
            memo[round_] = found
        return found

    return leader


def from_table(table: dict[int, int], fallback: LeaderFn) -> LeaderFn:
    """A test-only leader table (Twins) over a fallback schedule."""

    def leader(round_: int) -> int:
        return table.get(round_, fallback(round_))

    return leader


def make_leader(validators: ValidatorSet, chain_id: str, election: str) -> LeaderFn:
    if election == "stake_weighted":
        return stake_weighted(validators, chain_id)
    return round_robin(validators.n)
