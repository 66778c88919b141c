"""Exhaustive checker: breadth-first search over global configurations under ALL HO assignments.

T_p depends only on the configuration C and HO(p, r), so each process's local successors are
computed over its 2^n (or 2^(n-1) when p is always in HO(p, r)) candidate HO sets and the global
successors are their product (spec §9). A per-process predicate (P_HOf) filters the candidate sets,
a global one (P_nosplit, uniform rounds) filters the product. Dedup key: `(r mod period, C)` when
searching to a fixpoint, `(r, C)` per layer when a horizon is given (LastVoting, bounded liveness).
Violations (agreement or k-agreement, irrevocability) come with the HO sets that lead to them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hedgerow.protocols.heardof.algorithms import NONE, HoAlgorithm

HoSet = frozenset[int]
Assignment = tuple[HoSet, ...]
Config = tuple[Any, ...]
# A global predicate over one round's assignment: (round, assignment) -> allowed.
RoundFilter = Callable[[int, Assignment], bool]
_Key = tuple[int, Config]


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str                       # "agreement" | "irrevocability"
    round: int                      # index of the round whose transition produced it
    inputs: tuple[Any, ...]
    ho_sets: tuple[Assignment, ...]  # HO(., r) for r = 0..round
    decisions: tuple[Any, ...]      # per process, None while undecided

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "round": self.round,
            "inputs": list(self.inputs),
            "ho_sets": [[sorted(h) for h in assignment] for assignment in self.ho_sets],
            "decisions": list(self.decisions),
        }


@dataclass
class CheckResult:
    configurations: int
    layer_sizes: list[int]
    violations: list[Violation]
    max_distinct_decisions: int
    end_configurations: list[Config] = field(default_factory=list)
    undecided_at_layer: list[int] = field(default_factory=list)  # configs with someone undecided


def local_ho_sets(n: int, p: int, *, self_heard: bool, min_size: int = 0) -> list[HoSet]:
    """Every candidate HO(p, r): subsets of range(n) (containing p if `self_heard`) of size >= min_size."""
    out: list[HoSet] = []
    for mask in range(1 << n):
        members = frozenset(q for q in range(n) if mask >> q & 1)
        if self_heard and p not in members:
            continue
        if len(members) >= min_size:
            out.append(members)
    return out


def nosplit(r: int, assignment: Assignment) -> bool:
    return all(a & b for a, b in itertools.combinations(assignment, 2)) and all(assignment)


def uniform(r: int, assignment: Assignment) -> bool:
    return all(h == assignment[0] for h in assignment)


def _decisions(alg: HoAlgorithm, config: Config) -> tuple[Any, ...]:
    out = []
    for s in config:
        d = alg.decision(s)
        out.append(None if d is NONE else d)
    return tuple(out)


def _step(alg: HoAlgorithm, n: int, r: int, config: Config, candidates: Sequence[Sequence[HoSet]],
          round_filter: RoundFilter | None) -> dict[Config, Assignment]:
    """All successor configurations of `config` in round r, each with one assignment producing it."""
    locals_: list[dict[Any, HoSet]] = []
    by_set: list[dict[HoSet, Any]] = []
    for p in range(n):
        msgs = {q: alg.send(r, q, config[q], p) for q in range(n)}
        succ: dict[Any, HoSet] = {}
        per_set: dict[HoSet, Any] = {}
        for h in candidates[p]:
            s2 = alg.transition(r, p, config[p], {q: msgs[q] for q in sorted(h)})
            per_set[h] = s2
            succ.setdefault(s2, h)
        locals_.append(succ)
        by_set.append(per_set)
    out: dict[Config, Assignment] = {}
    if round_filter is None:
        for combo in itertools.product(*(list(d.items()) for d in locals_)):
            out.setdefault(tuple(s for s, _ in combo), tuple(h for _, h in combo))
        return out
    for assignment in itertools.product(*candidates):
        if round_filter(r, assignment):
            cfg = tuple(by_set[p][assignment[p]] for p in range(n))
            out.setdefault(cfg, assignment)
    return out


def check(
    alg: HoAlgorithm,
    n: int,
    inputs: Iterable[Sequence[Any]],
    *,
    self_heard: bool = True,
    f: int | None = None,
    round_filter: RoundFilter | None = None,
    filter_rounds: Callable[[int], RoundFilter | None] | None = None,
    horizon: int | None = None,
    k: int = 1,
    max_configurations: int = 2_000_000,
) -> CheckResult:
    """BFS from every input vector; to a fixpoint on (r mod period, C), or layer by layer to `horizon`
    rounds (then the sizes of layers 0..horizon are reported and summed). `k`: at most k distinct
    decisions allowed (1 = agreement). `filter_rounds(r)` overrides `round_filter` per round."""
    min_size = 0 if f is None else n - f
    candidates = [local_ho_sets(n, p, self_heard=self_heard, min_size=min_size) for p in range(n)]
    start = [tuple(alg.init(p, n, v) for p, v in enumerate(vec)) for vec in inputs]
    origin: dict[_Key, tuple[_Key | None, Assignment | None, tuple[Any, ...]]] = {}
    frontier: list[tuple[int, Config]] = []
    for vec, cfg in zip(inputs_as_list(inputs, start), start, strict=True):
        key = (0, cfg)
        if key not in origin:
            origin[key] = (None, None, tuple(vec))
            frontier.append(key)
    result = CheckResult(0, [len(frontier)], [], 0)
    total = len(frontier)
    r = 0
    while frontier and (horizon is None or r < horizon):
        layer: list[tuple[int, Config]] = []
        rf = filter_rounds(r) if filter_rounds is not None else round_filter
        for key in frontier:
            _, cfg = key
            _note_decisions(alg, cfg, result, k, key, origin, r)
            for nxt, assignment in _step(alg, n, r, cfg, candidates, rf).items():
                nkey = ((r + 1) % alg.period if horizon is None else r + 1, nxt)
                if nkey in origin:
                    continue
                origin[nkey] = (key, assignment, origin[key][2])
                _check_transition(alg, cfg, nxt, r, nkey, origin, result, k)
                layer.append(nkey)
        total += len(layer)
        if total > max_configurations:
            raise RuntimeError(f"more than {max_configurations} configurations; shrink n or the horizon")
        result.layer_sizes.append(len(layer))
        frontier = layer
        r += 1
    for key in frontier:
        _note_decisions(alg, key[1], result, k, key, origin, r)
    if horizon is not None:
        result.end_configurations = [cfg for _, cfg in frontier]
    result.configurations = total
    if horizon is None:
        result.layer_sizes = result.layer_sizes[:-1] if result.layer_sizes[-1] == 0 else result.layer_sizes
    return result


def inputs_as_list(inputs: Iterable[Sequence[Any]], start: list[Config]) -> list[Sequence[Any]]:
    listed = list(inputs) if not isinstance(inputs, list) else inputs
    if len(listed) != len(start):
        raise ValueError("inputs must be a re-iterable sequence of input vectors")
    return listed


def _note_decisions(alg: HoAlgorithm, cfg: Config, result: CheckResult, k: int, key: Any,
                    origin: dict[Any, Any], r: int) -> None:
    decided = {d for d in _decisions(alg, cfg) if d is not None}
    result.max_distinct_decisions = max(result.max_distinct_decisions, len(decided))


def _check_transition(alg: HoAlgorithm, cfg: Config, nxt: Config, r: int, nkey: Any,
                      origin: dict[Any, Any], result: CheckResult, k: int) -> None:
    before, after = _decisions(alg, cfg), _decisions(alg, nxt)
    kind = None
    if any(b is not None and a != b for a, b in zip(after, before, strict=True)):
        kind = "irrevocability"
    elif len({d for d in after if d is not None}) > k:
        kind = "agreement"
    if kind is None:
        return
    ho_sets, inputs = _path(origin, nkey)
    result.violations.append(Violation(kind, r, inputs, ho_sets, after))


def _path(origin: dict[Any, Any], key: Any) -> tuple[tuple[Assignment, ...], tuple[Any, ...]]:
    sets: list[Assignment] = []
    parent, assignment, inputs = origin[key]
    while parent is not None:
        sets.append(assignment)
        parent, assignment, _ = origin[parent]
    return tuple(reversed(sets)), inputs


def binary_inputs(n: int, values: int = 2) -> list[tuple[int, ...]]:
    """Every input vector over {0..values-1}."""
    return list(itertools.product(range(values), repeat=n))
