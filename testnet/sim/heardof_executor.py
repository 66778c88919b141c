"""Seeded lock-step HO executor (spec §5.2): all processes step through rounds together.

Round r: compute every S_p^r(s_p, q), ask the oracle for HO(., r), apply T_p^r to the messages of
HO(p, r), record (r, HO sets, state digests, decisions). The seed fixes the oracle's choices, so
`(algorithm, inputs, oracle, seed)` replays exactly. Safety checks run after every round:
irrevocability always, k-agreement and validity (decisions among the inputs) when asked.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.canonical import digest
from hedgerow.protocols.heardof.algorithms import NONE, HoAlgorithm
from hedgerow.testnet.sim.heardof_oracles import HoSet, Oracle


@dataclass
class LockstepResult:
    seed: int
    n: int
    rounds: int
    trace: list[list[HoSet]]
    states: list[Any]
    decisions: list[Any]              # None while undecided
    decided_round: list[int | None]   # index of the round whose transition decided
    violations: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # one digest of all states per round

    @property
    def decided(self) -> list[int]:
        return [p for p, d in enumerate(self.decisions) if d is not None]

    @property
    def undecided(self) -> list[int]:
        return [p for p, d in enumerate(self.decisions) if d is None]

    def mean_ho(self) -> float:
        sizes = [len(h) for a in self.trace for h in a]
        return sum(sizes) / len(sizes) if sizes else 0.0


def _state_digest(states: Sequence[Any]) -> str:
    try:
        return digest(repr(list(states))).hex()[:16]
    except TypeError:
        return ""


def run_lockstep(
    alg: HoAlgorithm,
    inputs: Sequence[Any],
    oracle: Oracle,
    *,
    seed: int,
    max_rounds: int = 200,
    k: int | None = 1,
    check_validity: bool = True,
    stop_when: Callable[[LockstepResult], bool] | None = None,
    on_round: Callable[[int, list[Any]], None] | None = None,
    record_digests: bool = False,
) -> LockstepResult:
    """Run until `stop_when(result)` (default: everyone decided) or `max_rounds` rounds."""
    n = len(inputs)
    rng = random.Random(seed)
    states = [alg.init(p, n, inputs[p]) for p in range(n)]
    result = LockstepResult(seed, n, 0, [], states, [None] * n, [None] * n)
    _note(alg, result, states, -1, inputs, k, check_validity)
    stop = stop_when or (lambda res: not res.undecided)
    for r in range(max_rounds):
        if stop(result):
            break
        sets = oracle.ho_sets(r, n, states, rng)
        msgs = [[alg.send(r, q, states[q], p) for p in range(n)] for q in range(n)]
        states = [alg.transition(r, p, states[p], {q: msgs[q][p] for q in sorted(sets[p])}) for p in range(n)]
        result.trace.append(list(sets))
        result.states = states
        result.rounds = r + 1
        if record_digests:
            result.digests.append(_state_digest(states))
        _note(alg, result, states, r, inputs, k, check_validity)
        if on_round is not None:
            on_round(r, states)
    broken = oracle.check(result.trace)
    if broken:
        result.violations.append(f"oracle broke its own guarantees {broken}")
    return result


def _note(alg: HoAlgorithm, result: LockstepResult, states: Sequence[Any], r: int, inputs: Sequence[Any],
          k: int | None, check_validity: bool) -> None:
    for p, s in enumerate(states):
        d = alg.decision(s)
        value = None if d is NONE else d
        before = result.decisions[p]
        if before is not None and value != before:
            result.violations.append(f"round {r}: irrevocability: p{p} changed {before!r} -> {value!r}")
        if before is None and value is not None:
            result.decisions[p], result.decided_round[p] = value, r
            if check_validity and value not in inputs:
                result.violations.append(f"round {r}: validity: p{p} decided {value!r}, not an input")
    distinct = {repr(d) for d in result.decisions if d is not None}
    if k is not None and len(distinct) > k and not any("agreement" in v for v in result.violations):
        result.violations.append(f"round {r}: agreement: {len(distinct)} distinct {result.decisions}")
