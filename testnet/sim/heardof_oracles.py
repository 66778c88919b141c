"""HO adversaries (spec §5.2): each oracle picks every HO(p, r) and declares what it guarantees.

`ho_sets(r, n, states, rng) -> list[frozenset]`; `states` is only read by adaptive oracles, `rng` is
the executor's seeded `random.Random`. Every oracle keeps p in HO(p, r) unless it says otherwise.
`guarantees` names predicates of `hedgerow.protocols.heardof.predicates`; the executor re-checks
them on the recorded trace.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.heardof import predicates

HoSet = frozenset[int]


class Oracle:
    guarantees: tuple[str, ...] = ()
    f: int = 0

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        raise NotImplementedError

    def check(self, trace: Sequence[Sequence[HoSet]]) -> list[str]:
        """The declared guarantees that the trace breaks (empty when all hold)."""
        broken = []
        for name in self.guarantees:
            if not predicates.predicate_by_name(name, self.f)(trace):
                broken.append(name)
        return broken


def _random_hof(p: int, n: int, f: int, rng: random.Random, must_miss: Iterable[int] = (),
                keep: Iterable[int] = ()) -> HoSet:
    """HO(p) missing `must_miss` plus a random number of other processes, at most f in total."""
    missed = set(must_miss) - {p}
    spare = max(0, f - len(missed))
    others = [q for q in range(n) if q != p and q not in missed and q not in set(keep)]
    k = rng.randint(0, min(spare, len(others)))
    missed.update(rng.sample(others, k))
    return frozenset(q for q in range(n) if q not in missed)


@dataclass
class Complete(Oracle):
    guarantees: tuple[str, ...] = ("sp_unif", "nosplit")

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        return [frozenset(range(n))] * n


@dataclass
class RandomHOf(Oracle):
    """Each p misses k in [0, f] random others (P_HOf(f))."""

    f: int = 1
    guarantees: tuple[str, ...] = ("hof",)

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        return [_random_hof(p, n, self.f, rng) for p in range(n)]


@dataclass
class RandomAny(Oracle):
    """Each other process is heard with probability p_keep (no predicate guaranteed)."""

    p_keep: float = 0.5

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        return [frozenset(q for q in range(n) if q == p or rng.random() < self.p_keep) for p in range(n)]


@dataclass
class Silence(Oracle):
    """From `from_round` on, everybody outside S misses all of S (members of S miss each other if
    `mutual`), the spare budget of f missed senders is spent at random. P_HOf(f) iff |S| <= f.
    Before `from_round` (and after `until_round`, if set) rounds are RandomHOf(f)."""

    silenced: frozenset[int] = frozenset()
    from_round: int = 0
    mutual: bool = True
    f: int = 1
    until_round: int | None = None

    def __post_init__(self) -> None:
        self.guarantees = ("hof",) if len(self.silenced) <= self.f else ()

    def active(self, r: int) -> bool:
        return r >= self.from_round and (self.until_round is None or r < self.until_round)

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        if not self.active(r):
            return [_random_hof(p, n, self.f, rng) for p in range(n)]
        out = []
        for p in range(n):
            if p in self.silenced:
                miss = self.silenced - {p} if self.mutual else frozenset()
                out.append(_random_hof(p, n, self.f, rng, miss, keep=()))
            else:
                out.append(_random_hof(p, n, self.f, rng, self.silenced))
        return out


@dataclass
class Uniform(Oracle):
    """In the listed rounds everybody hears exactly `members` (default: everybody); else `base`."""

    rounds: frozenset[int] = frozenset()
    members: HoSet | None = None
    base: Oracle = field(default_factory=Complete)

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        if r in self.rounds:
            return [self.members if self.members is not None else frozenset(range(n))] * n
        return self.base.ho_sets(r, n, states, rng)


@dataclass
class GoodPhase(Oracle):
    """P_LV(phase): the coordinator hears a majority in steps 0 and 2 and is heard by all in 1, 3."""

    phase: int = 0
    base: Oracle = field(default_factory=RandomHOf)

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        sets = self.base.ho_sets(r, n, states, rng)
        if r // 4 != self.phase:
            return sets
        c = self.phase % n
        if r % 2 == 0:
            sets[c] = frozenset(range(n))
        else:
            sets = [h | {c} for h in sets]
        return sets


@dataclass
class Split(Oracle):
    """Processes in A hear only A, the others only the rest, in rounds [from_round, until_round)."""

    group: frozenset[int] = frozenset()
    from_round: int = 0
    until_round: int | None = None
    base: Oracle = field(default_factory=Complete)

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        if r < self.from_round or (self.until_round is not None and r >= self.until_round):
            return self.base.ho_sets(r, n, states, rng)
        rest = frozenset(range(n)) - self.group
        return [self.group if p in self.group else rest for p in range(n)]


@dataclass
class Scripted(Oracle):
    """Replays a recorded table of assignments; rounds past its end are complete."""

    table: Sequence[Sequence[HoSet]] = ()

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        if r < len(self.table):
            return list(self.table[r])
        return [frozenset(range(n))] * n


@dataclass
class Compose(Oracle):
    """Intersection of two oracles (each p still hears itself)."""

    a: Oracle = field(default_factory=Complete)
    b: Oracle = field(default_factory=Complete)

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        first, second = self.a.ho_sets(r, n, states, rng), self.b.ho_sets(r, n, states, rng)
        return [(x & y) | {p} for p, (x, y) in enumerate(zip(first, second, strict=True))]


@dataclass
class Violate(Oracle):
    """Rejection sampling: rounds from `base` that break `round_predicate` (up to `tries`)."""

    base: Oracle = field(default_factory=RandomAny)
    round_predicate: Callable[[Sequence[HoSet]], bool] = predicates.nosplit_round
    tries: int = 1000

    def ho_sets(self, r: int, n: int, states: Sequence[Any] | None, rng: random.Random) -> list[HoSet]:
        for _ in range(self.tries):
            sets = self.base.ho_sets(r, n, states, rng)
            if not self.round_predicate(sets):
                return sets
        raise RuntimeError("violate: no violating round found; widen the base oracle")
