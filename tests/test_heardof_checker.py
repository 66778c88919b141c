"""The exhaustive checker reproduces the spec's reference counts (§9) and bites without nosplit."""

from __future__ import annotations

import itertools

import pytest

from hedgerow.node.cli import main
from hedgerow.protocols.heardof.algorithms import FloodMin, LastVoting, OneThirdRule, UniformVoting
from hedgerow.protocols.heardof.checker import binary_inputs, check, nosplit, uniform
from hedgerow.testnet.sim.heardof_executor import run_lockstep
from hedgerow.testnet.sim.heardof_oracles import Scripted

F = frozenset


@pytest.mark.parametrize(("n", "values", "expected"), [(3, 2, 22), (3, 3, 48), (4, 2, 102), (4, 3, 294)])
def test_otr_reachable_configurations(n: int, values: int, expected: int) -> None:
    for self_heard in (True, False):   # identical counts when self-omission is allowed
        result = check(OneThirdRule(n), n, binary_inputs(n, values), self_heard=self_heard)
        assert result.configurations == expected
        assert result.violations == []


@pytest.mark.parametrize(("n", "expected"), [(3, 51), (4, 107)])
def test_uv_with_nosplit(n: int, expected: int) -> None:
    result = check(UniformVoting(n), n, binary_inputs(n), round_filter=nosplit)
    assert result.configurations == expected
    assert result.violations == []


def test_uv_without_nosplit_violates_agreement_first_at_round_1() -> None:
    result = check(UniformVoting(3), 3, binary_inputs(3))
    agreement = [v for v in result.violations if v.kind == "agreement"]
    assert agreement and min(v.round for v in result.violations) == 1
    witness = agreement[0]
    assert len(witness.ho_sets) == 2 and len({d for d in witness.decisions if d is not None}) == 2
    # the spec's witness, replayed on the lock-step executor: inputs (1,1,0), HO {0,1},{0,1},{2} twice
    table = [[F({0, 1}), F({0, 1}), F({2})]] * 2
    res = run_lockstep(UniformVoting(3), (1, 1, 0), Scripted(table=table), seed=0, max_rounds=2)
    assert res.decisions == [1, 1, 0] and any("agreement" in v for v in res.violations)


@pytest.mark.parametrize(("r0", "layers"), [(0, [8, 3, 3, 3, 2]), (1, [8, 15, 4, 4, 2])])
def test_uv_bounded_liveness_is_tight(r0: int, layers: list[int]) -> None:
    alg = UniformVoting(3)
    result = check(alg, 3, binary_inputs(3), horizon=4,
                   filter_rounds=lambda r: uniform if r == r0 else nosplit)
    assert result.layer_sizes == layers
    bound = 2 * (r0 // 2) + 3
    assert bound == 3
    assert all(s.dec is not None for c in result.end_configurations for s in c)
    before = check(alg, 3, binary_inputs(3), horizon=bound,
                   filter_rounds=lambda r: uniform if r == r0 else nosplit)
    assert any(s.dec is None for c in before.end_configurations for s in c)


def test_lv_layers_n3() -> None:
    result = check(LastVoting(3), 3, binary_inputs(3), horizon=16)
    assert len(result.layer_sizes) == 17
    assert result.configurations == 9728
    assert result.violations == []


def test_lv_layers_n4() -> None:
    result = check(LastVoting(4), 4, binary_inputs(4), horizon=12)
    assert len(result.layer_sizes) == 13
    assert result.configurations == 15397
    assert result.violations == []


def test_floodmin_k_agreement() -> None:
    perms = list(itertools.permutations(range(4)))
    hof = check(FloodMin(4), 4, perms, f=1, k=2)
    assert hof.max_distinct_decisions == 2 and hof.violations == []
    anything = check(FloodMin(4), 4, perms, k=2)
    assert anything.max_distinct_decisions == 4 and anything.violations


def test_cli_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rounds", "check", "--algorithm", "otr", "--n", "3", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"configurations": 22' in out and '"violations": []' in out
    assert main(["rounds", "check", "--algorithm", "uv", "--n", "3", "--predicate", "any", "--json"]) == 1
    assert '"first_violation_round": 1' in capsys.readouterr().out
    assert main(["rounds", "check", "--algorithm", "uv", "--n", "3"]) == 0
    assert main(["rounds", "check", "--algorithm", "floodmin", "--n", "4", "--predicate", "hof"]) == 0
    assert main(["rounds", "check", "--algorithm", "otr", "--n", "9"]) == 2
