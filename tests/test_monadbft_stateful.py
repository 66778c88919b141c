"""Hypothesis chooses the faults: runs of events, time jumps, partitions, loss, a crash and a restart
of one node; the invariant checker (safety) must stay green after every rule, and once the network
heals and the node is back, the cluster must finalize again. A failure prints its seed."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hedgerow.testnet.sim.engine import Network, Node, uniform_delay
from hedgerow.testnet.sim.monadbft_harness import MonadSim, Setup


class MonadCluster(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mon: MonadSim | None = None
        self.down: Node | None = None

    @initialize(seed=st.integers(0, 2**31))
    def boot(self, seed: int) -> None:
        self.seed = seed
        network = Network(delay=uniform_delay(1, 60), gst_ms=10**12)
        self.mon = MonadSim(seed, Setup(network=network))
        self.mon.start()

    @property
    def sim(self) -> MonadSim:
        assert self.mon is not None
        return self.mon

    @rule(events=st.integers(1, 80))
    def run_events(self, events: int) -> None:
        self.sim.sim.run(max_steps=self.sim.sim.steps + events)

    @rule(ms=st.integers(1, 1500))
    def advance(self, ms: int) -> None:
        self.sim.run_for(ms, max_steps=self.sim.sim.steps + 5000)

    @rule(side=st.sets(st.integers(0, 3), min_size=1, max_size=3))
    def partition(self, side: set[int]) -> None:
        self.sim.sim.partition = [side, {0, 1, 2, 3} - side]

    @rule()
    def heal(self) -> None:
        self.sim.sim.partition = None

    @rule(loss=st.sampled_from([0.0, 0.2, 0.5]), jitter=st.sampled_from([0, 200, 500]))
    def weather(self, loss: float, jitter: int) -> None:
        self.sim.sim.network.loss = loss
        self.sim.sim.network.jitter_ms = jitter

    @precondition(lambda self: self.down is None)
    @rule(victim=st.integers(0, 3))
    def crash(self, victim: int) -> None:
        self.down = self.sim.nodes[victim]
        self.sim.sim.crash(self.down)

    @precondition(lambda self: self.down is not None)
    @rule()
    def restart(self) -> None:
        assert self.down is not None
        self.sim.restart_now(self.down)
        self.down = None

    @invariant()
    def safe(self) -> None:
        if self.mon is None:
            return
        bad = [v for v in self.sim.checker.violations if v.invariant != "liveness"]
        assert not bad, f"seed={self.seed} step={self.sim.sim.steps}: {bad[:3]}"

    def teardown(self) -> None:
        if self.mon is None:
            return
        if self.down is not None:
            self.restart()
        self.heal()
        self.sim.sim.network.loss = 0.0
        self.sim.sim.network.jitter_ms = 0
        before = self.sim.summary()["finalized"]
        self.sim.run_for(8000, max_steps=self.sim.sim.steps + 100_000)
        bad = [v for v in self.sim.finish() if v.invariant != "liveness"]
        assert not bad, f"seed={self.seed}: {bad[:3]}"
        assert self.sim.summary()["finalized"] > before, f"seed={self.seed}: no progress after healing"


TestMonadCluster = MonadCluster.TestCase
TestMonadCluster.settings = settings(max_examples=10, stateful_step_count=20, deadline=None)
