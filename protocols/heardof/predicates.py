"""Communication predicates as checkers over recorded traces (spec §2).

A trace is a sequence of rounds; round r is the assignment `(HO(0,r), ..., HO(n-1,r))` of
frozensets. K(r) = the intersection over p of HO(p, r). Thresholds in integers: "more than 2n/3"
is `3*k > 2*n`, "majority" is `2*k > n`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

HoSet = frozenset[int]
Assignment = Sequence[HoSet]
Trace = Sequence[Assignment]


def hof_round(assignment: Assignment, f: int) -> bool:
    n = len(assignment)
    return all(len(h) >= n - f and p in h for p, h in enumerate(assignment))


def p_hof(trace: Trace, f: int) -> bool:
    """P_HOf(f): every |HO(p,r)| >= n-f and p in HO(p,r)."""
    return all(hof_round(a, f) for a in trace)


def nosplit_round(assignment: Assignment) -> bool:
    return all(a & b for a in assignment for b in assignment)


def p_nosplit(trace: Trace) -> bool:
    """P_nosplit: any two HO sets of a round intersect."""
    return all(nosplit_round(a) for a in trace)


def p_maj(trace: Trace) -> bool:
    """P_maj: every HO set is a strict majority."""
    return all(2 * len(h) > len(a) for a in trace for h in a)


def kernel(assignment: Assignment) -> HoSet:
    out = frozenset(range(len(assignment)))
    for h in assignment:
        out &= h
    return out


def p_kernel(trace: Trace) -> bool:
    """P_kernel: every round has a process heard by all."""
    return all(kernel(a) for a in trace)


def uniform(assignment: Assignment) -> bool:
    """uniform(r): all processes hear the same set."""
    return all(h == assignment[0] for h in assignment)


def p_sp_unif(trace: Trace) -> bool:
    return all(uniform(a) for a in trace)


def p_unif(trace: Trace) -> bool:
    """P_unif: some round is space-uniform."""
    return any(uniform(a) for a in trace)


def otr_good_round(trace: Trace) -> int | None:
    """The first r0 of P_otr (uniform with 3|Pi0| > 2n, each p later hears > 2n/3), else None."""
    for r0, a in enumerate(trace):
        n = len(a)
        if not (uniform(a) and 3 * len(a[0]) > 2 * n):
            continue
        if all(any(3 * len(trace[r][p]) > 2 * n for r in range(r0 + 1, len(trace))) for p in range(n)):
            return r0
    return None


def p_otr(trace: Trace) -> bool:
    return otr_good_round(trace) is not None


def lv_good_phase(trace: Trace, phase: int) -> bool:
    """P_LV(phase) with c = phase mod n."""
    if len(trace) < 4 * phase + 4:
        return False
    n = len(trace[0])
    c = phase % n
    r = 4 * phase
    return (2 * len(trace[r][c]) > n and 2 * len(trace[r + 2][c]) > n
            and all(c in trace[r + 1][p] and c in trace[r + 3][p] for p in range(n)))


def p_lv(trace: Trace) -> bool:
    """Some phase of the trace is good for LastVoting."""
    return any(lv_good_phase(trace, phase) for phase in range(len(trace) // 4))


def predicate_by_name(name: str, f: int) -> Callable[[Trace], bool]:
    """Trace checker by CLI name: hof, nosplit, maj, kernel, sp_unif, unif, otr, lv, any."""
    table: dict[str, Callable[[Trace], bool]] = {
        "hof": lambda t: p_hof(t, f), "nosplit": p_nosplit, "maj": p_maj, "kernel": p_kernel,
        "sp_unif": p_sp_unif, "unif": p_unif, "otr": p_otr, "lv": p_lv, "any": lambda t: True,
    }
    if name not in table:
        raise ValueError(f"unknown predicate {name!r}; want one of {', '.join(sorted(table))}")
    return table[name]


PREDICATES = ("any", "hof", "kernel", "lv", "maj", "nosplit", "otr", "sp_unif", "unif")
