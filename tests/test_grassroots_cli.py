"""`hedgerow tx`: every kind builds and signs from CLI arguments; dry runs, offline queries, and
errors printed as the code's name on one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hedgerow.node.cli import main
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.codes import Kind
from hedgerow.protocols.grassroots.encoding import decode_tx
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import snapshot_bytes
from hedgerow.testnet.sim.grassroots_campaign import build_village

CHAIN = "cli-chain"
A = SigningKey.from_label("alice").public.raw.hex()
B = SigningKey.from_label("bob").public.raw.hex()
BASE = ["--key-label", "alice", "--chain-id", CHAIN, "--dry-run", "--json"]

KIND_ARGS: list[tuple[Kind, list[str]]] = [
    (Kind.MINT, ["mint", "--maturity", "25", "--amount", "24"]),
    (Kind.BURN, ["burn", "--amount", "1"]),
    (Kind.TRANSFER, ["transfer", "--to", "@bob", "--lot", f"{B}:0:5", "--lot", "@alice:0:1"]),
    (
        Kind.OFFER,
        [
            "offer",
            "--counterparty",
            "@bob",
            "--give",
            "@alice:125:24",
            "--want",
            "@bob:0:20",
            "--expires-at",
            "10",
        ],
    ),
    (Kind.ACCEPT, ["accept", "--offer", "1", "--terms-hash", "ab" * 32]),
    (Kind.DECLINE, ["decline", "--id", "2"]),
    (Kind.CANCEL_OFFER, ["cancel-offer", "--id", "3"]),
    (Kind.REDEEM, ["redeem", "--issuer", "@bob", "--amount", "2", "--want", "@alice:0:2"]),
    (
        Kind.ESCROW_CREATE,
        [
            "escrow-create",
            "--beneficiary",
            "@bob",
            "--lot",
            "@alice:0:3",
            "--refund-at",
            "9",
            "--strike",
            "@bob:0:3",
        ],
    ),
    (Kind.ESCROW_RELEASE, ["escrow-release", "--id", "4"]),
    (Kind.ESCROW_CANCEL, ["escrow-cancel", "--id", "4"]),
    (Kind.ESCROW_EXERCISE, ["escrow-exercise", "--id", "4"]),
    (Kind.SETTLE_CLAIM, ["settle-claim", "--id", "5", "--lot", "@bob:0:1"]),
    (Kind.WITHDRAW_CLAIM, ["withdraw-claim", "--id", "5"]),
]


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("kind", "argv"), KIND_ARGS, ids=[k.name for k, _ in KIND_ARGS])
def test_every_kind_builds_signs_and_passes_check_tx(
    kind: Kind, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(capsys, ["tx", *argv, *BASE, "--nonce", "4"])
    assert (report["check"], report["kind"], report["nonce"], report["signer"]) == ("OK", kind.name, 4, A)
    tx = decode_tx(bytes.fromhex(report["tx"]), Params(chain_id=CHAIN))
    assert tx.kind == kind and tx.tx_hash.hex() == report["tx_hash"]


def test_options_may_come_before_the_kind(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(
        capsys,
        ["tx", "--key-label", "alice", "--chain-id", CHAIN, "--json", "--dry-run", "mint", "--amount", "3"],
    )
    assert report["kind"] == "MINT" and report["check"] == "OK"


def snapshot_file(tmp_path: Path) -> Path:
    path = tmp_path / "village.ledger"
    path.write_bytes(snapshot_bytes(build_village().state))
    return path


def test_cosign_then_swap_executes_against_a_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = snapshot_file(tmp_path)
    terms = ["--give", "@grassroots/A:0:2", "--want", "@grassroots/C:0:2", "--expires-at", "500"]
    offline = ["--chain-id", "hedgerow-sim", "--ledger-snapshot", str(snapshot), "--json"]
    nonce = run_json(capsys, ["tx", "query", "nonce", "account=@grassroots/E", *offline])
    cosig = run_json(
        capsys,
        [
            "tx",
            "cosign",
            "--proposer",
            "@grassroots/E",
            "--proposer-nonce",
            str(nonce),
            "--counterparty",
            "@grassroots/C",
            *terms,
            "--key-label",
            "grassroots/C",
            "--chain-id",
            "hedgerow-sim",
            "--json",
        ],
    )["cosig"]
    report = run_json(
        capsys,
        [
            "tx",
            "swap",
            "--counterparty",
            "@grassroots/C",
            *terms,
            "--cosig",
            cosig,
            "--key-label",
            "grassroots/E",
            "--dry-run",
            *offline,
        ],
    )
    assert report["receipt"]["code"] == "OK" and report["receipt"]["events"][0][0] == "swap"


def test_failed_tx_prints_the_code_name_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = snapshot_file(tmp_path)
    argv = [
        "tx",
        "transfer",
        "--to",
        "@bob",
        "--lot",
        "@grassroots/A:0:1",
        "--key-label",
        "grassroots/B",
        "--chain-id",
        "hedgerow-sim",
        "--ledger-snapshot",
        str(snapshot),
        "--dry-run",
        "--json",
    ]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "hedgerow: error: INSUFFICIENT_BALANCE"
    assert json.loads(captured.out)["receipt"]["code"] == "INSUFFICIENT_BALANCE"
    assert (
        main(
            [
                "tx",
                "mint",
                "--amount",
                "1",
                "--key-label",
                "grassroots/B",
                "--chain-id",
                "hedgerow-sim",
                "--ledger-snapshot",
                str(snapshot),
                "--dry-run",
                "--nonce",
                "0",
            ]
        )
        == 1
    )
    assert capsys.readouterr().err.strip() == "hedgerow: error: BAD_NONCE"  # nonce 0 is long used
    assert (
        main(
            [
                "tx",
                "mint",
                "--amount",
                "1",
                "--key-label",
                "grassroots/B",
                "--chain-id",
                "hedgerow-sim",
                "--ledger-snapshot",
                str(snapshot),
                "--dry-run",
            ]
        )
        == 0
    )  # the snapshot's nonce; claim settled
    capsys.readouterr()


def test_bad_signature_in_dry_run_of_a_wrong_chain_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tx", "mint", "--amount", "0", *BASE]) == 1  # amount 0: a schema error
    assert capsys.readouterr().err.strip() == "hedgerow: error: MALFORMED"


def test_offline_queries_of_the_village(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    offline = ["--chain-id", "hedgerow-sim", "--ledger-snapshot", str(snapshot_file(tmp_path)), "--json"]
    ratios = run_json(capsys, ["tx", "query", "ratios", "agent=@grassroots/A", *offline])
    assert ratios["ratios"] == {"cash": "10/11", "quick": "10/11", "current": "10/11"}
    supply = run_json(capsys, ["tx", "query", "supply", "issuer=@grassroots/D", *offline])
    assert [(row["maturity"], row["outstanding"]) for row in supply] == [(0, 35)]
    assert run_json(capsys, ["tx", "query", "contract", "id=4", *offline])["state"] == "SETTLED"
    assert main(["tx", "query", "ratios", "agent=zz", *offline]) == 2
    assert "must be a 32-byte account" in capsys.readouterr().err
    assert main(["tx", "query", "balance", "holder=@grassroots/A", *offline[:-1]]) == 0  # a table
    assert "free" in capsys.readouterr().out


def test_home_supplies_chain_id_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--chain-id", "village-1"]) == 0
    capsys.readouterr()
    report = run_json(
        capsys, ["tx", "mint", "--amount", "3", "--home", str(home), "--nonce", "0", "--dry-run", "--json"]
    )
    assert report["check"] == "OK"
    assert decode_tx(bytes.fromhex(report["tx"]), Params(chain_id="village-1")).chain_id == "village-1"
    assert main(["tx", "mint", "--amount", "3", "--home", str(home), "--chain-id", "other", "--dry-run"]) == 2


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tx", "mint", "--amount", "3", "--key-label", "a", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().startswith("hedgerow: error: give --home")
    assert main(["tx", "swap", "--counterparty", "@b", "--expires-at", "3", "--cosig", "zz", *BASE]) == 2
    assert "Traceback" not in capsys.readouterr().err
