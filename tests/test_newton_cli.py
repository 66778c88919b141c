"""`hedgerow job newton` (node/cmd_newton.py): JSON report, verdicts, one-line usage errors."""

from __future__ import annotations

import json

import pytest

from hedgerow.node.cli import main


def test_json_report_with_check(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "newton", "--system", "gru", "--T", "500", "--method", "deer", "--batch", "2",
                 "--local", "--check", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "converged" and report["verified"] is True
    assert report["iterations"] == max(report["iterations_per_sequence"]) <= 8
    assert report["max_residual"] <= 1e-10 and report["max_err_vs_seq"] <= 1e-8
    for key in ("wall_s", "seq_wall_s", "speedup"):
        assert report[key] >= 0


def test_float32_quasi_deer_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "newton", "--system", "mfrnn", "--T", "200", "--D", "8", "--method", "quasi_deer",
                 "--dtype", "float32"])
    assert code == 0
    out = capsys.readouterr().out
    assert "converged" in out and "float32" in out


def test_not_converged_is_verdict_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["job", "newton", "--system", "logistic", "--T", "300", "--method", "deer", "--max-iter", "5",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["status"] == "max_iter"
    assert captured.err.startswith("hedgerow: error: job max_iter")


@pytest.mark.parametrize("argv, needle", [
    (["--system", "lorenz", "--T", "10"], "unknown --system"),
    (["--system", "gru", "--T", "10", "--method", "newton"], "unknown --method"),
    (["--system", "gru", "--T", "0"], "must be >= 1"),
    (["--system", "gru", "--T", "10", "--batch", "0"], "must be >= 1"),
    (["--system", "gru", "--T", "10", "--dtype", "float16"], "--dtype must be"),
    (["--system", "logistic", "--T", "10", "--D", "3"], "logistic map has D = 1"),
    (["--system", "gru", "--T", "10", "--tol", "-1"], "--tol must be"),
    (["--system", "gru", "--T", "10", "--lam", "-1"], "--lam must be"),
    (["--system", "gru", "--T", "10", "--max-iter", "0"], "--max-iter must be"),
    (["--system", "gru", "--T", "10", "--device", "tpu"], "--device 'tpu'"),
])
def test_bad_input_is_one_line_usage_error(argv: list[str], needle: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["job", "newton", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hedgerow: error:") and needle in err
