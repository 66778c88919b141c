"""Communication predicates on hand-made traces, and the oracles' declared guarantees."""

from __future__ import annotations

import random
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from hedgerow.protocols import wire
from hedgerow.protocols.heardof import predicates as P
from hedgerow.protocols.heardof.messages import Envelope, FloodPayload, RoundMsg, pack_value, unpack_value
from hedgerow.testnet.sim.heardof_oracles import GoodPhase, RandomHOf, Silence, Split, Uniform

F = frozenset
ALL4 = F({0, 1, 2, 3})


def test_hof_needs_size_and_self() -> None:
    assert P.p_hof([[ALL4, F({1, 2, 3}), F({0, 2, 3}), F({0, 1, 3})]], 1)
    assert not P.p_hof([[F({1, 2, 3}), ALL4, ALL4, ALL4]], 1)          # 0 misses itself
    assert not P.p_hof([[F({0, 1}), ALL4, ALL4, ALL4]], 1)             # only 2 < n - f = 3
    assert P.p_hof([[F({0, 1}), ALL4, ALL4, ALL4]], 2)


def test_nosplit_maj_kernel() -> None:
    split = [F({0, 1}), F({0, 1}), F({2}), F({2})]
    assert not P.p_nosplit([split])
    assert P.p_nosplit([[F({0, 1}), F({1, 2}), F({1, 3}), F({0, 1, 3})]])
    assert not P.p_maj([[F({0, 1}), ALL4, ALL4, ALL4]])                # 2 of 4 is no majority
    assert P.p_maj([[F({0, 1, 2}), ALL4, ALL4, ALL4]])
    assert P.p_kernel([[F({0, 1}), F({1, 2}), F({1, 3}), F({1})]])
    assert not P.p_kernel([[F({0, 1}), F({2, 3}), ALL4, ALL4]])
    assert P.kernel([F({0, 1}), F({1, 2})]) == F({1})


def test_uniform_predicates() -> None:
    uni = [F({0, 1, 2})] * 4
    mixed = [ALL4, F({0, 1, 2}), ALL4, ALL4]
    assert P.uniform(uni) and not P.uniform(mixed)
    assert P.p_unif([mixed, uni]) and not P.p_unif([mixed, mixed])
    assert P.p_sp_unif([uni, uni]) and not P.p_sp_unif([uni, mixed])


def test_otr_predicate() -> None:
    n = 4
    good = [ALL4] * n
    weak = [F({0, 1})] * n
    assert P.otr_good_round([weak, good, good]) == 1
    assert not P.p_otr([weak, good])                   # nobody hears > 2n/3 after r0 = 1
    assert not P.p_otr([[F({0, 1, 2})] * 3 + [F({0, 1})], good])   # r0 not uniform
    assert P.p_otr([[F({0, 1, 2})] * n, good])          # 3*3 > 8


def test_lv_predicate() -> None:
    n = 3
    full = [F({0, 1, 2})] * n
    assert P.lv_good_phase([full] * 4, 0)
    bad_step1 = [full, [F({0, 1, 2}), F({1}), F({0, 2})], full, full]  # 1 misses coordinator 0
    assert not P.lv_good_phase(bad_step1, 0)
    minority = [[F({0}), F({1}), F({2})], full, full, full]           # coord hears only itself
    assert not P.lv_good_phase(minority, 0)
    assert P.lv_good_phase(bad_step1 + [full] * 4, 1)                  # phase 1, coordinator 1


@given(st.integers(4, 8), st.integers(1, 3), st.integers(1, 4), st.integers(0, 10_000))
def test_silence_meets_hof_iff_at_most_f_silenced(n: int, f: int, size: int, seed: int) -> None:
    f = min(f, (n - 1) // 2)
    size = min(size, n - 1)
    rng = random.Random(seed)
    silenced = F(rng.sample(range(n), size))
    oracle = Silence(silenced, 0, True, f)
    trace = [oracle.ho_sets(r, n, None, rng) for r in range(6)]
    assert P.p_hof(trace, f) == (size <= f)
    assert (oracle.guarantees == ("hof",)) == (size <= f)
    for a in trace:   # nobody outside S ever hears a member of S
        assert all(not (a[p] & silenced) for p in range(n) if p not in silenced)


@given(st.integers(3, 9), st.integers(0, 10_000))
def test_oracles_keep_their_guarantees(n: int, seed: int) -> None:
    f = (n - 1) // 2
    rng = random.Random(seed)
    hof = [RandomHOf(f=f).ho_sets(r, n, None, rng) for r in range(5)]
    assert P.p_hof(hof, f) and P.p_nosplit(hof)          # n > 2f implies nosplit
    good = GoodPhase(phase=1, base=RandomHOf(f=f))
    assert P.lv_good_phase([good.ho_sets(r, n, None, rng) for r in range(8)], 1)
    uni = Uniform(rounds=F({2}), base=RandomHOf(f=f))
    assert P.uniform(uni.ho_sets(2, n, None, rng))
    assert not P.nosplit_round(Split(group=F({0})).ho_sets(0, n, None, rng))


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8)
    | st.fractions(min_value=-10**9, max_value=10**9, max_denominator=10**6),
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.frozensets(st.integers(0, 9), max_size=4),
    max_leaves=12,
))
def test_value_codec_round_trips(value: object) -> None:
    assert unpack_value(pack_value(value)) == value


def test_messages_round_trip_and_reject() -> None:
    env = Envelope(1, 0, 0, -1, pack_value(Fraction(1, 3)))
    payload = FloodPayload((1, 2, 0), (env,))
    msg = RoundMsg(7, 3, 1, pack_value(payload), None, None)
    assert wire.decode(wire.encode(msg)) == msg
    assert unpack_value(msg.payload or b"") == payload
    for bad in (RoundMsg(7, -1, 1, None, None, None), RoundMsg(7, 0, 1, None, None, b"short")):
        try:
            wire.decode(wire.encode(bad))
        except wire.DecodeError:
            continue
        raise AssertionError(f"{bad} decoded")
    try:
        unpack_value(b"\xc1")
    except ValueError:
        pass
    else:
        raise AssertionError("garbage unpacked")
