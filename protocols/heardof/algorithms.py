"""Library Heard-Of algorithms (spec §5.3), pure and deterministic, states frozen and hashable.

Every algorithm is built for a fixed `n` and implements the `HoAlgorithm` protocol: `init`,
`send` (S_p^r; `None` is the Null payload), `transition` (T_p^r over the mailbox whose keys are
HO(p, r)), `decision` (`NONE` while undecided) and `valid_payload`. Values are totally ordered and
ties are broken by the smallest value. "More than 2n/3" is `3*k > 2*n`, "majority" is `2*k > n`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from fractions import Fraction
from typing import Any, Final, NamedTuple, Protocol


class _NoneType:
    """The 'no decision yet' marker (distinct from a decided value that happens to be falsy)."""

    _instance: _NoneType | None = None

    def __new__(cls) -> _NoneType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NONE"

    def __bool__(self) -> bool:
        return False


NONE: Final = _NoneType()


class HoAlgorithm(Protocol):
    """A lock-step round algorithm (spec §3). States must be hashable and immutable."""

    name: str
    colorless: bool
    period: int

    def init(self, p: int, n: int, inp: Any) -> Any: ...

    def send(self, r: int, p: int, s: Any, q: int) -> Any: ...

    def transition(self, r: int, p: int, s: Any, mb: Mapping[int, Any]) -> Any: ...

    def decision(self, s: Any) -> Any: ...

    def valid_payload(self, r: int, payload: Any) -> bool: ...


def _is_value(v: Any) -> bool:
    return isinstance(v, Hashable) and v is not None and not isinstance(v, _NoneType)


def _check_n(expected: int, n: int) -> None:
    if n != expected:
        raise ValueError(f"algorithm built for n={expected}, used with n={n}")


# ---------------------------------------------------------------------------------------------
# OneThirdRule


class OtrState(NamedTuple):
    x: Any
    dec: Any  # None while undecided


class OneThirdRule:
    """OTR, period 1: adopt the smallest most-frequent value when > 2n/3 heard; decide on > 2n/3."""

    name = "otr"
    colorless = True
    period = 1

    def __init__(self, n: int) -> None:
        self.n = n

    def init(self, p: int, n: int, inp: Any) -> OtrState:
        _check_n(self.n, n)
        return OtrState(inp, None)

    def send(self, r: int, p: int, s: OtrState, q: int) -> Any:
        return s.x

    def transition(self, r: int, p: int, s: OtrState, mb: Mapping[int, Any]) -> OtrState:
        if 3 * len(mb) <= 2 * self.n:
            return s
        counts = Counter(mb.values())
        top = max(counts.values())
        x = min(v for v, k in counts.items() if k == top)
        dec = s.dec
        winners = [v for v, k in counts.items() if 3 * k > 2 * self.n]
        if winners:
            dec = winners[0]
        return OtrState(x, dec)

    def decision(self, s: OtrState) -> Any:
        return NONE if s.dec is None else s.dec

    def valid_payload(self, r: int, payload: Any) -> bool:
        return _is_value(payload)


# ---------------------------------------------------------------------------------------------
# UniformVoting


class UvState(NamedTuple):
    x: Any
    vote: Any
    dec: Any


class UniformVoting:
    """UV, period 2 (Charron-Bost and Schiper): safe only under P_nosplit."""

    name = "uv"
    colorless = True
    period = 2

    def __init__(self, n: int) -> None:
        self.n = n

    def init(self, p: int, n: int, inp: Any) -> UvState:
        _check_n(self.n, n)
        return UvState(inp, None, None)

    def send(self, r: int, p: int, s: UvState, q: int) -> Any:
        return s.x if r % 2 == 0 else (s.x, s.vote)

    def transition(self, r: int, p: int, s: UvState, mb: Mapping[int, Any]) -> UvState:
        if not mb:
            return s
        if r % 2 == 0:
            values = set(mb.values())
            vote = next(iter(values)) if len(values) == 1 else s.vote
            return UvState(min(values), vote, s.dec)
        votes = [v for _, v in mb.values() if v is not None]
        x = min(votes) if votes else min(x for x, _ in mb.values())
        dec = s.dec
        all_votes = {v for _, v in mb.values()}
        if len(all_votes) == 1 and None not in all_votes:
            dec = next(iter(all_votes))
        return UvState(x, None, dec)

    def decision(self, s: UvState) -> Any:
        return NONE if s.dec is None else s.dec

    def valid_payload(self, r: int, payload: Any) -> bool:
        if r % 2 == 0:
            return _is_value(payload)
        return (isinstance(payload, tuple) and len(payload) == 2 and _is_value(payload[0])
                and (payload[1] is None or _is_value(payload[1])))


# ---------------------------------------------------------------------------------------------
# LastVoting


class LvState(NamedTuple):
    x: Any
    vote: Any
    commit: bool
    ready: bool
    ts: int
    dec: Any


ACK: Final = "ack"


class LastVoting:
    """LV (Paxos in HO), period 4, rotating coordinator coord(phi) = phi mod n."""

    name = "lv"
    colorless = True
    period = 4

    def __init__(self, n: int) -> None:
        self.n = n

    def coord(self, phase: int) -> int:
        return phase % self.n

    def init(self, p: int, n: int, inp: Any) -> LvState:
        _check_n(self.n, n)
        return LvState(inp, None, False, False, 0, None)

    def send(self, r: int, p: int, s: LvState, q: int) -> Any:
        phase, step = divmod(r, 4)
        c = self.coord(phase)
        if step == 0:
            return (s.x, s.ts) if q == c else None
        if step == 1:
            return s.vote if p == c and s.commit else None
        if step == 2:
            return ACK if q == c and s.ts == phase + 1 else None
        return s.vote if p == c and s.ready else None

    def transition(self, r: int, p: int, s: LvState, mb: Mapping[int, Any]) -> LvState:
        phase, step = divmod(r, 4)
        c = self.coord(phase)
        if step == 0:
            if p != c:
                return s
            pairs = [m for m in mb.values() if m is not None]
            if 2 * len(pairs) <= self.n:
                return s
            ts_max = max(ts for _, ts in pairs)
            vote = min(x for x, ts in pairs if ts == ts_max)
            return s._replace(vote=vote, commit=True)
        msg = mb.get(c)
        if step == 1:
            if msg is None:
                return s
            return s._replace(x=msg, ts=phase + 1)
        if step == 2:
            if p != c:
                return s
            acks = sum(1 for m in mb.values() if m == ACK)
            return s._replace(ready=True) if 2 * acks > self.n else s
        if msg is not None:
            s = s._replace(dec=msg)
        if p == c:
            s = s._replace(commit=False, ready=False)
        return s

    def decision(self, s: LvState) -> Any:
        return NONE if s.dec is None else s.dec

    def valid_payload(self, r: int, payload: Any) -> bool:
        if payload is None:
            return True
        step = r % 4
        if step == 0:
            return (isinstance(payload, tuple) and len(payload) == 2 and _is_value(payload[0])
                    and isinstance(payload[1], int) and not isinstance(payload[1], bool) and payload[1] >= 0)
        if step == 2:
            return bool(payload == ACK)
        return _is_value(payload)


# ---------------------------------------------------------------------------------------------
# FloodMin (k-set agreement, k = f + 1) and midpoint approximate agreement


class FloodMinState(NamedTuple):
    x: Any
    dec: Any


class FloodMin:
    """One round: send the input, decide the minimum received (<= f+1 distinct decisions in HO_f)."""

    name = "floodmin"
    colorless = True
    period = 1

    def __init__(self, n: int) -> None:
        self.n = n

    def init(self, p: int, n: int, inp: Any) -> FloodMinState:
        _check_n(self.n, n)
        return FloodMinState(inp, None)

    def send(self, r: int, p: int, s: FloodMinState, q: int) -> Any:
        return s.x

    def transition(self, r: int, p: int, s: FloodMinState, mb: Mapping[int, Any]) -> FloodMinState:
        if s.dec is not None or not mb:
            return s
        return FloodMinState(s.x, min(mb.values()))

    def decision(self, s: FloodMinState) -> Any:
        return NONE if s.dec is None else s.dec

    def valid_payload(self, r: int, payload: Any) -> bool:
        return _is_value(payload)


class MidpointState(NamedTuple):
    v: Any
    dec: Any


def rounds_needed(lo: Any, hi: Any, epsilon: Any) -> int:
    """R = ceil(log2((hi - lo) / epsilon)), 0 when hi - lo <= epsilon (exact integer arithmetic)."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    span = Fraction(hi) - Fraction(lo)
    rounds = 0
    while span > epsilon:
        span /= 2
        rounds += 1
    return rounds


class Midpoint:
    """Approximate agreement: v := (min + max received) / 2 for R rounds, then decide v."""

    name = "approx"
    colorless = True
    period = 1

    def __init__(self, n: int, lo: Any, hi: Any, epsilon: Any, *, exact: bool = True) -> None:
        self.n = n
        self.lo, self.hi = lo, hi
        self.rounds = rounds_needed(lo, hi, epsilon)
        self.exact = exact

    def init(self, p: int, n: int, inp: Any) -> MidpointState:
        _check_n(self.n, n)
        v = Fraction(inp) if self.exact else float(inp)
        return MidpointState(v, v if self.rounds == 0 else None)

    def send(self, r: int, p: int, s: MidpointState, q: int) -> Any:
        return s.v

    def transition(self, r: int, p: int, s: MidpointState, mb: Mapping[int, Any]) -> MidpointState:
        if s.dec is not None or not mb:
            return s
        values = list(mb.values())
        v = (min(values) + max(values)) / 2
        return MidpointState(v, v if r + 1 >= self.rounds else None)

    def decision(self, s: MidpointState) -> Any:
        return NONE if s.dec is None else s.dec

    def valid_payload(self, r: int, payload: Any) -> bool:
        kinds = (Fraction, int) if self.exact else (float, int)
        return isinstance(payload, kinds) and not isinstance(payload, bool) and self.lo <= payload <= self.hi


def make_algorithm(name: str, n: int, **options: Any) -> HoAlgorithm:
    """Build a library algorithm by its CLI name (otr, uv, lv, floodmin, approx)."""
    if name == "otr":
        return OneThirdRule(n)
    if name == "uv":
        return UniformVoting(n)
    if name == "lv":
        return LastVoting(n)
    if name == "floodmin":
        return FloodMin(n)
    if name == "approx":
        return Midpoint(n, options.get("lo", 0), options.get("hi", 1000), options.get("epsilon", 1))
    raise ValueError(f"unknown algorithm {name!r}; want one of otr, uv, lv, floodmin, approx")


ALGORITHMS: Final = ("otr", "uv", "lv", "floodmin", "approx")
