"""Asynchronous message-passing (AMP_f) algorithms: lattice agreement and (f+1)-set agreement.

Event-driven and pure (spec §3 `AmpAlgorithm`): `start(p, n, f, inp)` and `receive(s, src,
payload)` return the new state and the sends `(dst | -1, payload)` (-1 = everybody, the sender
included). States are immutable NamedTuples of tuples and frozensets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from hedgerow.protocols.heardof.algorithms import NONE

Sends = list[tuple[int, Any]]


class AmpAlgorithm(Protocol):
    name: str
    colorless: bool

    def start(self, p: int, n: int, f: int, inp: Any) -> tuple[Any, Sends]: ...

    def receive(self, s: Any, src: int, payload: Any) -> tuple[Any, Sends]: ...

    def decision(self, s: Any) -> Any: ...


class LaState(NamedTuple):
    p: int
    n: int
    f: int
    prop: frozenset[Any]
    attempt: int
    accepted: frozenset[Any]
    replies: tuple[tuple[int, bool, frozenset[Any]], ...]  # (src, ack, nack set) of this attempt
    dec: frozenset[Any] | None


class LatticeAgreement:
    """Single-shot lattice agreement (spec §5.3): propose, ACK/NACK from acceptors, retry with union."""

    name = "la"
    colorless = False

    def start(self, p: int, n: int, f: int, inp: Any) -> tuple[LaState, Sends]:
        if n <= 2 * f:
            raise ValueError(f"lattice agreement needs n > 2f, got n={n}, f={f}")
        prop = frozenset([inp])
        return LaState(p, n, f, prop, 0, frozenset(), (), None), [(-1, ("P", 0, prop))]

    def receive(self, s: LaState, src: int, payload: Any) -> tuple[LaState, Sends]:
        kind = payload[0]
        if kind == "P":
            _, attempt, v = payload
            if s.accepted <= v:
                return s._replace(accepted=v), [(src, ("A", attempt))]
            accepted = s.accepted | v
            return s._replace(accepted=accepted), [(src, ("N", attempt, accepted))]
        attempt = payload[1]
        if s.dec is not None or attempt != s.attempt or any(q == src for q, _, _ in s.replies):
            return s, []
        nack = frozenset() if kind == "A" else payload[2]
        replies = (*s.replies, (src, kind == "A", nack))
        if len(replies) < s.n - s.f:
            return s._replace(replies=replies), []
        if all(ack for _, ack, _ in replies):
            return s._replace(replies=replies, dec=s.prop), []
        prop = s.prop.union(*(nack for _, _, nack in replies))
        attempt = s.attempt + 1
        return s._replace(prop=prop, attempt=attempt, replies=()), [(-1, ("P", attempt, prop))]

    def decision(self, s: LaState) -> Any:
        return NONE if s.dec is None else s.dec


class SetAgreementState(NamedTuple):
    p: int
    n: int
    f: int
    inputs: tuple[tuple[int, Any], ...]   # first n-f inputs received (src, value)
    candidate: Any
    acks: frozenset[int]
    dec: Any


class AckedSetAgreement:
    """(f+1)-set agreement that decides the min of its first n-f inputs only after n-f ACKs of it,
    so a process whose messages never spread cannot finish alone (scenario S3)."""

    name = "kset"
    colorless = True

    def start(self, p: int, n: int, f: int, inp: Any) -> tuple[SetAgreementState, Sends]:
        return SetAgreementState(p, n, f, (), None, frozenset(), None), [(-1, ("I", inp))]

    def receive(self, s: SetAgreementState, src: int, payload: Any) -> tuple[SetAgreementState, Sends]:
        kind = payload[0]
        if kind == "I":
            if s.candidate is not None or any(q == src for q, _ in s.inputs):
                return s, []
            inputs = (*s.inputs, (src, payload[1]))
            if len(inputs) < s.n - s.f:
                return s._replace(inputs=inputs), []
            candidate = min(v for _, v in inputs)
            return s._replace(inputs=inputs, candidate=candidate), [(-1, ("C", candidate))]
        if kind == "C":
            return s, [(src, ("K", payload[1]))]
        if s.dec is not None or payload[1] != s.candidate:
            return s, []
        acks = s.acks | {src}
        dec = s.candidate if len(acks) >= s.n - s.f else None
        return s._replace(acks=acks, dec=dec), []

    def decision(self, s: SetAgreementState) -> Any:
        return NONE if s.dec is None else s.dec


def comparability_violations(outputs: Mapping[int, frozenset[Any]],
                             inputs: Sequence[Any]) -> list[str]:
    """Lattice-agreement safety: out_p contains x_p, is within the inputs, outputs form a chain."""
    problems = []
    universe = frozenset(inputs)
    for p, out in sorted(outputs.items()):
        if inputs[p] not in out:
            problems.append(f"validity: out_{p}={sorted(out)} lacks x_{p}={inputs[p]}")
        if not out <= universe:
            problems.append(f"validity: out_{p}={sorted(out)} holds a value no process proposed")
    items = sorted(outputs.items())
    for i, (p, a) in enumerate(items):
        for q, b in items[i + 1:]:
            if not (a <= b or b <= a):
                problems.append(f"comparability: out_{p}={sorted(a)} and out_{q}={sorted(b)}")
    return problems
