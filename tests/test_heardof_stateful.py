"""A hypothesis state machine over four `ho_f` round machines: the library picks which message is
delivered, duplicated or dropped-by-crash, and when a node restarts from its last HoRecord."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hedgerow.protocols.actions import Action, Broadcast, Deliver, Persist, Send
from hedgerow.protocols.heardof.algorithms import LastVoting, OneThirdRule
from hedgerow.protocols.heardof.machine import MachineConfig, RoundMachine
from hedgerow.protocols.heardof.messages import HoRecord, RoundMsg

N, F = 4, 1


class RoundsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.alg: Any = None
        self.inputs = [0, 1, 1, 0]
        self.cores: list[RoundMachine] = []
        self.pool: list[tuple[int, int, Any]] = []      # (src, dst, message) in flight
        self.records: list[HoRecord | None] = [None] * N
        self.sent: dict[tuple[int, int, int], bytes | None] = {}
        self.decisions: dict[int, Any] = {}
        self.crashed: set[int] = set()
        self.problems: list[str] = []

    def _make(self, p: int) -> RoundMachine:
        return RoundMachine(self.alg, p, self.inputs[p], instance=3, config=MachineConfig(n=N, f=F))

    @precondition(lambda self: not self.cores)
    @rule(lv=st.booleans())
    def boot(self, lv: bool) -> None:
        self.alg = LastVoting(N) if lv else OneThirdRule(N)
        self.cores = [self._make(p) for p in range(N)]
        for p, core in enumerate(self.cores):
            self._apply(p, core.start(0.0))

    def _apply(self, p: int, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                self.records[p] = action.record
            elif isinstance(action, Send | Broadcast):
                targets = [action.to] if isinstance(action, Send) else [q for q in range(N) if q != p]
                for q in targets:
                    msg = action.message
                    if isinstance(msg, RoundMsg):
                        record = self.records[p]
                        if record is None or record.round < msg.round:
                            self.problems.append(f"p{p} sent round {msg.round} before persisting it")
                        old = self.sent.setdefault((p, q, msg.round), msg.payload)
                        if old != msg.payload:
                            self.problems.append(f"p{p} sent two round-{msg.round} payloads to p{q}")
                    self.pool.append((p, q, msg))
            elif isinstance(action, Deliver):
                _, value = action.value
                if self.decisions.setdefault(p, value) != value:
                    self.problems.append(f"p{p} decided twice")

    @precondition(lambda self: bool(self.pool))
    @rule(index=st.integers(0, 10_000), keep=st.booleans())
    def deliver(self, index: int, keep: bool) -> None:
        src, dst, msg = self.pool[index % len(self.pool)]
        if not keep:   # keep=True duplicates the message (it stays in flight)
            del self.pool[index % len(self.pool)]
        if dst not in self.crashed:
            self._apply(dst, self.cores[dst].on_message(src, msg, 0.0))

    @precondition(lambda self: bool(self.cores) and len(self.crashed) < F)
    @rule(p=st.integers(0, N - 1))
    def crash(self, p: int) -> None:
        self.crashed.add(p)
        self.pool = [(s, d, m) for s, d, m in self.pool if d != p]

    @precondition(lambda self: bool(self.crashed))
    @rule()
    def restart(self) -> None:
        p = self.crashed.pop()
        record = self.records[p]
        assert record is not None
        core = self._make(p)
        self.cores[p] = core
        self._apply(p, core.resume(record, 0.0))

    @invariant()
    def safe(self) -> None:
        assert not self.problems, self.problems
        assert len(set(self.decisions.values())) <= 1, self.decisions
        for p, core in enumerate(self.cores):
            assert all(len(h) >= N - F and p in h for h in core.trace), core.trace
            assert core.counters["conflicting_duplicate"] == 0


TestRoundsMachine = RoundsMachine.TestCase
TestRoundsMachine.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
