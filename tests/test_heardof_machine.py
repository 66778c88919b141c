"""Round-machine rules (spec §5.1): late dropped, future buffered, own and Null messages heard,
no ho_f round below n-f, catch-up only in timeout mode, persist before send, identical resends."""

from __future__ import annotations

from typing import Any

import pytest

from hedgerow.protocols import wire
from hedgerow.protocols.actions import Action, Broadcast, Deliver, Evidence, Persist, Send, SetTimer
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.heardof.algorithms import NONE, FloodMin, LastVoting, OneThirdRule
from hedgerow.protocols.heardof.machine import HoConfigError, MachineConfig, RoundMachine
from hedgerow.protocols.heardof.messages import DecidedNotice, HoRecord, RoundMsg, pack_value


def msg(r: int, sender: int, payload: Any, instance: int = 1, decided: Any = None) -> RoundMsg:
    packed = None if payload is None else pack_value(payload)
    return RoundMsg(instance, r, sender, packed, None if decided is None else pack_value(decided), None)


def machine(alg: Any = None, *, n: int = 4, f: int = 1, p: int = 0, inp: Any = 5, **cfg: Any) -> RoundMachine:
    config = MachineConfig(n=n, f=f, **cfg)
    return RoundMachine(alg or OneThirdRule(n), p, inp, instance=1, config=config)


def sends(actions: list[Action]) -> list[RoundMsg]:
    out = []
    for a in actions:
        if isinstance(a, Send | Broadcast) and isinstance(a.message, RoundMsg):
            out.append(a.message)
    return out


def test_persist_precedes_every_round_message() -> None:
    m = machine()
    actions = m.start(0.0)
    first_send = next(i for i, a in enumerate(actions) if isinstance(a, Send | Broadcast))
    persists = [i for i, a in enumerate(actions) if isinstance(a, Persist)]
    assert persists and persists[0] < first_send
    record = actions[persists[0]].record  # type: ignore[union-attr]
    assert isinstance(record, HoRecord) and record.round == 0
    # entering round 1 persists the round-1 record before the round-1 messages leave
    m.on_message(1, msg(0, 1, 5), 0.0)
    actions = m.on_message(2, msg(0, 2, 5), 0.0)
    kinds = [type(a).__name__ for a in actions]
    assert "Persist" in kinds and kinds.index("Persist") < kinds.index("Broadcast")
    assert all(a.record.round <= 1 for a in actions if isinstance(a, Persist))


def test_ho_f_round_never_ends_below_n_minus_f() -> None:
    m = machine(mode="ho_f")
    m.start(0.0)
    m.on_message(1, msg(0, 1, 5), 0.0)
    assert m.round == 0 and len(m.mailbox) == 2          # self + 1 < n - f = 3
    assert m.on_timer(("ho", 1, 0, "round"), 9.0) == [] and m.round == 0
    m.on_message(2, msg(0, 2, 5), 0.0)
    assert m.round == 1 and m.trace == [frozenset({0, 1, 2})]


def test_null_and_own_messages_count_as_heard() -> None:
    lv = LastVoting(4)
    m = machine(lv, p=1, mode="ho_f")                     # not the coordinator: sends Null to 2, 3
    actions = m.start(0.0)
    assert any(isinstance(a, Send) and a.message.payload is None for a in actions)
    m.on_message(2, msg(0, 2, None), 0.0)
    m.on_message(3, msg(0, 3, None), 0.0)
    assert m.round == 1 and m.trace[0] == frozenset({1, 2, 3})


def test_late_messages_are_dropped_and_counted() -> None:
    m = machine(n=3, f=1)
    m.start(0.0)
    m.on_message(1, msg(0, 1, 5), 0.0)
    assert m.round == 1
    before = dict(m.mailbox)
    m.on_message(2, msg(0, 2, 9), 0.0)
    assert m.counters["late"] == 1 and m.mailbox == before


def test_future_messages_are_buffered_then_used_and_window_drops() -> None:
    m = machine(n=3, f=1, window=2)
    m.start(0.0)
    m.on_message(1, msg(1, 1, 7), 0.0)                    # round 1 while in round 0: buffered
    m.on_message(2, msg(5, 2, 7), 0.0)                    # beyond the window
    assert m.round == 0 and m.counters["future_dropped"] == 1
    m.on_message(2, msg(0, 2, 5), 0.0)                    # round 0 ends, round 1 pulls the buffer
    assert m.round == 2 or (m.round == 1 and 1 in m.mailbox)
    assert m.trace[0] == frozenset({0, 2})


def test_duplicates_and_conflicting_duplicates() -> None:
    m = machine()
    m.start(0.0)
    m.on_message(1, msg(0, 1, 5), 0.0)
    m.on_message(1, msg(0, 1, 5), 0.0)
    m.on_message(1, msg(0, 1, 6), 0.0)
    assert m.counters["duplicate"] == 1 and m.counters["conflicting_duplicate"] == 1
    assert m.mailbox[1] == 5


def test_signed_equivocation_yields_evidence_and_bad_signatures_are_omissions() -> None:
    keys = [SigningKey.from_label(f"ho-{i}") for i in range(4)]
    verify = [k.public for k in keys]
    alg = OneThirdRule(4)
    cfg = MachineConfig(n=4, f=1, sign_round_msgs=True)
    m = RoundMachine(alg, 0, 5, instance=1, config=cfg, signing_key=keys[0], verify_keys=verify)
    sender = RoundMachine(alg, 1, 5, instance=1, config=cfg, signing_key=keys[1], verify_keys=verify)
    m.start(0.0)
    good = sends(sender.start(0.0))[0]
    assert good.sig is not None
    forged = RoundMsg(1, 0, 1, pack_value(6), None, keys[2].sign("hedgerow/ho/v1", "hedgerow", [1, 0, 1]))
    m.on_message(1, forged, 0.0)
    assert m.counters["rejected:bad_signature"] == 1 and 1 not in m.mailbox
    m.on_message(1, good, 0.0)
    other_fields = [1, 0, 1, pack_value(6), None]
    twin = RoundMsg(1, 0, 1, pack_value(6), None, keys[1].sign("hedgerow/ho/v1", "hedgerow", other_fields))
    actions = m.on_message(1, twin, 0.0)
    assert any(isinstance(a, Evidence) and a.proof[0] == "ho_equivocation" for a in actions)


def test_rejections_are_omissions() -> None:
    m = machine()
    m.start(0.0)
    m.on_message(2, msg(0, 1, 5), 0.0)                     # claims 1, authenticated as 2
    m.on_message(9, msg(0, 9, 5), 0.0)                     # not in Pi
    m.on_message(1, msg(0, 1, None), 0.0)                  # OTR never sends Null
    m.on_message(3, msg(0, 3, 5, instance=2), 0.0)          # other instance
    assert m.mailbox == {0: 5}
    assert m.counters["rejected:wrong_sender"] == m.counters["rejected:unknown_sender"] == 1
    assert m.counters["rejected:invalid_payload"] == 1 and m.counters["rejected:instance"] == 1


def test_catch_up_only_in_timeout_mode() -> None:
    ho = machine(n=4, f=1, mode="ho_f")
    ho.start(0.0)
    ho.on_message(1, msg(3, 1, 5), 0.0)
    assert ho.round == 0
    tm = machine(n=4, f=1, mode="timeout")
    actions = tm.start(0.0)
    assert any(isinstance(a, SetTimer) for a in actions)
    out = tm.on_message(1, msg(3, 1, 5), 0.0)
    assert tm.round == 3 and tm.counters["catch_up"] == 1
    assert {m.round for m in sends(out)} == {1, 2, 3}      # skipped rounds' messages are sent too
    assert tm.trace == [frozenset({0}), frozenset({0}), frozenset({0})]


def test_timeout_round_ends_on_timer_and_old_timers_are_ignored() -> None:
    m = machine(mode="timeout", timeout_s=0.02)
    m.start(0.0)
    m.on_message(1, msg(0, 1, 5), 0.001)
    m.on_timer(("ho", 1, 0, "round"), 0.02)
    assert m.round == 1 and m.trace[0] == frozenset({0, 1})
    m.on_timer(("ho", 1, 0, "round"), 0.03)               # stale timer of round 0
    assert m.round == 1


def test_adaptive_timeout_grows_after_five_timeouts() -> None:
    m = machine(mode="timeout", timeout_s=0.02)
    m.start(0.0)
    for r in range(5):
        m.on_timer(("ho", 1, r, "round"), 0.02 * (r + 1))
    assert m.timeout_s == pytest.approx(0.03)


def test_grace_timer_in_ho_f_mode() -> None:
    m = machine(mode="ho_f", amp_grace_s=0.005)
    m.start(0.0)
    m.on_message(1, msg(0, 1, 5), 0.0)
    actions = m.on_message(2, msg(0, 2, 5), 0.001)
    assert m.round == 0 and any(isinstance(a, SetTimer) and a.timer[3] == "grace" for a in actions)
    m.on_timer(("ho", 1, 0, "grace"), 0.006)
    assert m.round == 1


def _deliveries(q: int, actions: list[Action], n: int) -> list[tuple[int, int, RoundMsg]]:
    out = []
    for a in actions:
        if isinstance(a, Send) and isinstance(a.message, RoundMsg):
            out.append((q, a.to, a.message))
        elif isinstance(a, Broadcast) and isinstance(a.message, RoundMsg):
            out += [(q, p, a.message) for p in range(n) if p != q]
    return out


def test_restart_resends_identical_messages() -> None:
    alg = LastVoting(4)
    peers = [machine(alg, p=p, inp=p % 2) for p in range(4)]
    outs = [peer.start(0.0) for peer in peers]
    for _ in range(3):                                     # a few lock-step rounds, full delivery
        batch = [d for q, out in enumerate(outs) for d in _deliveries(q, out, 4)]
        outs = [[] for _ in peers]
        for q, p, m2 in batch:
            outs[p] += peers[p].on_message(q, m2, 0.0)
    victim = peers[0]
    records = [a.record for a in outs[0] if isinstance(a, Persist)]
    assert records and records[-1].round == victim.round >= 2
    before = _deliveries(0, outs[0], 4)
    before = [d for d in before if d[2].round == victim.round]
    fresh = machine(alg, p=0, inp=0)
    resent = _deliveries(0, fresh.resume(records[-1], 1.0), 4)
    assert [(p, wire.encode(m2)) for _, p, m2 in resent] == [(p, wire.encode(m2)) for _, p, m2 in before]
    assert fresh.round == victim.round and fresh.state == victim.state


def test_decision_is_delivered_once_and_colorless_adopt() -> None:
    m = machine(FloodMin(4), n=4, f=1, linger_rounds=0)
    m.start(0.0)
    m.on_message(1, msg(0, 1, 3), 0.0)
    actions = m.on_message(2, msg(0, 2, 4), 0.0)
    delivers = [a for a in actions if isinstance(a, Deliver)]
    assert delivers == [Deliver((1, 3))] and m.decision == 3
    assert m.halted
    assert any(isinstance(a, Broadcast) and isinstance(a.message, DecidedNotice) for a in actions)
    lagging = machine(FloodMin(4), n=4, f=1, p=3)
    lagging.start(0.0)
    out = lagging.on_message(0, DecidedNotice(1, 0, 0, pack_value(3), None), 0.0)
    assert lagging.decision == 3 and Deliver((1, 3)) in out
    # a halted machine answers a laggard's round message with its notice
    answer = m.on_message(3, msg(0, 3, 9), 0.0)
    assert answer and isinstance(answer[0], Send) and isinstance(answer[0].message, DecidedNotice)


def test_piggybacked_decision_is_adopted() -> None:
    m = machine(OneThirdRule(4), n=4, f=1)
    m.start(0.0)
    m.on_message(1, msg(0, 1, 5, decided=2), 0.0)
    assert m.decision == 2 and m.counters["adopted"] == 1


def test_config_errors() -> None:
    with pytest.raises(HoConfigError):
        machine(n=4, f=2, mode="ho_f")                     # n <= 2f
    with pytest.raises(HoConfigError):
        machine(mode="psync")
    with pytest.raises(HoConfigError):
        machine(sign_round_msgs=True)


def test_algorithm_exception_stops_only_this_instance() -> None:
    class Broken(OneThirdRule):
        def transition(self, r: int, p: int, s: Any, mb: Any) -> Any:
            raise ZeroDivisionError("boom")

    m = RoundMachine(Broken(3), 0, 1, instance=4, config=MachineConfig(n=3, f=1))
    m.start(0.0)
    m.on_message(1, msg(0, 1, 1, instance=4), 0.0)
    assert m.error is not None and m.error.instance == 4 and m.error.round == 0
    assert m.on_message(2, msg(0, 2, 1, instance=4), 0.0) == []
    assert m.decision is NONE


def test_resume_rejects_a_record_whose_state_decided_without_a_decision() -> None:
    from hedgerow.protocols.actions import InvariantViolation
    from hedgerow.protocols.heardof.algorithms import FloodMinState

    alg = FloodMin(4)
    bad = HoRecord(1, 1, pack_value(FloodMinState(3, 3)), None)
    with pytest.raises(InvariantViolation):
        machine(alg).resume(bad, 0.0)


class _NeverDecides:
    name, colorless, period = "null", False, 1

    def init(self, p: int, n: int, inp: Any) -> int:
        return 0

    def send(self, r: int, p: int, s: int, q: int) -> None:
        return None

    def transition(self, r: int, p: int, s: int, mb: Any) -> int:
        return s + 1

    def decision(self, s: int) -> Any:
        return NONE

    def valid_payload(self, r: int, payload: Any) -> bool:
        return payload is None


def test_a_laggard_catches_up_a_thousand_buffered_rounds_without_recursion() -> None:
    m = machine(_NeverDecides(), n=4, f=1)
    m.start(0.0)
    for r in range(1, 1001):
        for q in (1, 2):
            m.on_message(q, msg(r, q, None), 0.0)
    assert m.round == 0
    m.on_message(1, msg(0, 1, None), 0.0)
    m.on_message(2, msg(0, 2, None), 0.0)
    assert m.round == 1001 and m.state == 1001 and len(m.trace) == 1001


def test_signed_mode_ignores_unsigned_decided_notices() -> None:
    keys = [SigningKey.from_label(f"ho-{i}") for i in range(4)]
    cfg = MachineConfig(n=4, f=1, sign_round_msgs=True, linger_rounds=0)
    verify = [k.public for k in keys]
    m = RoundMachine(FloodMin(4), 3, 9, instance=1, config=cfg, signing_key=keys[3], verify_keys=verify)
    m.start(0.0)
    m.on_message(0, DecidedNotice(1, 0, 0, pack_value(3), None), 0.0)
    assert m.decision is NONE and m.counters["rejected:notice"] == 1
    decider = RoundMachine(FloodMin(4), 0, 3, instance=1, config=cfg, signing_key=keys[0], verify_keys=verify)
    decider.start(0.0)
    out: list[Action] = []
    for q in (1, 2):
        peer = RoundMachine(FloodMin(4), q, 5, instance=1, config=cfg, signing_key=keys[q],
                            verify_keys=verify)
        out += decider.on_message(q, sends(peer.start(0.0))[0], 0.0)
    notice = next(a.message for a in out if isinstance(a, Broadcast) and isinstance(a.message, DecidedNotice))
    m.on_message(0, notice, 0.0)
    assert m.decision == 3
