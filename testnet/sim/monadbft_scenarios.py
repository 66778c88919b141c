"""MonadBFT scenarios S1-S12 (spec §9): each runs one seed and checks what the spec says it must
produce, on top of the invariant checker that watches every step."""

from __future__ import annotations

from typing import Any

from hedgerow.protocols.actions import Broadcast, Send
from hedgerow.protocols.monadbft import (
    NEC,
    QC,
    TC,
    AdvanceRound,
    BlockResponse,
    NoTipCert,
    Params,
    Proposal,
    RoundRecovery,
    TimeoutMsg,
    VoteMsg,
    build_tc,
)
from hedgerow.protocols.monadbft.messages import Header, payload_hash_of
from hedgerow.protocols.monadbft.txpool import tx_hash
from hedgerow.protocols.wire import encode
from hedgerow.testnet.sim.byzantine import DoubleVoter, Equivocator, SilentLeader, Wrapper, sign_timeout
from hedgerow.testnet.sim.engine import Network, Node, fixed_delay
from hedgerow.testnet.sim.monadbft_harness import MonadSim, Setup
from hedgerow.testnet.sim.scenario_kit import (
    A,
    B,
    C,
    D,
    Expect,
    LatencyProbe,
    Outcome,
    finalized_at,
    outcome,
    reached,
    rule,
    snapshot_on_entry,
)

DELAY_MS = 10
STEPS_DEFAULT = 5_000_000


def base_setup(n: int = 4, **params: Any) -> Setup:
    """The spec's scenario defaults: δ = 100, lp = 100, vote_pace 0, link delay d = 10 ms."""
    settings: dict[str, Any] = {"delta_ms": 100, "local_processing_ms": 100, "vote_pace_ms": 0}
    settings.update(params)
    return Setup(n=n, params=Params(**settings), network=Network(delay=fixed_delay(DELAY_MS)))


def merge(primary: Outcome, *others: Outcome, prefix: str = "") -> Outcome:
    for other in others:
        primary.violations.extend(dict(v, variant=other.scenario) for v in other.violations)
        primary.failed.extend(f"[{other.scenario}] {line}" for line in other.failed)
        primary.notes[other.scenario] = other.summary
    return primary


# --------------------------------------------------------------------------------------- S1
def s1_happy(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    n = nodes or 4
    runs = []
    for pace in (0, 100):
        mon = MonadSim(seed, base_setup(n, vote_pace_ms=pace))
        probe = LatencyProbe(mon)
        mon.start()
        target = 201
        how = mon.run_to_round(target, max_steps=steps or STEPS_DEFAULT)
        expect = Expect()
        reached(expect, mon, how, target)
        expect.eq("round-timer firings", len(mon.timer_firings), 0)
        expect.ge("finalized", mon.summary()["finalized"], target - 3)
        intervals = probe.intervals(5, target - 5)
        want_interval = 2 * DELAY_MS if pace == 0 else pace
        expect.true(
            bool(intervals) and set(intervals) == {want_interval},
            f"round interval {sorted(set(intervals))} ms, want exactly {want_interval}",
        )
        notes: dict[str, Any] = {"round_interval_ms": sorted(set(intervals))}
        if pace == 0:
            voted = {tuple(row) for row in probe.latencies(probe.voted, 5, target - 5)}
            final = {tuple(row) for row in probe.latencies(probe.final, 5, target - 5)}
            want_voted = tuple([2 * DELAY_MS] * 2 + [3 * DELAY_MS] * (n - 2))
            want_final = tuple([4 * DELAY_MS] * 2 + [5 * DELAY_MS] * (n - 2))
            expect.eq("proposal->VOTED latencies (ms, per node)", voted, {want_voted})
            expect.eq("proposal->FINALIZED latencies (ms, per node)", final, {want_final})
            per_round = mon.summary()["messages"] / max(1, mon.max_round())
            expect.le("messages per happy round", per_round, 5 * (n - 1))
            notes.update(
                voted_latency_ms=sorted(voted),
                final_latency_ms=sorted(final),
                messages_per_round=round(per_round, 2),
            )
        runs.append(outcome("s1-happy" if pace == 0 else "s1-happy/vote-pace-100", seed, mon, expect, notes))
    return merge(runs[0], runs[1])


# --------------------------------------------------------------------------------------- S2, S3, S12
def crashed_leader_run(
    name: str,
    seed: int,
    n: int,
    steps: int | None,
    *,
    silent: bool,
    fast_recovery: bool = True,
    target: int = 101,
) -> tuple[MonadSim, Expect, dict[str, Any]]:
    setup = base_setup(n, fast_recovery=fast_recovery)
    faulty = n - 1
    if silent:
        setup.wrappers[faulty] = SilentLeader
    else:
        setup.not_started.add(faulty)
    mon = MonadSim(seed, setup)
    after_tc: list[Proposal] = []

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if (
            isinstance(action, Broadcast)
            and isinstance(message, Proposal)
            and node.honest
            and message.last_round_tc is not None
        ):
            after_tc.append(message)

    mon.sim.action_observers.append(observe)
    mon.start()
    how = mon.run_to_round(target, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, target)
    return mon, expect, {"after_tc": after_tc, "faulty": faulty}


def _s2_like(name: str, seed: int, nodes: int | None, steps: int | None, silent: bool) -> Outcome:
    n = nodes or 4
    target = 101
    mon, expect, extra = crashed_leader_run(name, seed, n, steps, silent=silent, target=target)
    faulty = extra["faulty"]
    want = {r for r in range(1, target + 1) if mon.leader(r) == faulty}
    tcs = {r for r in mon.tc_rounds if r <= target}
    expect.eq("TC rounds", sorted(tcs), sorted(want))
    fresh = all(
        p.tip.header.block_round == p.proposal_round and isinstance(p.tip.fresh_cert, NoTipCert)
        for p in extra["after_tc"]
    )
    expect.true(fresh, "every round after a TC is a fresh block with a NoTipCert")
    summary = mon.summary()
    expect.eq("re-proposals", summary["reproposals"], 0)
    expect.eq("NECs", summary["necs"], 0)
    expect.ge("finalized", summary["finalized"], 72 if n == 4 else (target - 3 * len(want)) - 3)
    return outcome(name, seed, mon, expect, {"tc_rounds": len(tcs)})


def s2_crashed_leader(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    return _s2_like("s2-crashed-leader", seed, nodes, steps, silent=False)


def s3_silent_leader(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    return _s2_like("s3-silent-leader", seed, nodes, steps, silent=True)


def s12_fast_recovery_ab(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    n = nodes or 4
    outs = []
    for fast in (True, False):
        name = "s12-fast-recovery-ab" + ("" if fast else "/off")
        mon, expect, _ = crashed_leader_run(name, seed, n, steps, silent=False, fast_recovery=fast)
        summary = mon.summary()
        tcs = len({r for r in mon.tc_rounds if r <= 101})
        authors_c = {r for r in mon.reproposal_rounds}
        if fast:
            expect.eq("TCs (on)", tcs, 25)
            expect.eq("re-proposals (on)", summary["reproposals"], 0)
        else:
            expect.within("TCs (off)", tcs, 50, 1)
            expect.within("re-proposals (off)", len(authors_c), 25, 1)
        outs.append(outcome(name, seed, mon, expect, {"tcs": tcs, "reproposals": summary["reproposals"]}))
    return merge(outs[0], outs[1])


# --------------------------------------------------------------------------------------- S4
def s4_equivocating_leader(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    setup = base_setup(4)
    setup.wrappers[D] = lambda core: Equivocator(core, first=(A, B), second=(C, A), rounds={3}, vote=False)
    mon = MonadSim(seed, setup)
    liar: Equivocator = mon.nodes[D].core
    log_proposals(mon)

    def b2_to_a_late(a: Node, b: Node, message: object) -> bool:
        pair = liar.siblings.get(3)
        return pair is not None and isinstance(message, Proposal) and message.tip.block_id == pair[1]

    rule(mon, src=[D], dst=[A], kinds=["proposal"], when=b2_to_a_late, delay_ms=5)
    tc3 = snapshot_on_entry(mon, 3, lambda node: _extend_id(mon.core(node).high_cert, 3))
    final6 = snapshot_on_entry(mon, 6, lambda node: finalized_at(mon, node.iid))
    evidence6 = snapshot_on_entry(mon, 6, lambda node: set(mon.evidence_at[node.iid]))
    mon.start()
    how = mon.run_to_round(10, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 10)
    b1, b2 = liar.siblings.get(3, (b"", b""))
    held = mon.evidence_at[A]
    expect.true(
        ("EQUIVOCATION_PROPOSAL", D, 3) in held and ("EQUIVOCATION_HEADER", D, 3) in held,
        "A holds EQUIVOCATION_PROPOSAL and EQUIVOCATION_HEADER against (D, 3)",
    )
    expect.true(3 not in mon.qcs_seen, "no QC(3)")
    honest = [n.iid for n in mon.nodes if n.honest]
    expect.true(all(tc3.get(i) == b1 for i in honest), "every TC(3) picks B1")
    expect.true(any(p == (4, b1) for p in _proposals(mon, A)), "A re-proposes B1 in round 4")
    expect.true(
        all(len(final6.get(i, [])) >= 3 and final6[i][2] == b1 for i in honest),
        "B1 final at height 3 by round 6",
    )
    expect.true(all(b2 not in ids for ids in mon.qcs_seen.values()), "B2 never certified")
    expect.true(
        all(
            ("EQUIVOCATION_HEADER", D, 3) in evidence6.get(i, set())
            or ("EQUIVOCATION_PROPOSAL", D, 3) in evidence6.get(i, set())
            for i in honest
        ),
        "evidence against (D, 3) at every honest node by round 6",
    )
    expect.true(b1 not in mon.voted_ids and b2 not in mon.voted_ids, "no VOTED for B1 or B2")
    expect.eq("reverts", mon.summary()["reverts"], 0)
    return outcome("s4-equivocating-leader", seed, mon, expect)


def _extend_id(cert: QC | TC, round_: int) -> bytes | None:
    if isinstance(cert, TC) and cert.round == round_:
        extend = cert.high_extend
        return extend.block_id if not isinstance(extend, QC) else b"qc:" + extend.block_id
    return None


def _proposals(mon: MonadSim, validator: int) -> list[tuple[int, bytes]]:
    return mon.__dict__.setdefault("_proposal_log", {}).get(validator, [])


def log_proposals(mon: MonadSim) -> None:
    log: dict[int, list[tuple[int, bytes]]] = mon.__dict__.setdefault("_proposal_log", {})

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if isinstance(message, Proposal) and message.proposer == node.validator:
            entry = (message.proposal_round, message.tip.block_id)
            if entry not in log.setdefault(node.validator, []):
                log[node.validator].append(entry)

    mon.sim.action_observers.append(observe)


# --------------------------------------------------------------------------------------- S5
class S5Forker(Wrapper):
    """D as in S5: withholds QC(2), then proposes B' (round 3, parent QC(1), txs reversed)."""

    name = "tail-forker"

    def __init__(self, inner: Any, variant: str) -> None:
        super().__init__(inner)
        self.variant = variant
        self.b2: Proposal | None = None
        self.timeouts: dict[int, TimeoutMsg] = {}
        self.own: TimeoutMsg | None = None
        self.fork_id: bytes | None = None

    def incoming(self, sender: int, message: object, now: int) -> bool:
        if isinstance(message, Proposal) and message.proposal_round == 2:
            self.b2 = message
        if isinstance(message, TimeoutMsg) and message.info.round == 2 and message.signer in (A, B):
            self.timeouts[message.signer] = message
        return True

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        out = []
        for action in actions:
            vote = self.own_vote(action)
            proposal = self.own_proposal(action)
            message = getattr(action, "message", None)
            if vote is not None and vote.vote.round == 2:
                continue
            if proposal is not None and proposal.proposal_round == 3 or isinstance(message, AdvanceRound):
                continue
            out.append(action)
        core = self.inner
        if self.b2 is None or core.current_round < 3 or self.fork_id is not None:
            return out
        qc1 = self.b2.tip.header.parent_qc
        if self.variant != "a" and self.own is None:
            self.own = sign_timeout(core, 2, qc1, None)
            out.extend(Send(v, self.own) for v in (A, B))
        if self.variant != "a" and len(self.timeouts) < 2:
            return out
        txs = tuple(reversed(self.b2.txs))
        header = Header(3, qc1, core.index, self.b2.tip.header.height, now, payload_hash_of(txs))
        tc = None
        fresh_cert: Any = None
        if self.variant != "a":
            assert self.own is not None
            tc = build_tc(2, {**self.timeouts, core.index: self.own})
            if self.variant == "c":
                tc = TC(tc.round, tc.groups, qc1)
                fresh_cert = NoTipCert(tc.round, tc.groups, qc1)
        fork = self.sign_proposal(3, header, fresh_cert, txs, tc)
        self.fork_id = fork.tip.block_id
        out.append(Broadcast(fork))
        return out


def s5_tail_fork(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    outs = []
    reasons = {"a": "malformed_proposal", "b": "malformed_proposal", "c": "invalid_tc"}
    for variant in ("a", "b", "c"):
        setup = base_setup(4)
        setup.tx_interval_ms = 0
        setup.wrappers[D] = lambda core, variant=variant: S5Forker(core, variant)
        mon = MonadSim(seed, setup)
        forker: S5Forker = mon.nodes[D].core
        txs = [f"x{i}".encode() for i in range(1, 6)]
        for tx in txs:
            mon.checker.submitted(tx_hash(tx))
            mon.core(mon.nodes[C]).pool.add(tx)
        rule(mon, src=[C], dst=[A, B], kinds=["advance"])
        final7 = snapshot_on_entry(mon, 7, lambda node, mon=mon: finalized_at(mon, node.iid))
        mon.start()
        how = mon.run_to_round(8, max_steps=steps or STEPS_DEFAULT)
        expect = Expect()
        reached(expect, mon, how, 8)
        honest = [mon.nodes[i] for i in (A, B, C)]
        b2 = forker.b2.tip.block_id if forker.b2 is not None else b""
        expect.true(forker.fork_id is not None, "D proposed B'")
        expect.true(
            all(mon.core(n).stats.get(reasons[variant]) >= 1 for n in honest),
            f"B' rejected by every honest node as {reasons[variant]}",
        )
        expect.true(
            all(not mon.core(n).tree.has(forker.fork_id or b"") for n in honest), "B' in no honest tree"
        )
        expect.true(
            any(getattr(d, "kind", "") == "VOTED" and d.block.block_id == b2 for d in mon.deliveries[C]),
            "C: VOTED(B_2)",
        )
        ok = all(len(final7.get(n.iid, [])) >= 2 and final7[n.iid][1] == b2 for n in honest)
        expect.true(ok, "B_2 final at height 2 by round 7")
        expect.true(forker.b2 is not None and list(forker.b2.txs) == txs, "B_2 carries x1..x5 in order")
        expect.eq("reverts", mon.summary()["reverts"], 0)
        outs.append(outcome(f"s5-tail-fork/{variant}", seed, mon, expect))
    first = outs[0]
    first.scenario = "s5-tail-fork"
    return merge(first, *outs[1:])


# --------------------------------------------------------------------------------------- S6
def s6_double_vote(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    setup = base_setup(4)
    forged = bytes((seed * 7 + i) % 256 for i in range(32))
    setup.wrappers[D] = lambda core: DoubleVoter(core, rounds={2}, forged_id=forged)
    mon = MonadSim(seed, setup)
    rule(mon, src=[A, B], dst=[C], kinds=["vote"], rounds=[2], delay_ms=5)
    qc2_signers: list[tuple[int, ...]] = []

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if (
            node.validator == C
            and isinstance(message, AdvanceRound)
            and isinstance(message.cert, QC)
            and message.cert.round == 2
        ):
            qc2_signers.append(message.cert.signers)

    mon.sim.action_observers.append(observe)
    evidence4 = snapshot_on_entry(mon, 4, lambda node: set(mon.evidence_at[node.iid]))
    mon.start()
    how = mon.run_to_round(8, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 8)
    key = ("DOUBLE_VOTE", D, 2)
    expect.true(key in mon.evidence_at[C], "C holds DOUBLE_VOTE against (D, 2)")
    expect.true(
        all(key in evidence4.get(i, set()) for i in (A, B, C)), "DOUBLE_VOTE at every honest node by round 4"
    )
    expect.true(bool(qc2_signers) and D in qc2_signers[0], "C's QC(2) counts D's first vote")
    expect.eq("timeouts", mon.summary()["timeouts"], 0)
    return outcome("s6-double-vote", seed, mon, expect)


# --------------------------------------------------------------------------------------- S7
class S7Hider(Wrapper):
    """D in S7: signs B_3 but never sends or serves it; times out 10 ms into round 3."""

    name = "hider"

    def __init__(self, inner: Any, early_ms: int = 10) -> None:
        super().__init__(inner)
        self.hidden: bytes | None = None
        self.early_ms = early_ms

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        from hedgerow.protocols.actions import SetTimer

        out = []
        for action in actions:
            proposal = self.own_proposal(action)
            vote = self.own_vote(action)
            message = getattr(action, "message", None)
            if proposal is not None and proposal.proposal_round == 3:
                self.hidden = proposal.tip.block_id
                continue
            if vote is not None and vote.vote.round == 3:
                continue
            if isinstance(message, BlockResponse) and any(b.block_id == self.hidden for b in message.blocks):
                continue
            if isinstance(action, SetTimer) and action.timer == ("round", 3):
                action = SetTimer(action.timer, now + self.early_ms)
            out.append(action)
        return out


def s7_setup(seed: int, **params: Any) -> tuple[MonadSim, S7Hider]:
    setup = base_setup(4, **params)
    setup.wrappers[D] = S7Hider
    mon = MonadSim(seed, setup)
    return mon, mon.nodes[D].core


def s7_check(mon: MonadSim, hider: S7Hider, expect: Expect, probes: dict[str, dict[int, Any]]) -> None:
    honest = [n.iid for n in mon.nodes if n.honest]
    expect.true(hider.hidden is not None, "D signed B_3")
    expect.true(
        all(probes["tc3"].get(i) == hider.hidden for i in honest),
        "every honest TC(3) has high extend Tip B_3",
    )
    recoveries = mon.counts.get("recoveries", 0)
    expect.eq("RoundRecovery messages", recoveries, 1)
    round4 = [p for p in mon.__dict__.get("_round4", [])]
    ok = (
        len(round4) == 1
        and isinstance(round4[0].tip.fresh_cert, NEC)
        and round4[0].tip.fresh_cert.signers == (A, B, C)
        and round4[0].tip.header.parent_qc.round == 2
    )
    expect.true(ok, "round 4: a fresh block on QC(2) with NEC(A, B, C)")
    expect.true(not any(r == 4 for _, r, _ in mon.timer_firings), "no honest round-4 timer fires")
    expect.true(all(hider.hidden not in ids for ids in mon.qcs_seen.values()), "B_3 never certified")
    expect.eq("reverts", mon.summary()["reverts"], 0)
    block4 = round4[0].tip.block_id if round4 else b""
    expect.true(all(block4 in probes["final6"].get(i, []) for i in honest), "round-4 block final by round 6")


def watch_s7(mon: MonadSim) -> dict[str, dict[int, Any]]:
    round4: list[Proposal] = mon.__dict__.setdefault("_round4", [])

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if (
            isinstance(message, RoundRecovery)
            and message.proposer == node.validator
            and isinstance(action, Broadcast)
        ):
            mon.counts["recoveries"] = mon.counts.get("recoveries", 0) + 1
        if (
            isinstance(message, Proposal)
            and message.proposal_round == 4
            and isinstance(action, Broadcast)
            and node.honest
            and message not in round4
        ):
            round4.append(message)

    mon.sim.action_observers.append(observe)
    return {
        "tc3": snapshot_on_entry(mon, 3, lambda node: _extend_id(mon.core(node).high_cert, 3)),
        "final6": snapshot_on_entry(mon, 6, lambda node: finalized_at(mon, node.iid)),
    }


def s7_hidden_tip(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, hider = s7_setup(seed)
    probes = watch_s7(mon)
    mon.start()
    how = mon.run_to_round(8, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 8)
    s7_check(mon, hider, expect, probes)
    return outcome("s7-hidden-tip", seed, mon, expect)


# --------------------------------------------------------------------------------------- S8
class S8Liar(Wrapper):
    """D in S8: B1 -> A, C and B2 -> B in round 3, votes B1, withholds QC(3), and reports Tip B2 in
    its round-3 and round-4 timeouts; honest from round 5."""

    name = "equivocator"

    def __init__(self, inner: Any, round_timer_ms: int) -> None:
        super().__init__(inner)
        self.round_timer_ms = round_timer_ms
        self.b1: Proposal | None = None
        self.b2: Proposal | None = None
        self.entered3: int | None = None
        self.t3: TimeoutMsg | None = None
        self.t4: TimeoutMsg | None = None
        self.others3: dict[int, TimeoutMsg] = {}
        self.inner_t4 = False

    def incoming(self, sender: int, message: object, now: int) -> bool:
        if isinstance(message, TimeoutMsg) and message.info.round == 3 and message.signer != self.inner.index:
            self.others3.setdefault(message.signer, message)
        return True

    def on_timer(self, timer: Any, now: int) -> list[Any]:
        if timer == ("byz", 3):
            assert self.b2 is not None
            self.t3 = sign_timeout(self.inner, 3, self.b2.tip, None)
            return self._maybe_t4([Broadcast(self.t3)])
        return self.outgoing(self.inner.on_timer(timer, now), now)

    def _maybe_t4(self, out: list[Any]) -> list[Any]:
        if (
            self.t4 is None
            and self.inner_t4
            and self.t3 is not None
            and len(self.others3) >= 2
            and self.b2 is not None
        ):
            tc3 = build_tc(3, {**dict(list(self.others3.items())[:2]), self.inner.index: self.t3})
            self.t4 = sign_timeout(self.inner, 4, self.b2.tip, tc3)
            out.append(Broadcast(self.t4))
        return out

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        from hedgerow.protocols.actions import SetTimer

        out: list[Any] = []
        core = self.inner
        for action in actions:
            message = getattr(action, "message", None)
            proposal = self.own_proposal(action)
            if proposal is not None and proposal.proposal_round == 3 and isinstance(action, Broadcast):
                self.b1 = proposal
                self.b2 = self.sibling(proposal)
                out.extend(Send(v, proposal) for v in (A, C))
                out.append(Send(B, self.b2))
                continue
            if isinstance(message, AdvanceRound) and core.current_round <= 5:
                continue
            if (
                isinstance(message, TimeoutMsg)
                and message.signer == core.index
                and message.info.round in (3, 4)
            ):
                if message.info.round == 4:
                    self.inner_t4 = True
                continue
            if isinstance(action, SetTimer) and action.timer == ("round", 3) and self.entered3 is None:
                self.entered3 = now
                out.append(SetTimer(("byz", 3), now + self.round_timer_ms))
            out.append(action)
        return self._maybe_t4(out)


def s8_speculative_revert(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    setup = base_setup(4)
    setup.wrappers[D] = lambda core: S8Liar(core, setup.params.round_timer_ms)
    mon = MonadSim(seed, setup)
    liar: S8Liar = mon.nodes[D].core
    log_proposals(mon)
    rule(mon, src=[A], rounds=[4])
    tcs = {
        r: snapshot_on_entry(mon, r, lambda node, r=r: _extend_id(mon.core(node).high_cert, r))
        for r in (3, 4)
    }
    final6 = snapshot_on_entry(mon, 6, lambda node: finalized_at(mon, node.iid))
    mon.start()
    how = mon.run_to_round(9, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 9)
    b1 = liar.b1.tip.block_id if liar.b1 else b""
    b2 = liar.b2.tip.block_id if liar.b2 else b""
    voted_a = [d.block.block_id for d in mon.deliveries[A] if getattr(d, "kind", "") == "VOTED"]
    expect.true(b1 in voted_a, "A: VOTED(B1)")
    expect.true(all(tcs[3].get(i) == b2 for i in (B, C)), "TC(3) at B, C picks B2")
    expect.true(all(tcs[4].get(i) == b2 for i in (B, C)), "TC(4) at B, C picks B2")
    expect.true((5, b2) in _proposals(mon, B), "B re-proposes B2 in round 5")
    expect.true(
        all(len(final6.get(i, [])) >= 3 and final6[i][2] == b2 for i in (A, B, C)),
        "B2 final at height 3 by round 6",
    )
    reverts = [d.block.block_id for d in mon.deliveries[A] if getattr(d, "kind", "") == "SPEC_REVERT"]
    expect.eq("A's SPEC_REVERTs", reverts, [b1])
    expect.true(
        ("EQUIVOCATION_HEADER", D, 3) in mon.evidence_at[A], "A holds EQUIVOCATION_HEADER against (D, 3)"
    )
    expect.eq("reverts elsewhere", mon.summary()["reverts"], 1)
    return outcome("s8-speculative-revert", seed, mon, expect)


# --------------------------------------------------------------------------------------- S9
def s9_crash_restart(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, base_setup(4))
    node_b = mon.nodes[B]
    state: dict[str, Any] = {"crashed_a": False, "crashed_b": False, "restarts": []}
    votes5: list[tuple[int, bytes]] = []
    timeouts9: list[bytes] = []

    def hook(node: Node, record: Any) -> bool:
        from hedgerow.protocols.monadbft import Checkpoint

        if (
            node is node_b
            and not state["crashed_a"]
            and isinstance(record, Checkpoint)
            and record.highest_vote == 5
            and 5 in record.my_votes
            and record.last_vote is not None
        ):
            state["crashed_a"] = True
            mon.restart_at(node_b, mon.sim.now + 50)
            return True
        return False

    def restart_probe() -> None:
        state["restarts"].append(
            (
                mon.sim.now,
                mon.core(node_b).current_round,
                mon.core(node_b).phase_one,
                mon.core(mon.nodes[A]).finalized_height,
            )
        )

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if node is not node_b:
            return
        if isinstance(message, VoteMsg) and message.vote.round == 5 and message.signer == B:
            votes5.append((mon.sim.now, encode(message)))
        if isinstance(message, TimeoutMsg) and message.info.round == 9 and message.signer == B:
            timeouts9.append(encode(message))
            if not state["crashed_b"]:
                state["crashed_b"] = True
                mon.crash_at(node_b, mon.sim.now)
                mon.restart_at(node_b, mon.sim.now + 50)

    mon.sim.persist_hook = hook
    mon.sim.action_observers.append(observe)
    original_restart = mon.restart_now

    def restart_now(node: Node) -> None:
        original_restart(node)
        restart_probe()

    mon.restart_now = restart_now  # type: ignore[method-assign]
    rule(mon, kinds=["proposal"], when=lambda a, b, m: isinstance(m, Proposal) and m.proposal_round == 9)
    mon.start()
    how = mon.run_to_round(30, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 30)
    restarts = state["restarts"]
    expect.eq("restarts", len(restarts), 2)
    expect.true(
        len({v for _, v in votes5}) == 1 and any(t >= restarts[0][0] for t, _ in votes5)
        if restarts
        else False,
        "(a) B's round-5 vote re-sent with the same bytes, no new round-5 vote",
    )
    expect.true(
        len(set(timeouts9)) == 1 and len(timeouts9) >= 2, "(b) B's round-9 timeout re-sent byte-identical"
    )
    expect.true(
        len(restarts) == 2 and restarts[1][1] == 9 and restarts[1][2], "(b) B restarts in round 9, phase ONE"
    )
    ids_a, ids_b = finalized_at(mon, A), finalized_at(mon, B)
    expect.true(
        ids_b == ids_a[: len(ids_b)] and len(ids_a) - len(ids_b) <= 1, "B's finalized prefix equals A's"
    )
    return outcome("s9-crash-restart", seed, mon, expect, {"restarts": [r[:2] for r in restarts]})


# --------------------------------------------------------------------------------------- S10
def s10_partition_heal(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, base_setup(4))
    mon.sim.partition = [{A, B, C}, {D}]
    heal: dict[str, Any] = {}
    batches: list[int] = []

    def hook(node: Node, old: int, new: int) -> None:
        if node.iid == A and new >= 101 and "round" not in heal:
            heal.update(
                round=new,
                time=mon.sim.now,
                d_round=mon.core(mon.nodes[D]).current_round,
                a_height=mon.core(node).finalized_height,
            )
            mon.sim.partition = None
        if node.iid == A and "round" in heal:
            if new >= heal["round"] + 3 and "d3" not in heal:
                heal["d3"] = (mon.core(mon.nodes[D]).current_round, new)
            if new >= heal["round"] + 20 and "h20" not in heal:
                heal["h20"] = mon.core(mon.nodes[D]).finalized_height

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if isinstance(message, BlockResponse) and isinstance(action, Send) and action.to == D:
            batches.append(len(message.blocks))

    mon.round_hooks.append(hook)
    mon.sim.action_observers.append(observe)
    mon.start()
    how = mon.run_to_round(151, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 151)
    expect.eq("TCs at A, B, C in rounds 1..100", len({r for r in mon.tc_rounds if r <= 100}), 25)
    expect.eq("D's round at heal", heal.get("d_round"), 1)
    d3 = heal.get("d3", (0, 1))
    expect.true(
        d3[0] >= d3[1] - 1, f"D in the current round within 3 rounds of the heal (D {d3[0]}, A {d3[1]})"
    )
    expect.ge("D's finalized height 20 rounds after heal", heal.get("h20", 0), heal.get("a_height", 1))
    expect.true(
        bool(batches) and max(batches) <= 64 and max(batches) > 1,
        f"sync batches <= 64 (max {max(batches or [0])})",
    )
    return outcome("s10-partition-heal", seed, mon, expect, {"sync_batches": len(batches)})


# --------------------------------------------------------------------------------------- S11
def s11_larger(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    n = nodes or 7
    f = (n - 1) // 3
    mon = MonadSim(seed, base_setup(n))
    mon.start()
    how = mon.run_to_round(100, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 100)
    expect.eq("(a) timeouts", mon.summary()["timeouts"], 0)
    expect.ge("(a) finalized", mon.summary()["finalized"], 98)
    happy = outcome("s11-larger", seed, mon, expect, {"n": n})
    setup = base_setup(n)
    setup.not_started = set(range(n - f, n))
    mon2 = MonadSim(seed, setup)
    mon2.start()
    how = mon2.run_to_round(100, max_steps=steps or STEPS_DEFAULT)
    expect2 = Expect()
    reached(expect2, mon2, how, 100)
    want = {r for r in range(1, 101) if mon2.leader(r) in setup.not_started}
    expect2.eq("(b) TC rounds", sorted(r for r in mon2.tc_rounds if r <= 100), sorted(want))
    return merge(happy, outcome("s11-larger/crashed", seed, mon2, expect2))
