"""MonadBFT scenarios S13-S21 (spec §9): regressions, restarts in view changes, recovery timing,
round jumps, storms, Byzantine pairs, unequal stake."""

from __future__ import annotations

from typing import Any

from hedgerow.protocols.actions import Send
from hedgerow.protocols.monadbft import (
    NEC,
    QC,
    TC,
    AdvanceRound,
    BlockRequest,
    BlockResponse,
    NoEndorseMsg,
    Proposal,
    RoundRecovery,
    TimeoutMsg,
    VoteMsg,
    build_tc,
)
from hedgerow.protocols.wire import encode
from hedgerow.testnet.sim.byzantine import EagerTimeoutSilentLeader, Equivocator, Wrapper, sign_timeout
from hedgerow.testnet.sim.engine import TIMER, Network, Node, fixed_delay, uniform_delay
from hedgerow.testnet.sim.monadbft_harness import MonadSim
from hedgerow.testnet.sim.monadbft_scenarios import (
    STEPS_DEFAULT,
    _extend_id,
    _proposals,
    base_setup,
    log_proposals,
    merge,
    s7_setup,
)
from hedgerow.testnet.sim.scenario_kit import (
    A,
    B,
    C,
    D,
    Expect,
    Outcome,
    finalized_at,
    outcome,
    reached,
    rule,
    snapshot_on_entry,
)


# --------------------------------------------------------------------------------------- S13
class S13Withholder(Wrapper):
    """D in S13: withholds QC(T, 2), reports QC(1) to A and B in rounds 2 and 3, and hands C a
    TC(3) built from A's, B's and its own round-3 timeouts; honest from round 4."""

    name = "withholder"

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.qc1: QC | None = None
        self.t2: TimeoutMsg | None = None
        self.t3: TimeoutMsg | None = None
        self.others: dict[int, dict[int, TimeoutMsg]] = {2: {}, 3: {}}
        self.advanced = False

    def incoming(self, sender: int, message: object, now: int) -> bool:
        if isinstance(message, Proposal) and message.proposal_round == 2:
            self.qc1 = message.tip.header.parent_qc
        if isinstance(message, TimeoutMsg) and message.info.round in (2, 3) and message.signer in (A, B):
            self.others[message.info.round].setdefault(message.signer, message)
        return True

    def outgoing(self, actions: list[Any], now: int) -> list[Any]:
        out: list[Any] = []
        core = self.inner
        for action in actions:
            message = getattr(action, "message", None)
            if not self.advanced and (
                isinstance(message, VoteMsg | AdvanceRound) or self.own_proposal(action)
            ):
                continue
            if isinstance(message, TimeoutMsg) and message.signer == core.index and message.info.round <= 3:
                continue
            out.append(action)
        if self.qc1 is None or core.current_round < 3:
            return out
        if self.t2 is None:
            self.t2 = sign_timeout(core, 2, self.qc1, None)
            out.extend(Send(v, self.t2) for v in (A, B))
        if self.t3 is None and len(self.others[2]) == 2:
            tc2 = build_tc(2, {**self.others[2], core.index: self.t2})
            self.t3 = sign_timeout(core, 3, self.qc1, tc2)
            out.extend(Send(v, self.t3) for v in (A, B))
        if not self.advanced and self.t3 is not None and len(self.others[3]) == 2:
            tc3 = build_tc(3, {**self.others[3], core.index: self.t3})
            out.append(Send(C, AdvanceRound(tc3)))
            self.advanced = True
        return out


def s13_stale_report(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    setup = base_setup(4)
    setup.wrappers[D] = S13Withholder
    mon = MonadSim(seed, setup)
    liar: S13Withholder = mon.nodes[D].core
    state = {"c_timer4": False}
    log_proposals(mon)

    def c_timer(node: Node, kind: int, payload: Any) -> None:
        if (
            node.validator == C
            and kind == TIMER
            and payload == ("round", 4)
            and mon.core(node).current_round == 4
        ):
            state["c_timer4"] = True

    mon.sim.pre_observers.append(c_timer)
    c_core = mon.core(mon.nodes[C])
    cut = lambda: c_core.high_qc.round >= 2 and not state["c_timer4"]  # noqa: E731
    rule(mon, src=[C], dst=[A, B], active=cut)
    rule(mon, src=[A, B], dst=[C], active=cut)
    rule(
        mon,
        src=[D],
        dst=[C],
        when=lambda a, b, m: (
            not (isinstance(m, AdvanceRound) and isinstance(m.cert, TC) and m.cert.round == 3)
        ),
        active=lambda: liar.advanced and not state["c_timer4"],
    )
    c_timeouts: list[TimeoutMsg] = []
    entry4: dict[str, Any] = {}

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if node.validator == C and isinstance(message, TimeoutMsg) and message.info.round == 4:
            c_timeouts.append(message)

    def hook(node: Node, old: int, new: int) -> None:
        if node.validator == C and new == 4 and old < 4:
            entry4.update(cert=mon.core(node).high_cert, via=mon.entered_via.get((node.iid, 4)))

    mon.sim.action_observers.append(observe)
    mon.round_hooks.append(hook)
    final7 = snapshot_on_entry(mon, 7, lambda node: finalized_at(mon, node.iid))
    mon.start()
    how = mon.run_to_round(16, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 16)
    t_id = next((bid for r, bid in _proposals(mon, C) if r == 2), b"")
    voted_c = [d.block.block_id for d in mon.deliveries[C] if getattr(d, "kind", "") == "VOTED"]
    expect.true(t_id in voted_c, "C: VOTED(T)")
    cert = entry4.get("cert")
    expect.true(
        isinstance(cert, TC) and cert.round == 3 and _extend_id(cert, 3) == t_id,
        f"C enters round 4 by TC(3) with Tip T (via {entry4.get('via')})",
    )
    first = c_timeouts[0] if c_timeouts else None
    ok = (
        first is not None
        and (first.info.high_qc_round, first.info.high_tip_round) == (2, 0)
        and isinstance(first.high_extend, QC)
        and first.high_extend.block_id == t_id
    )
    expect.true(ok, "C's round-4 TimeoutInfo is (4, 2, 0) with QC(T, 2)")
    expect.true(
        all(len(final7.get(i, [])) >= 2 and final7[i][1] == t_id for i in (A, B)),
        "T final at height 2 by round 7 (A, B)",
    )
    ids_c = finalized_at(mon, C)
    expect.true(len(ids_c) >= 2 and ids_c[1] == t_id, "C finalizes T at height 2 once caught up")
    expect.eq("reverts", mon.summary()["reverts"], 0)
    return outcome("s13-stale-report", seed, mon, expect)


# --------------------------------------------------------------------------------------- S14
def s14_late_sibling(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon = MonadSim(seed, base_setup(4))
    log_proposals(mon)
    healed = {"done": False}
    live = lambda: not healed["done"]  # noqa: E731
    rule(mon, src=[A], rounds=[4], when=lambda a, b, m: not isinstance(m, TimeoutMsg), active=live)
    rule(mon, src=[B, C, D], kinds=["timeout"], when=lambda a, b, m: m.info.round == 4, delay_ms=30)
    rule(mon, src=[A], kinds=["response"], rounds=range(0, 6), active=live)
    rule(mon, src=[B], kinds=["proposal", "vote", "timeout"], rounds=[5], active=live)
    rule(mon, src=[C], dst=[B], rounds=[6], active=live)
    rule(mon, kinds=["vote"], dst=[D], when=lambda a, b, m: m.vote.round == 6, active=live)
    rule(mon, src=[C], kinds=["advance"], rounds=[6, 7], active=live)
    rule(mon, src=[C], kinds=["timeout"], when=lambda a, b, m: m.info.round == 7, active=live)
    rule(mon, kinds=["ne"], when=lambda a, b, m: m.round in (6, 7), delay_ms=30)
    high_qc7: dict[int, QC] = {}

    def hook(node: Node, old: int, new: int) -> None:
        if node.validator == D and new >= 7:
            healed["done"] = True
        if new == 7 and old < 7:
            high_qc7[node.validator] = mon.core(node).high_qc

    mon.round_hooks.append(hook)
    tc6 = snapshot_on_entry(mon, 6, lambda node: _extend_id(mon.core(node).high_cert, 6))
    final8 = snapshot_on_entry(mon, 8, lambda node: finalized_at(mon, node.iid))
    mon.start()
    how = mon.run_to_round(11, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 11)
    t2 = next((bid for r, bid in _proposals(mon, A) if r == 4), b"")
    t1 = next((bid for r, bid in _proposals(mon, B) if r == 5), b"")
    c_qc = high_qc7.get(C)
    expect.true(c_qc is not None and c_qc.round == 6 and c_qc.block_id == t2, "C holds QC(T2, 6)")
    expect.true(
        all(high_qc7.get(v) is not None and high_qc7[v].round < 6 for v in (A, B, D)), "QC(T2, 6) at C only"
    )
    expect.true(t2 not in mon.voted_ids, "no VOTED(T2)")
    expect.true(all(tc6.get(v) == t1 for v in (A, B, D)), "TC(6) at A, B, D picks T1")
    expect.true((7, t1) in _proposals(mon, D), "D re-proposes T1 in round 7")
    expect.true(
        all(len(final8.get(i, [])) >= 4 and final8[i][3] == t1 for i in (A, B, C, D)),
        "T1 final at height 4 by round 8",
    )
    expect.eq("reverts", mon.summary()["reverts"], 0)
    return outcome("s14-late-sibling", seed, mon, expect)


# --------------------------------------------------------------------------------------- S15
def _crash_after(mon: MonadSim, node: Node, match: Any, down_ms: int = 50) -> dict[str, Any]:
    state: dict[str, Any] = {"done": False, "restart": None}

    def observe(src: Node, action: Any) -> None:
        if src is node and not state["done"] and match(action):
            state["done"] = True
            mon.crash_at(node, mon.sim.now)
            mon.sim.schedule(mon.sim.now + down_ms, restart)

    def restart() -> None:
        mon.restart_now(node)
        core = mon.core(node)
        state["restart"] = (mon.sim.now, core.current_round, core.phase_one)

    mon.sim.action_observers.append(observe)
    return state


def s15_restart_view_change(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    outs = []
    # (a) S2 with B restarted after its round-3 timeout
    setup = base_setup(4)
    setup.not_started.add(D)
    mon = MonadSim(seed, setup)
    sent: list[bytes] = []
    mon.sim.action_observers.append(
        lambda node, action: (
            sent.append(encode(action.message))
            if node.validator == B
            and isinstance(getattr(action, "message", None), TimeoutMsg)
            and action.message.info.round == 3
            else None
        )
    )
    state = _crash_after(
        mon,
        mon.nodes[B],
        lambda a: isinstance(getattr(a, "message", None), TimeoutMsg) and a.message.info.round == 3,
    )
    mon.start()
    how = mon.run_to_round(12, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 12)
    expect.true(len(sent) >= 2 and len(set(sent)) == 1, "(a) B's round-3 timeout re-sent byte-identical")
    expect.true(
        state["restart"] is not None and state["restart"][1:] == (3, True),
        "(a) B restarts in round 3, phase ONE",
    )
    expect.true(3 in mon.tc_rounds, "(a) TC(3) forms")
    outs.append(outcome("s15-restart-view-change", seed, mon, expect))
    # (b) S7 with C restarted after its NE; (c) S7 with A restarted after its RoundRecovery
    for variant, who, kind in (("b", C, NoEndorseMsg), ("c", A, RoundRecovery)):
        mon, hider = s7_setup(seed)
        log_proposals(mon)
        messages: list[Any] = []
        node = mon.nodes[who]

        def record(
            src: Node,
            action: Any,
            node: Node = node,
            kind: type = kind,
            mon: MonadSim = mon,
            messages: list[Any] = messages,
        ) -> None:
            if src is node and isinstance(getattr(action, "message", None), kind | VoteMsg):
                messages.append((mon.sim.now, action.message))

        mon.sim.action_observers.append(record)
        state = _crash_after(mon, node, lambda a, kind=kind: isinstance(getattr(a, "message", None), kind))
        mon.start()
        how = mon.run_to_round(12, max_steps=steps or STEPS_DEFAULT)
        expect = Expect()
        reached(expect, mon, how, 12)
        expect.true(state["restart"] is not None, f"({variant}) restarted")
        special = [m for _, m in messages if isinstance(m, kind) and m.round == 4]
        expect.eq(f"({variant}) {kind.__name__}s for round 4", len(special), 1)
        if variant == "b":
            votes4 = [m for _, m in messages if isinstance(m, VoteMsg) and m.vote.round == 4]
            proposals4 = {bid for r, bid in _proposals(mon, A) if r == 4}
            expect.true(
                all(v.vote.block_id in proposals4 for v in votes4), "(b) C votes only the NEC proposal"
            )
        heights = mon.summary()["finalized"]
        expect.ge(f"({variant}) finalized after the view change", heights, 6)
        outs.append(outcome(f"s15-restart-view-change/{variant}", seed, mon, expect))
    return merge(outs[0], *outs[1:])


# --------------------------------------------------------------------------------------- S16, S17
def s16_recovery_first(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    mon, hider = s7_setup(seed)
    rule(mon, dst=[C], kinds=["timeout"], when=lambda a, b, m: m.info.round == 3, delay_ms=50)
    ne_c: list[NoEndorseMsg] = []
    round4: list[Proposal] = []

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if node.validator == C and isinstance(message, NoEndorseMsg):
            ne_c.append(message)
        if isinstance(message, Proposal) and message.proposal_round == 4 and node.honest:
            round4.append(message)

    mon.sim.action_observers.append(observe)
    mon.start()
    how = mon.run_to_round(8, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 8)
    expect.eq("C enters round 4 from", mon.entered_via.get((mon.nodes[C].iid, 4)), "RoundRecovery")
    expect.true(any(m.round == 4 for m in ne_c), "C sends an NE in round 4")
    expect.true(bool(round4) and isinstance(round4[0].tip.fresh_cert, NEC), "round 4 proposal carries an NEC")
    expect.true(not any(r == 4 for _, r, _ in mon.timer_firings), "no honest round-4 timeout")
    return outcome("s16-recovery-first", seed, mon, expect)


def _s17_run(seed: int, delay: Any, steps: int | None, **params: Any) -> tuple[MonadSim, Expect]:
    mon, hider = s7_setup(seed, **params)
    mon.sim.network = Network(delay=delay)
    mon.start()
    how = mon.run_to_round(8, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 8)
    return mon, expect


def s17_recovery_timer(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    delta = 100
    outs = []
    for name, delay in (("fixed-delta", fixed_delay(delta)), ("uniform", uniform_delay(0, delta))):
        mon, expect = _s17_run(seed, delay, steps)
        firings = [r for _, r, _ in mon.timer_firings if r == 4]
        expect.eq(f"honest round-4 timer firings ({name})", len(firings), 0)
        outs.append(outcome(f"s17-recovery-timer/{name}", seed, mon, expect))
    variant, _ = _s17_run(
        seed, fixed_delay(delta), steps, recovery_timer_ms_override=400, tc_timer_ms_override=400
    )
    firings = len([r for _, r, _ in variant.timer_firings if r == 4])
    first = outs[0]
    first.scenario = "s17-recovery-timer"
    first.notes["variant_round4_firings"] = firings
    if firings == 0:
        first.failed.append("variant recovery_timer = round_timer: expected round-4 firings > 0, got 0")
    return merge(first, outs[1])


# --------------------------------------------------------------------------------------- S18
def s18_round_jump(
    seed: int, nodes: int | None = None, steps: int | None = None, rounds: int = 1000
) -> Outcome:
    mon = MonadSim(seed, base_setup(4))
    mon.sim.partition = [{A, B, C}, {D}]
    d_node = mon.nodes[D]
    info: dict[str, Any] = {"d_rounds": [], "vote_rounds_max": 0, "batches": [], "requests": 0}

    def hook(node: Node, old: int, new: int) -> None:
        if node is d_node and "heal" in info:
            info["d_rounds"].append(new)
        if node.iid == A and new > rounds and "heal" not in info:
            info["heal"] = (new, mon.core(node).finalized_height)
            mon.sim.partition = None
        if node.iid == A and "heal" in info and new >= info["heal"][0] + 20 and "h20" not in info:
            info["h20"] = mon.core(d_node).finalized_height

    def step(node: Node | None) -> None:
        if node is d_node:
            core = mon.core(node)
            span = {r for r, _ in core.votes}
            info["vote_rounds_max"] = max(info["vote_rounds_max"], len(span))

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if isinstance(message, BlockResponse) and isinstance(action, Send) and action.to == D:
            info["batches"].append(len(message.blocks))
        if node is d_node and isinstance(message, BlockRequest):
            info["requests"] += 1

    mon.round_hooks.append(hook)
    mon.sim.step_observers.append(step)
    mon.sim.action_observers.append(observe)
    mon.start()
    how = mon.run_to_round(rounds + 30, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, rounds + 30)
    heal_round = info.get("heal", (0, 0))[0]
    first = info["d_rounds"][0] if info["d_rounds"] else 0
    expect.true(
        first >= heal_round - 2, f"D jumps to round {first} on its first certificate (heal at {heal_round})"
    )
    expect.le("D's vote state (rounds)", info["vote_rounds_max"], 11)
    batches = info["batches"]
    expect.true(bool(batches) and max(batches) <= 64, f"batched sync (max batch {max(batches or [0])})")
    expect.le("D's block requests", info["requests"], rounds // 64 + 10)
    expect.ge("D's finalized height 20 rounds after heal", info.get("h20", 0), info.get("heal", (0, 1))[1])
    return outcome(
        "s18-round-jump", seed, mon, expect, {"d_first_round": first, "requests": info["requests"]}
    )


# --------------------------------------------------------------------------------------- S19
def s19_storm(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    n = nodes or 4
    setup = base_setup(n)
    gst = 30_000
    setup.network = Network(delay=fixed_delay(10), gst_ms=gst, loss=0.5, jitter_ms=490)
    mon = MonadSim(seed, setup)
    params = setup.params
    info: dict[str, Any] = {"state_ok": True, "requests": {}, "sync_ok": True, "at_gst": {}, "late": []}

    def step(node: Node | None) -> None:
        if node is None or not node.honest or not node.alive:
            return
        core = mon.core(node)
        rounds = {r for r, _ in core.votes}
        if len(rounds) > 11 or len(core.timeouts) > n:
            info["state_ok"] = False

    def observe(node: Node, action: Any) -> None:
        message = getattr(action, "message", None)
        if isinstance(message, BlockRequest) and message.count > 1:
            key = (node.iid, message.block_id)
            last = info["requests"].get(key)
            if last is not None and mon.sim.now - last < params.sync_retry_ms:
                info["sync_ok"] = False
            info["requests"][key] = mon.sim.now

    def at_gst() -> None:
        for node in mon.honest_running():
            core = mon.core(node)
            info["at_gst"][node.iid] = (core.current_round, core.finalized_height)

    def hook(node: Node, old: int, new: int) -> None:
        start = info["at_gst"].get(node.iid)
        if start is not None and new > start[0] + 5 and node.iid not in {i for i, _ in info["late"]}:
            info["late"].append((node.iid, mon.core(node).finalized_height > start[1]))

    mon.sim.step_observers.append(step)
    mon.sim.action_observers.append(observe)
    mon.round_hooks.append(hook)
    mon.sim.schedule(gst, at_gst)
    mon.strict_liveness_from_ms = gst + 2 * params.recovery_timer_ms
    mon.start()
    mon.sim.run(until_ms=gst, max_steps=steps or STEPS_DEFAULT)
    target = mon.max_round() + 50
    how = mon.run_to_round(target, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, target)
    expect.true(info["state_ok"], "vote state <= 11 rounds and timeouts <= n at every node")
    expect.true(info["sync_ok"], "<= 1 sync request per missing block per sync_retry_ms")
    expect.true(
        bool(info["late"]) and all(ok for _, ok in info["late"]),
        "a new finalized block within 5 rounds after GST",
    )
    return outcome("s19-storm", seed, mon, expect)


# --------------------------------------------------------------------------------------- S20
def s20_byzantine_pair(seed: int, nodes: int | None = None, steps: int | None = None) -> Outcome:
    setup = base_setup(7)
    setup.wrappers[5] = lambda core: Equivocator(core, first=(0, 1, 2), second=(3, 4), vote=False)
    setup.wrappers[6] = EagerTimeoutSilentLeader
    mon = MonadSim(seed, setup)
    mon.start()
    how = mon.run_to_round(70, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, 70)
    bad = sorted(r for r in mon.tc_rounds if r % 7 not in (5, 6))
    expect.eq("TCs outside rounds 5, 6 mod 7", bad, [])
    expect.ge("finalized", mon.summary()["finalized"], 45)
    return outcome("s20-byzantine-pair", seed, mon, expect)


# --------------------------------------------------------------------------------------- S21
def s21_unequal_stake(
    seed: int, nodes: int | None = None, steps: int | None = None, rounds: int = 1000
) -> Outcome:
    setup = base_setup(4, leader_election="stake_weighted")
    setup.stakes = (4, 3, 2, 1)
    setup.not_started.add(B)
    mon = MonadSim(seed, setup)
    mon.start()
    how = mon.run_to_round(rounds, max_steps=steps or STEPS_DEFAULT)
    expect = Expect()
    reached(expect, mon, how, rounds)
    counts = [0, 0, 0, 0]
    for r in range(1, rounds + 1):
        counts[mon.leader(r)] += 1
    shares = [round(100 * c / rounds, 1) for c in counts]
    for v, want in enumerate((40, 30, 20, 10)):
        expect.within(f"leader share of validator {v} (%)", shares[v], want, 5 if rounds >= 1000 else 10)
    want_tcs = sorted(r for r in range(1, rounds + 1) if mon.leader(r) == B)
    expect.eq("TC rounds are B's rounds", sorted(r for r in mon.tc_rounds if r <= rounds), want_tcs)
    expect.true(all({A, C, D} <= set(s) for s in mon.qc_signer_sets), "every QC holds A, C and D")
    return outcome("s21-unequal-stake", seed, mon, expect, {"leader_shares_pct": shares})
