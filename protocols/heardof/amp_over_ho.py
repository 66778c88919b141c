"""HO_f -> AMP_f (spec §5.5): `AmpOverHo` runs an AMP algorithm as an HO algorithm by flooding
full-information event logs, with the completion rules C1 (adopt), C2 (extend, f = 1) and the
deliberately unsafe C2' (naive extend, f >= 2, demonstration only).

Each process keeps an append-only log of its events (START, SEND, DELIVERED, DECIDED) and the
contiguous prefixes it knows of everybody else's logs. Every round it sends each peer the records
the peer may lack (from the peer's last reported counts `vec`), at most `max_env_per_msg`, oldest
first. After merging, it delivers to its AMP process, in (src, seq) order, every SEND addressed to
it; sends to itself are delivered at once. So any log prefix replays the AMP process exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from hedgerow.protocols.heardof.algorithms import NONE
from hedgerow.protocols.heardof.amp import AmpAlgorithm
from hedgerow.protocols.heardof.messages import (
    DECIDED,
    DELIVERED,
    SEND,
    START,
    Envelope,
    FloodPayload,
    pack_value,
    unpack_value,
)


class AohState(NamedTuple):
    p: int
    logs: tuple[tuple[Envelope, ...], ...]    # contiguous known prefix of every process's log
    pending: frozenset[Envelope]              # records waiting for a gap to fill
    last_vec: tuple[tuple[int, ...] | None, ...]  # last counts heard from each peer
    amp: Any                                  # the embedded AMP process state
    scanned: tuple[int, ...]                  # per src: records already scanned for delivery
    dec: Any                                  # decision (None while undecided)
    how: str                                  # "", "amp", "c1", "c2", "c2-unsafe"


class LogProcess:
    """One AMP process plus its event log; the logging rules F1/F3 in one place (also for replay)."""

    def __init__(self, amp: AmpAlgorithm, p: int, n: int, f: int, state: Any, log: list[Envelope]) -> None:
        self.amp, self.p, self.n, self.f = amp, p, n, f
        self.state, self.log = state, log
        self.delivered: set[tuple[int, int]] = set()
        self.decided = state is not None and amp.decision(state) is not NONE

    def _append(self, kind: int, dst: int, body: Any) -> Envelope:
        record = Envelope(self.p, len(self.log), kind, dst, pack_value(body))
        self.log.append(record)
        return record

    def start(self, inp: Any) -> None:
        """F1: START, then one SEND per produced message (self-sends delivered at once)."""
        self._append(START, -1, inp)
        self.state, sends = self.amp.start(self.p, self.n, self.f, inp)
        self._after_step(sends)

    def deliver(self, src: int, seq: int, payload: Any) -> None:
        """F3: DELIVERED(src, seq), run the AMP step, log its sends and a first decision."""
        self._append(DELIVERED, -1, (src, seq))
        self.delivered.add((src, seq))
        self.state, sends = self.amp.receive(self.state, src, payload)
        self._after_step(sends)

    def _after_step(self, sends: list[tuple[int, Any]]) -> None:
        own: deque[tuple[int, Any]] = deque()
        while True:
            for dst, payload in sends:
                record = self._append(SEND, dst, payload)
                if dst in (-1, self.p):
                    own.append((record.seq, payload))
            if not self.decided and self.amp.decision(self.state) is not NONE:
                self.decided = True
                self._append(DECIDED, -1, self.amp.decision(self.state))
            if not own:
                return
            seq, payload = own.popleft()
            self._append(DELIVERED, -1, (self.p, seq))
            self.delivered.add((self.p, seq))
            self.state, sends = self.amp.receive(self.state, self.p, payload)


class AmpOverHo:
    """An `HoAlgorithm` simulating the AMP algorithm `amp` in HO_f (n > 2f)."""

    period = 1

    def __init__(self, amp: AmpAlgorithm, n: int, f: int, *, c1: bool = False, c2: bool = False,
                 unsafe_extend: bool = False, max_env_per_msg: int = 256,
                 max_extension_steps: int = 10_000) -> None:
        if n <= 2 * f:
            raise ValueError(f"AmpOverHo needs n > 2f, got n={n}, f={f}")
        if c2 and f != 1:
            raise ValueError("completion rule C2 is sound only for f = 1 (use unsafe_extend to demonstrate)")
        self.amp, self.n, self.f = amp, n, f
        self.c1, self.c2, self.unsafe_extend = c1, c2, unsafe_extend
        self.max_env_per_msg, self.max_extension_steps = max_env_per_msg, max_extension_steps
        self.name = f"amp-over-ho({amp.name})"
        self.colorless = amp.colorless
        self.extension_exhausted = 0
        self._amp_type: Any = None

    def init(self, p: int, n: int, inp: Any) -> AohState:
        if n != self.n:
            raise ValueError(f"built for n={self.n}, used with n={n}")
        proc = LogProcess(self.amp, p, n, self.f, None, [])
        proc.start(inp)
        self._amp_type = type(proc.state)
        logs = tuple(tuple(proc.log) if q == p else () for q in range(n))
        dec = self.amp.decision(proc.state)
        return AohState(p, logs, frozenset(), (None,) * n, proc.state, (0,) * n,
                        None if dec is NONE else dec, "" if dec is NONE else "amp")

    def send(self, r: int, p: int, s: AohState, q: int) -> FloodPayload:
        """F2: own counts plus every record q may lack, oldest first, capped."""
        vec = tuple(len(log) for log in s.logs)
        if q == p:
            return FloodPayload(vec, ())
        known = s.last_vec[q]
        records: list[Envelope] = []
        for src, log in enumerate(s.logs):
            records.extend(log[0 if known is None else known[src]:])
        records.sort(key=lambda e: (e.seq, e.src))
        return FloodPayload(vec, tuple(records[: self.max_env_per_msg]))

    def valid_payload(self, r: int, payload: Any) -> bool:
        return (isinstance(payload, FloodPayload) and len(payload.vec) == self.n
                and all(0 <= e.src < self.n and -1 <= e.dst < self.n for e in payload.env))

    def transition(self, r: int, p: int, s: AohState, mb: Mapping[int, Any]) -> AohState:
        last_vec = list(s.last_vec)
        incoming: set[Envelope] = set(s.pending)
        for q, payload in mb.items():
            if q == p:
                continue
            old = last_vec[q]
            last_vec[q] = payload.vec if old is None else tuple(map(max, old, payload.vec))
            incoming.update(payload.env)
        logs = [list(log) for log in s.logs]
        pending = _merge(logs, incoming)
        proc = LogProcess(self.amp, p, self.n, self.f, s.amp, logs[p])
        scanned = list(s.scanned)
        for src in range(self.n):
            if src == p:
                continue
            for record in logs[src][scanned[src]:]:
                if record.kind == SEND and record.dst in (-1, p):
                    proc.deliver(src, record.seq, unpack_value(record.body))
            scanned[src] = len(logs[src])
        dec, how = s.dec, s.how
        if dec is None and proc.decided:
            dec, how = self.amp.decision(proc.state), "amp"
        state = AohState(p, tuple(tuple(log) for log in logs), frozenset(pending), tuple(last_vec),
                         proc.state, tuple(scanned), dec, how)
        if dec is None:
            state = self._complete(state, proc)
        return state

    def decision(self, s: AohState) -> Any:
        return NONE if s.dec is None else s.dec

    # -- completion rules ---------------------------------------------------------------------

    def _complete(self, s: AohState, proc: LogProcess) -> AohState:
        decided = known_decisions(s)
        value, how = None, ""
        if self.c1:
            found = [v for q, v in enumerate(decided) if v is not None and q != s.p]
            if found:
                value, how = found[0], "c1"
        if value is None and (self.c2 or self.unsafe_extend):
            undecided = [q for q, v in enumerate(decided) if v is None and q != s.p]
            if (self.c2 and not undecided) or (self.unsafe_extend and len(undecided) + 1 <= self.f):
                value = self._extend(s, frozenset(undecided))
                how = "c2" if self.c2 and not undecided else "c2-unsafe"
        if value is None:
            return s
        proc._append(DECIDED, -1, value)
        logs = tuple(tuple(proc.log) if q == s.p else log for q, log in enumerate(s.logs))
        return s._replace(logs=logs, dec=value, how=how)

    def _extend(self, s: AohState, crashed: frozenset[int]) -> Any:
        """C2/C2': replay the consistent cut, run a fair crash-free continuation until p decides."""
        cut = consistent_cut(s.logs)
        for q in range(self.n):
            if q != s.p and q not in crashed and not any(e.kind == DECIDED for e in s.logs[q][: cut[q]]):
                return None  # wait until the cut holds every other decision
        procs = [self._replay(q, s.logs[q][: cut[q]], s.logs) for q in range(self.n)]
        me = procs[s.p]
        if me is None:
            return None
        flight: deque[tuple[int, int, int]] = deque()
        for proc in procs:
            if proc is not None:
                flight.extend(_in_flight(proc, procs, 0))
        sent = [0 if proc is None else len(proc.log) for proc in procs]
        for _ in range(self.max_extension_steps):
            if me.decided:
                return self.amp.decision(me.state)
            if not flight:
                break
            src, seq, dst = flight.popleft()
            target = procs[dst]
            if dst in crashed or target is None or (src, seq) in target.delivered:
                continue
            payload = unpack_value(procs[src].log[seq].body)  # type: ignore[union-attr]
            target.deliver(src, seq, payload)
            flight.extend(_in_flight(target, procs, sent[dst]))
            sent[dst] = len(target.log)
        if me.decided:
            return self.amp.decision(me.state)
        self.extension_exhausted += 1
        return None

    def _replay(self, q: int, prefix: Sequence[Envelope],
                logs: Sequence[Sequence[Envelope]]) -> LogProcess | None:
        """Rebuild q's AMP process from its log prefix: START input, then the DELIVERED order."""
        if not prefix or prefix[0].kind != START:
            return None
        proc = LogProcess(self.amp, q, self.n, self.f, None, [])
        proc.start(unpack_value(prefix[0].body))
        for record in prefix[1:]:
            if record.kind != DELIVERED:
                continue
            src, seq = unpack_value(record.body)
            if src == q or (src, seq) in proc.delivered:
                continue
            origin = logs[src][seq] if seq < len(logs[src]) else None
            if origin is None or origin.kind != SEND:
                return None
            proc.deliver(src, seq, unpack_value(origin.body))
        return proc

    # -- persistence --------------------------------------------------------------------------

    def encode_state(self, s: AohState) -> Any:
        return tuple(s)

    def decode_state(self, obj: Any) -> AohState:
        state = AohState._make(obj)
        amp = state.amp
        make = getattr(self._amp_type, "_make", None)
        return state._replace(amp=make(amp) if make is not None else amp)


def _merge(logs: list[list[Envelope]], incoming: set[Envelope]) -> set[Envelope]:
    """Append contiguous records; return the ones still waiting for a gap."""
    waiting = {(e.src, e.seq): e for e in incoming if e.seq >= len(logs[e.src])}
    for src, log in enumerate(logs):
        while (src, len(log)) in waiting:
            log.append(waiting.pop((src, len(log))))
    return set(waiting.values())


def _in_flight(proc: LogProcess, procs: Sequence[LogProcess | None],
               start: int) -> list[tuple[int, int, int]]:
    """(src, seq, dst) for the SENDs in proc.log[start:] not yet delivered to a peer."""
    out = []
    for record in proc.log[start:]:
        if record.kind != SEND:
            continue
        targets = range(len(procs)) if record.dst == -1 else (record.dst,)
        for dst in targets:
            peer = procs[dst]
            if dst != proc.p and (peer is None or (proc.p, record.seq) not in peer.delivered):
                out.append((proc.p, record.seq, dst))
    return out


def consistent_cut(logs: Sequence[Sequence[Envelope]]) -> list[int]:
    """Longest known prefixes, truncated before any DELIVERED whose SEND lies outside the cut."""
    cut = [len(log) for log in logs]
    changed = True
    while changed:
        changed = False
        for q, log in enumerate(logs):
            for i, record in enumerate(log[: cut[q]]):
                if record.kind != DELIVERED:
                    continue
                src, seq = unpack_value(record.body)
                if seq >= cut[src]:
                    cut[q] = i
                    changed = True
                    break
    return cut


def known_decisions(s: AohState) -> list[Any]:
    """Per process, the value of the first DECIDED record p knows of it (None if none)."""
    out: list[Any] = []
    for log in s.logs:
        value = None
        for record in log:
            if record.kind == DECIDED:
                value = unpack_value(record.body)
                break
        out.append(value)
    return out


def known_counts(s: AohState) -> tuple[int, ...]:
    """Contiguous record counts per source: record (src, seq) is known iff seq < counts[src]."""
    return tuple(len(log) for log in s.logs)
