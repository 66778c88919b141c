"""The CLI verbs of the foundation: --help everywhere, version, keygen, init; errors as one line.

The demo itself runs end to end in tests/test_demo.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hedgerow.node.cli import build_parser, main


def verbs() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "verb")  # noqa: SLF001 - argparse has no API
    return sorted(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("verb", ["version", "keygen", "init", "demo"])
def test_every_foundation_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert verb in verbs()
    with pytest.raises(SystemExit) as exited:
        main([verb, "--help"])
    assert exited.value.code == 0
    assert "usage: hedgerow" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("hedgerow ")


def test_keygen_and_init_then_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path / "k"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["node_id"]) == 40
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 2
    assert main(["init", "--home", str(tmp_path / "h"), "--chain-id", "local", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["role"] == "validator" and summary["chain_id"] == "local"
    assert main(["init", "--home", str(tmp_path / "h"), "--chain-id", "local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hedgerow: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_init_error_is_one_line_without_traceback_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    result = subprocess.run([sys.executable, "-m", "hedgerow.node.cli", "init", "--home", str(tmp_path),
                             "--chain-id", "local"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "refusing to overwrite" in result.stderr

