"""The sans-IO Heard-Of round machine (spec §5.1), modes `ho_f` and `timeout`.

`start(now)`, `on_message(sender, message, now)`, `on_timer(timer, now)` return actions of
`hedgerow.protocols.actions`. Entering round r always emits `Persist(HoRecord(instance, r, state,
decision))` before any round-r message, so a restarted process (`RoundMachine.resume`) resends
byte-identical round-r messages (S is deterministic) and never re-enters a lower round.
In `ho_f` mode (AMP_f -> HO_f) a round ends only with >= n-f senders heard, the process itself
and Null senders included; `timeout` mode ends a round on a full mailbox, its timer or catch-up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from hedgerow.protocols.actions import (
    Action,
    Broadcast,
    Deliver,
    Evidence,
    InvariantViolation,
    Persist,
    Send,
    SetTimer,
)
from hedgerow.protocols.canonical import digest
from hedgerow.protocols.crypto import SigningKey, VerifyKey
from hedgerow.protocols.heardof.algorithms import NONE, HoAlgorithm
from hedgerow.protocols.heardof.messages import (
    SIGN_DOMAIN,
    DecidedNotice,
    HoRecord,
    RoundMsg,
    pack_value,
    unpack_value,
)

MODES = ("ho_f", "timeout")


class HoConfigError(ValueError):
    """An unusable round-machine configuration (e.g. n <= 2f in ho_f mode)."""


class HoAlgorithmError(Exception):
    """The algorithm raised inside S or T; this instance stops, others continue."""

    def __init__(self, instance: int, round: int, trace_digest: str, cause: str) -> None:
        super().__init__(f"instance {instance} round {round} trace {trace_digest}: {cause}")
        self.instance, self.round, self.trace_digest = instance, round, trace_digest


@dataclass(frozen=True, slots=True)
class MachineConfig:
    n: int
    f: int
    mode: str = "ho_f"
    amp_grace_s: float = 0.0
    timeout_s: float = 0.020
    timeout_min_s: float = 0.005
    timeout_max_s: float = 2.0
    catchup_k: int = 1
    send_when_catching_up: bool = True
    window: int = 1024
    linger_rounds: int = 2
    sign_round_msgs: bool = False
    chain_id: str = "hedgerow"

    def validate(self) -> None:
        if self.mode not in MODES:
            raise HoConfigError(f"unknown mode {self.mode!r}; want one of {', '.join(MODES)}")
        if self.n < 1 or self.f < 0 or self.f >= self.n:
            raise HoConfigError(f"bad n={self.n}, f={self.f}")
        if self.mode == "ho_f" and self.n <= 2 * self.f:
            raise HoConfigError(f"ho_f mode needs n > 2f, got n={self.n}, f={self.f}")
        if self.window < 1 or self.catchup_k < 1 or self.linger_rounds < 0:
            raise HoConfigError("window and catchup_k must be >= 1, linger_rounds >= 0")


class RoundMachine:
    """One process p running one HO instance of `algorithm`."""

    def __init__(self, algorithm: HoAlgorithm, p: int, inp: Any, *, instance: int, config: MachineConfig,
                 signing_key: SigningKey | None = None, verify_keys: list[VerifyKey] | None = None) -> None:
        config.validate()
        if not 0 <= p < config.n:
            raise HoConfigError(f"process {p} not in 0..{config.n - 1}")
        if config.sign_round_msgs and (signing_key is None or verify_keys is None):
            raise HoConfigError("sign_round_msgs needs a signing key and every verify key")
        self.alg, self.p, self.inp, self.instance, self.cfg = algorithm, p, inp, instance, config
        self.key, self.verify_keys = signing_key, verify_keys
        self.round = 0
        self.state: Any = None
        self.decision: Any = NONE
        self.mailbox: dict[int, Any] = {}
        self._mailbox_msgs: dict[int, RoundMsg] = {}
        self.future: dict[int, dict[int, RoundMsg]] = {}
        self.linger_left: int | None = None
        self.halted = False
        self.error: HoAlgorithmError | None = None
        self.counters: Counter[str] = Counter()
        self.trace: list[frozenset[int]] = []  # HO(p, r) for r = 0, 1, ...
        self.timeout_s = config.timeout_s
        self._grace_armed = False
        self._timed_out_run = 0
        self._full_run = 0
        self._last_record: HoRecord | None = None
        self._state_type: Any = None
        self._notice: DecidedNotice | None = None

    # -- the core contract --------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """R1: state := init, enter round 0."""
        out: list[Action] = []
        try:
            self.state = self.alg.init(self.p, self.cfg.n, self.inp)
        except Exception as error:  # noqa: BLE001 - an algorithm bug stops this instance only
            self._fail(error)
            return out
        self._state_type = type(self.state)
        self._enter(0, now, out)
        self._evaluate(now, out, timer_fired=False)
        return out

    def resume(self, record: HoRecord, now: float) -> list[Action]:
        """Restart from the last persisted record: resend identical round-r messages, continue."""
        if record.instance != self.instance:
            raise HoConfigError(f"record of instance {record.instance}, machine runs {self.instance}")
        template = self.alg.init(self.p, self.cfg.n, self.inp)
        self._state_type = type(template)
        self.state = self._decode_state(unpack_value(record.state))
        self.decision = NONE if record.decision is None else unpack_value(record.decision)
        own = self.alg.decision(self.state)
        if own is not NONE and self.decision is NONE:  # check after load: a decided state has its record
            raise InvariantViolation(f"HoRecord of instance {self.instance} round {record.round}: "
                                     f"state decided {own!r} but the record holds no decision")
        if self.decision is not NONE and self.alg.colorless:
            self.linger_left = self.cfg.linger_rounds
        self._last_record = record
        out: list[Action] = []
        self._enter(record.round, now, out)
        self._evaluate(now, out, timer_fired=False)
        return out

    def on_message(self, sender: int, message: Any, now: float) -> list[Action]:
        out: list[Action] = []
        if self.halted and isinstance(message, RoundMsg) and self._notice is not None \
                and message.instance == self.instance and 0 <= sender < self.cfg.n:
            self.counters["notice_replies"] += 1  # a laggard or restarted peer: tell it the decision
            out.append(Send(sender, self._notice))
            return out
        if self.halted or self.error is not None or sender == self.p:
            return out
        if isinstance(message, DecidedNotice):
            self._on_notice(sender, message, now, out)
            return out
        if not isinstance(message, RoundMsg):
            self.counters["rejected:type"] += 1
            return out
        payload = self._admit(sender, message)
        if payload is _REJECT:
            return out
        self._adopt_piggyback(message, now, out)
        if self.halted:
            return out
        if message.round < self.round:
            self.counters["late"] += 1
        elif message.round == self.round:
            self._store_current(sender, message, payload, out)
            self._evaluate(now, out, timer_fired=False)
        elif message.round - self.round <= self.cfg.window:
            self.future.setdefault(message.round, {}).setdefault(sender, message)
            if self.cfg.mode == "timeout":
                self._maybe_catch_up(now, out)
        else:
            self.counters["future_dropped"] += 1
        return out

    def on_timer(self, timer: Hashable, now: float) -> list[Action]:
        out: list[Action] = []
        if self.halted or self.error is not None:
            return out
        if not (isinstance(timer, tuple) and len(timer) == 4 and timer[:2] == ("ho", self.instance)):
            return out
        _, _, r, kind = timer
        if r != self.round:  # R11: timers of old rounds are ignored
            return out
        self._evaluate(now, out, timer_fired=True, grace=(kind == "grace"))
        return out

    # -- rounds -------------------------------------------------------------------------------

    def _enter(self, r: int, now: float, out: list[Action], *, send: bool = True) -> None:
        """R2: persist, send round-r messages, self-deliver, pull buffered future messages."""
        self.round = r
        self.mailbox, self._mailbox_msgs = {}, {}
        self._grace_armed = False
        record = HoRecord(self.instance, r, pack_value(self._encode_state(self.state)),
                          None if self.decision is NONE else pack_value(self.decision))
        if record != self._last_record:
            out.append(Persist(record))
            self._last_record = record
        try:
            payloads = [self.alg.send(r, self.p, self.state, q) for q in range(self.cfg.n)]
        except Exception as error:  # noqa: BLE001
            self._fail(error)
            return
        if send:
            self._emit_round(r, payloads, out)
        self.mailbox[self.p] = payloads[self.p]
        for sender, msg in sorted(self.future.pop(r, {}).items()):
            payload = self._decode_payload(msg)
            if payload is not _REJECT:
                self._store_current(sender, msg, payload, out)
        if self.cfg.mode == "timeout":
            out.append(SetTimer(("ho", self.instance, r, "round"), now + self.timeout_s))

    def _emit_round(self, r: int, payloads: list[Any], out: list[Action]) -> None:
        decided = None if self.decision is NONE else pack_value(self.decision)
        others = [q for q in range(self.cfg.n) if q != self.p]
        packed = {q: None if payloads[q] is None else pack_value(payloads[q]) for q in others}
        if others and all(packed[q] == packed[others[0]] for q in others):
            out.append(Broadcast(self._round_msg(r, packed[others[0]], decided)))
            return
        for q in others:
            out.append(Send(q, self._round_msg(r, packed[q], decided)))

    def _round_msg(self, r: int, payload: bytes | None, decided: bytes | None) -> RoundMsg:
        msg = RoundMsg(self.instance, r, self.p, payload, decided, None)
        if self.cfg.sign_round_msgs and self.key is not None:
            sig = self.key.sign(SIGN_DOMAIN, self.cfg.chain_id, msg.sign_fields())
            msg = RoundMsg(self.instance, r, self.p, payload, decided, sig)
        return msg

    def _evaluate(self, now: float, out: list[Action], *, timer_fired: bool, grace: bool = False) -> None:
        """R6: end the round when the mode's condition holds; a loop, not recursion, because buffered
        future messages may complete many rounds at once (a laggard catching up in ho_f mode)."""
        while not self.halted and self.error is None:
            heard, n = len(self.mailbox), self.cfg.n
            if self.cfg.mode == "ho_f":
                if heard < n - self.cfg.f:
                    return
                if heard < n and self.cfg.amp_grace_s > 0 and not grace:
                    if not self._grace_armed:
                        self._grace_armed = True
                        timer = ("ho", self.instance, self.round, "grace")
                        out.append(SetTimer(timer, now + self.cfg.amp_grace_s))
                    return
            elif heard < n and not timer_fired:
                return
            self._adapt_timeout(full=heard == n)
            self._end_round(now, out)
            timer_fired = grace = False

    def _end_round(self, now: float, out: list[Action]) -> None:
        """R7: apply T to the mailbox (HO = its keys), deliver a new decision, enter the next round."""
        r = self.round
        self.trace.append(frozenset(self.mailbox))
        try:
            self.state = self.alg.transition(r, self.p, self.state, dict(sorted(self.mailbox.items())))
            decided = self.alg.decision(self.state)
        except Exception as error:  # noqa: BLE001
            self._fail(error)
            return
        if decided is not NONE:
            self._decide(decided, r + 1, out)
        if self.linger_left is not None:
            if self.linger_left == 0:
                self._halt(r, out)
                return
            self.linger_left -= 1
        self._enter(r + 1, now, out)

    def _decide(self, value: Any, next_round: int, out: list[Action]) -> None:
        if self.decision is not NONE:
            if value != self.decision:
                self.counters["decision_conflict"] += 1
            return
        self.decision = value
        state = pack_value(self._encode_state(self.state))
        record = HoRecord(self.instance, next_round, state, pack_value(value))
        out.append(Persist(record))
        self._last_record = record
        out.append(Deliver((self.instance, value)))
        if self.alg.colorless:
            self.linger_left = self.cfg.linger_rounds

    def _halt(self, r: int, out: list[Action]) -> None:
        """R10: after lingering, tell everybody the decision and stop."""
        self.halted = True
        value = pack_value(self.decision)
        notice = DecidedNotice(self.instance, self.p, r, value, None)
        if self.cfg.sign_round_msgs and self.key is not None:
            sig = self.key.sign(SIGN_DOMAIN, self.cfg.chain_id, ["notice", self.instance, self.p, r, value])
            notice = DecidedNotice(self.instance, self.p, r, value, sig)
        self._notice = notice
        out.append(Broadcast(notice))

    def _maybe_catch_up(self, now: float, out: list[Action]) -> None:
        """R8 (timeout mode): jump to the highest future round heard from >= catchup_k senders."""
        k = self.cfg.catchup_k
        targets = [r for r, senders in self.future.items() if r > self.round and len(senders) >= k]
        if not targets:
            return
        target = max(targets)
        self.counters["catch_up"] += 1
        while self.round < target and not self.halted and self.error is None:
            r = self.round
            self.trace.append(frozenset(self.mailbox))
            try:
                self.state = self.alg.transition(r, self.p, self.state, dict(sorted(self.mailbox.items())))
                decided = self.alg.decision(self.state)
            except Exception as error:  # noqa: BLE001
                self._fail(error)
                return
            if decided is not NONE:
                self._decide(decided, r + 1, out)
            nxt = r + 1
            if nxt == target:
                self._enter(nxt, now, out)
                self._evaluate(now, out, timer_fired=False)
                return
            self._enter_quietly(nxt, out)

    def _enter_quietly(self, r: int, out: list[Action]) -> None:
        """Enter a round being skipped by catch-up: send its messages (optional), no timer, no R6."""
        self.round = r
        self.mailbox, self._mailbox_msgs = {}, {}
        payloads = [self.alg.send(r, self.p, self.state, q) for q in range(self.cfg.n)]
        record = HoRecord(self.instance, r, pack_value(self._encode_state(self.state)),
                          None if self.decision is NONE else pack_value(self.decision))
        out.append(Persist(record))
        self._last_record = record
        if self.cfg.send_when_catching_up:
            self._emit_round(r, payloads, out)
        self.mailbox[self.p] = payloads[self.p]
        for sender, msg in sorted(self.future.pop(r, {}).items()):
            payload = self._decode_payload(msg)
            if payload is not _REJECT:
                self._store_current(sender, msg, payload, out)

    def _adapt_timeout(self, *, full: bool) -> None:
        """R9: +10 ms after 5 consecutive timed-out rounds, -10 ms after 50 consecutive full ones."""
        if self.cfg.mode != "timeout":
            return
        if full:
            self._full_run, self._timed_out_run = self._full_run + 1, 0
            self.counters["full_rounds"] += 1
        else:
            self._timed_out_run, self._full_run = self._timed_out_run + 1, 0
            self.counters["timed_out_rounds"] += 1
        if self._timed_out_run >= 5:
            self.timeout_s, self._timed_out_run = self.timeout_s + 0.010, 0
        elif self._full_run >= 50:
            self.timeout_s, self._full_run = self.timeout_s - 0.010, 0
        self.timeout_s = min(max(self.timeout_s, self.cfg.timeout_min_s), self.cfg.timeout_max_s)

    # -- receiving ----------------------------------------------------------------------------

    def _admit(self, sender: int, msg: RoundMsg) -> Any:
        """R3: authenticate and validate; a rejected message is an omission (counted)."""
        reason = None
        if msg.instance != self.instance:
            reason = "instance"
        elif not 0 <= sender < self.cfg.n:
            reason = "unknown_sender"
        elif msg.sender != sender:
            reason = "wrong_sender"
        elif self.cfg.sign_round_msgs and not self._signature_ok(msg):
            reason = "bad_signature"
        if reason is not None:
            self.counters[f"rejected:{reason}"] += 1
            return _REJECT
        return self._decode_payload(msg)

    def _decode_payload(self, msg: RoundMsg) -> Any:
        try:
            payload = None if msg.payload is None else unpack_value(msg.payload)
            ok = self.alg.valid_payload(msg.round, payload)
        except Exception:  # noqa: BLE001 - a hostile payload must not stop the instance
            ok = False
        if not ok:
            self.counters["rejected:invalid_payload"] += 1
            return _REJECT
        return payload

    def _signature_ok(self, msg: RoundMsg) -> bool:
        if msg.sig is None or self.verify_keys is None:
            return False
        return self.verify_keys[msg.sender].verify(msg.sig, SIGN_DOMAIN, self.cfg.chain_id, msg.sign_fields())

    def _notice_ok(self, notice: DecidedNotice) -> bool:
        if notice.sig is None or self.verify_keys is None:
            return False
        fields = ["notice", notice.instance, notice.sender, notice.round, notice.value]
        return self.verify_keys[notice.sender].verify(notice.sig, SIGN_DOMAIN, self.cfg.chain_id, fields)

    def _store_current(self, sender: int, msg: RoundMsg, payload: Any, out: list[Action]) -> None:
        """R5: first message per sender wins; a different second one is a conflicting duplicate."""
        previous = self._mailbox_msgs.get(sender)
        if sender in self.mailbox:
            if previous is not None and previous.payload != msg.payload:
                self.counters["conflicting_duplicate"] += 1
                if previous.sig is not None and msg.sig is not None:
                    out.append(Evidence(("ho_equivocation", previous, msg)))
            else:
                self.counters["duplicate"] += 1
            return
        self.mailbox[sender] = payload
        self._mailbox_msgs[sender] = msg

    def _adopt_piggyback(self, msg: RoundMsg, now: float, out: list[Action]) -> None:
        if msg.decided is None or not self.alg.colorless or self.decision is not NONE:
            return
        try:
            value = unpack_value(msg.decided)
        except ValueError:
            self.counters["rejected:bad_decided"] += 1
            return
        self.counters["adopted"] += 1
        self._decide(value, self.round, out)

    def _on_notice(self, sender: int, notice: DecidedNotice, now: float, out: list[Action]) -> None:
        if notice.instance != self.instance or notice.sender != sender or not self.alg.colorless \
                or not 0 <= sender < self.cfg.n or (self.cfg.sign_round_msgs and not self._notice_ok(notice)):
            self.counters["rejected:notice"] += 1
            return
        if self.decision is NONE:
            try:
                value = unpack_value(notice.value)
            except ValueError:
                self.counters["rejected:notice"] += 1
                return
            self.counters["adopted"] += 1
            self._decide(value, self.round, out)
            self._halt(self.round, out)  # the sender has halted: lingering would only stall

    # -- helpers ------------------------------------------------------------------------------

    def _encode_state(self, state: Any) -> Any:
        encode = getattr(self.alg, "encode_state", None)
        return encode(state) if encode is not None else state

    def _decode_state(self, obj: Any) -> Any:
        decode = getattr(self.alg, "decode_state", None)
        if decode is not None:
            return decode(obj)
        make = getattr(self._state_type, "_make", None)
        return make(obj) if make is not None else obj

    def _fail(self, error: Exception) -> None:
        trace_digest = digest([sorted(h) for h in self.trace]).hex()[:16]
        cause = f"{type(error).__name__}: {error}"
        self.error = HoAlgorithmError(self.instance, self.round, trace_digest, cause)


_REJECT: Any = object()
