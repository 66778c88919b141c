"""`hedgerow tx`: build, sign and submit grassroots transactions, and query the ledger.

    hedgerow tx mint --maturity 0 --amount 15 --home ~/.hedgerow
    hedgerow tx transfer --to HEX --lot HEX:0:5 --home DIR --wait final
    hedgerow tx swap --counterparty HEX --give A:0:15 --want B:0:15 --expires-at 90 --cosig HEX --nonce 3
    hedgerow tx cosign --proposer HEX --proposer-nonce 3 --give ... --want ... --expires-at 90 --key B.key
    hedgerow tx redeem --issuer HEX --maturity 0 --amount 2 [--want HEX:0:2] --dry-run
    hedgerow tx query ratios agent=HEX --home DIR            (or --ledger-snapshot FILE, offline)

Accounts are 64 hex digits or `@label` (the deterministic test key of that label). A lot is
`ISSUER:MATURITY:AMOUNT`. Building and signing happen here through the client API; submission and
queries go through `submit` / `query` below (the node's RPC). A failed tx prints its code's name
(e.g. `INSUFFICIENT_BALANCE`) as one line and exits 1; a usage error exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError, UsageError, VerdictFailure
from hedgerow.node.output import console, print_json, table
from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client, SwapTerms, cosign, make_lots
from hedgerow.protocols.grassroots.codes import Code
from hedgerow.protocols.grassroots.encoding import Lot, decode_tx, tx_hash_of

WAITS = ("speculative", "final")


# --- the two calls that reach a live node ----------------------------------------------------------


def submit(home: Path, tx_bytes: bytes, wait: str | None) -> dict[str, Any]:
    """Send a signed tx to the node at `home` (its RPC); the node's answer as a dict."""
    from hedgerow.node.rpc_client import RpcCallError
    from hedgerow.node.rpc_client import submit as rpc_submit

    try:
        return rpc_submit(home, tx_bytes, wait)
    except RpcCallError as error:
        raise ConfigError(str(error)) from None


def query(home: Path, path: str, args: dict[str, Any]) -> Any:
    """Ask the node at `home` a ledger query (see `protocols/grassroots/app.py` for the paths)."""
    from hedgerow.node.rpc_client import RpcCallError
    from hedgerow.node.rpc_client import query as rpc_query

    try:
        return rpc_query(home, path, args)
    except RpcCallError as error:
        raise UsageError(str(error)) from None


# --- argument parsing ------------------------------------------------------------------------------


def parse_account(text: str) -> bytes:
    if text.startswith("@"):
        return SigningKey.from_label(text[1:]).public.raw
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not an account (64 hex digits or @label)")
    return raw


def parse_lot(text: str) -> Lot:
    parts = text.rsplit(":", 2)
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not a lot (ISSUER:MATURITY:AMOUNT)")
    try:
        return (parse_account(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: maturity and amount must be integers") from None


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--home", type=Path, default=default(None), help="node home (or $HEDGEROW_HOME)")
    parser.add_argument(
        "--key", type=Path, default=default(None), help="signing key file (default HOME/config/key.ed25519)"
    )
    parser.add_argument(
        "--key-label", default=default(None), help="use the deterministic test key of this label"
    )
    parser.add_argument("--chain-id", default=default(None), help="chain id (default: the home's genesis)")
    parser.add_argument("--nonce", type=int, default=default(None), help="nonce (default: ask the node)")
    parser.add_argument("--wait", choices=WAITS, default=default(None), help="wait for the tx to commit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=default(False),
        help="print the signed tx, its hash and the check_tx verdict; submit nothing",
    )
    parser.add_argument(
        "--ledger-snapshot",
        type=Path,
        default=default(None),
        help="a ledger snapshot file: dry-runs also execute against it; queries read it",
    )
    parser.add_argument("--json", action="store_true", default=default(False), help="print JSON")


def _lots(parser: argparse.ArgumentParser, name: str, help_text: str) -> None:
    parser.add_argument(
        f"--{name}",
        type=parse_lot,
        action="append",
        default=[],
        metavar="ISSUER:MATURITY:AMOUNT",
        help=help_text,
    )


Builder = Callable[[Client, argparse.Namespace], bytes]


def _kind(kinds: Any, name: str, help_text: str, builder: Builder) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = kinds.add_parser(name, help=help_text, description=help_text)
    _common(parser, suppress=True)
    parser.set_defaults(handler=run_tx, builder=builder)
    return parser


def register(verbs: Any) -> None:
    parser = verbs.add_parser(
        "tx",
        help="grassroots transactions and ledger queries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, suppress=False)
    kinds = parser.add_subparsers(dest="tx_kind", required=True, metavar="KIND")
    p = _kind(
        kinds,
        "mint",
        "issue bonds of your own (maturity 0 = coins)",
        lambda c, a: c.mint(a.maturity, a.amount),
    )
    p.add_argument("--maturity", type=int, default=0)
    p.add_argument("--amount", type=int, required=True)
    p = _kind(
        kinds,
        "burn",
        "destroy bonds of your own from your treasury",
        lambda c, a: c.burn(a.maturity, a.amount),
    )
    p.add_argument("--maturity", type=int, default=0)
    p.add_argument("--amount", type=int, required=True)
    p = _kind(kinds, "transfer", "pay lots to an account", lambda c, a: c.transfer(a.to, a.lot))
    p.add_argument("--to", type=parse_account, required=True)
    _lots(p, "lot", "a lot to pay (repeat)")
    for name, help_text in (("offer", "propose a swap; your `give` is locked until it closes"),):
        p = _kind(kinds, name, help_text, lambda c, a: c.offer(a.counterparty, a.give, a.want, a.expires_at))
        p.add_argument("--counterparty", type=parse_account, required=True)
        _lots(p, "give", "a lot you give (repeat)")
        _lots(p, "want", "a lot you want (repeat)")
        p.add_argument("--expires-at", type=int, required=True, help="ledger tick")
    p = _kind(kinds, "accept", "accept an offer made to you", _build_accept)
    p.add_argument("--offer", type=int, required=True)
    p.add_argument("--terms-hash", help="hex; default: computed from the offer as the node reports it")
    for name, help_text, method in (
        ("decline", "decline an offer made to you", "decline"),
        ("cancel-offer", "cancel your own open offer", "cancel_offer"),
        ("escrow-release", "release your escrow to its beneficiary", "escrow_release"),
        ("escrow-cancel", "refund your cancellable escrow", "escrow_cancel"),
        ("escrow-exercise", "exercise an option escrowed to you (pays its strike)", "escrow_exercise"),
        ("withdraw-claim", "withdraw your default claim (units come back)", "withdraw_claim"),
    ):
        p = _kind(kinds, name, help_text, _by_id(method))
        p.add_argument("--id", type=int, required=True, help="contract id")
    p = _kind(
        kinds,
        "redeem",
        "redeem an issuer's bonds 1-for-1 (auto when no --want)",
        lambda c, a: c.redeem(a.issuer, a.maturity, a.amount, a.want),
    )
    p.add_argument("--issuer", type=parse_account, required=True)
    p.add_argument("--maturity", type=int, default=0)
    p.add_argument("--amount", type=int, required=True)
    _lots(p, "want", "a lot you want from the issuer (repeat; none = auto)")
    p = _kind(kinds, "escrow-create", "escrow lots: time-release, delivery or option", _build_escrow)
    p.add_argument("--beneficiary", type=parse_account, required=True)
    _lots(p, "lot", "a lot to lock (repeat)")
    p.add_argument("--release-at", type=int)
    p.add_argument("--refund-at", type=int)
    _lots(p, "strike", "a lot the beneficiary pays to exercise (with --refund-at)")
    p.add_argument("--cancellable", action="store_true")
    p = _kind(
        kinds,
        "settle-claim",
        "pay (part of) a default claim against you",
        lambda c, a: c.settle_claim(a.id, a.lot),
    )
    p.add_argument("--id", type=int, required=True)
    _lots(p, "lot", "a lot to pay (repeat)")
    p = _kind(kinds, "swap", "an atomic swap cosigned by the counterparty (see `cosign`)", _build_swap)
    _swap_terms(p)
    p.add_argument("--cosig", required=True, help="the counterparty's cosignature (hex)")
    p = kinds.add_parser("cosign", help="cosign a swap proposed to you; prints the cosignature")
    _common(p, suppress=True)
    p.add_argument("--proposer", type=parse_account, required=True)
    p.add_argument("--proposer-nonce", type=int, required=True)
    _swap_terms(p)
    p.set_defaults(handler=run_cosign)
    p = kinds.add_parser("query", help="query the ledger: balance, contract(s), supply, ratios, ...")
    _common(p, suppress=True)
    p.add_argument(
        "what",
        help="balance, contract, contracts, supply, ratios, liabilities, redemption_menu, "
        "exposure, nonce, receipt, app_hash, status",
    )
    p.add_argument("args", nargs="*", metavar="KEY=VALUE", help="e.g. holder=HEX, id=3, agent=@alice")
    p.set_defaults(handler=run_query)
    from hedgerow.node.cmd_submit import register_submit

    register_submit(kinds)  # `hedgerow tx submit`: raw signed tx bytes (node issue)


def _swap_terms(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--counterparty", type=parse_account, default=None)
    _lots(parser, "give", "a lot the proposer gives (repeat)")
    _lots(parser, "want", "a lot the proposer wants (repeat)")
    parser.add_argument("--expires-at", type=int, required=True)


def _by_id(method: str) -> Builder:
    def build(client: Client, args: argparse.Namespace) -> bytes:
        built: bytes = getattr(client, method)(args.id)
        return built

    return build


def _build_accept(client: Client, args: argparse.Namespace) -> bytes:
    if args.terms_hash is not None:
        try:
            digest = bytes.fromhex(args.terms_hash)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise UsageError("--terms-hash must be 64 hex digits")
        return client.accept(args.offer, digest)
    offer = _read(args, "contract", {"id": args.offer})
    if not offer or offer.get("type") != "offer":
        raise VerdictFailure(Code.UNKNOWN_CONTRACT.name)

    def lots(items: list[dict[str, Any]]) -> list[Lot]:
        return [(bytes.fromhex(x["issuer"]), x["maturity"], x["amount"]) for x in items]

    return client.accept_terms(
        args.offer,
        bytes.fromhex(offer["proposer"]),
        lots(offer["give"]),
        lots(offer["want"]),
        offer["expires_at"],
    )


def _build_escrow(client: Client, args: argparse.Namespace) -> bytes:
    return client.escrow_create(
        args.beneficiary,
        args.lot,
        release_at=args.release_at,
        refund_at=args.refund_at,
        strike=args.strike,
        cancellable=args.cancellable,
    )


def _build_swap(client: Client, args: argparse.Namespace) -> bytes:
    if args.counterparty is None:
        raise UsageError("swap needs --counterparty")
    try:
        cosig = bytes.fromhex(args.cosig)
    except ValueError:
        raise UsageError("--cosig must be hex") from None
    return client.swap(client.swap_terms(args.counterparty, args.give, args.want, args.expires_at), cosig)


# --- context: home, key, chain, nonce -------------------------------------------------------------


def _home(args: argparse.Namespace) -> Path | None:
    home = getattr(args, "home", None) or os.environ.get("HEDGEROW_HOME")
    return Path(home) if home else None


def _genesis(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    home = _home(args)
    if home is None:
        if args.chain_id is None:
            raise UsageError("give --home DIR (or $HEDGEROW_HOME) or --chain-id")
        return args.chain_id, None
    from hedgerow.node.home import load_genesis

    genesis = load_genesis(home / "config" / "genesis.json")
    if args.chain_id is not None and args.chain_id != genesis.chain_id:
        raise UsageError(f"--chain-id {args.chain_id} differs from the genesis chain id {genesis.chain_id}")
    section = genesis.extra.get("grassroots")
    return genesis.chain_id, section if isinstance(section, dict) else None


def _key(args: argparse.Namespace) -> SigningKey:
    if args.key_label is not None:
        return SigningKey.from_label(args.key_label)
    from hedgerow.node.home import load_key_file

    if args.key is not None:
        return load_key_file(args.key)
    home = _home(args)
    if home is None:
        raise UsageError("give --key FILE, --key-label LABEL or --home DIR")
    return load_key_file(home / "config" / "key.ed25519")


def _params(chain_id: str, section: dict[str, Any] | None) -> Any:
    from hedgerow.protocols.grassroots.params import Params

    try:
        return Params.from_genesis(chain_id, section)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad grassroots genesis section: {error}") from None


def _offline_app(args: argparse.Namespace, params: Any) -> Any:
    from hedgerow.protocols.grassroots.app import GrassrootsApp

    app = GrassrootsApp(params)
    if args.ledger_snapshot is not None:
        try:
            app.restore(args.ledger_snapshot.read_bytes())
        except OSError as error:
            raise UsageError(f"cannot read {args.ledger_snapshot}: {error.strerror}") from None
        except ValueError as error:
            raise UsageError(f"bad ledger snapshot {args.ledger_snapshot}: {error}") from None
    return app


def _read(args: argparse.Namespace, path: str, query_args: dict[str, Any]) -> Any:
    """A query answered offline from --ledger-snapshot, or by the node at --home."""
    from hedgerow.protocols.grassroots.queries import QueryError

    home = _home(args)
    if args.ledger_snapshot is not None or home is None:
        chain_id, section = _genesis(args) if home is not None or args.chain_id else ("offline", None)
        try:
            return _offline_app(args, _params(chain_id, section)).query(path, query_args)
        except QueryError as error:
            raise UsageError(str(error)) from None
    return query(home, path, query_args)


# --- handlers --------------------------------------------------------------------------------------


def run_tx(args: argparse.Namespace) -> int:
    chain_id, section = _genesis(args)
    key = _key(args)
    nonce = args.nonce
    if nonce is None:
        nonce = int(_read(args, "nonce", {"account": key.public.raw.hex()})) if not _offline_only(args) else 0
    client = Client(key, chain_id, nonce=nonce)
    try:
        raw = args.builder(client, args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.dry_run:
        return _dry_run(args, raw, _params(chain_id, section))
    home = _home(args)
    if home is None:
        raise UsageError("submitting needs --home DIR (or use --dry-run)")
    answer = submit(home, raw, args.wait)
    return _report_submission(args, raw, answer)


def _offline_only(args: argparse.Namespace) -> bool:
    return bool(args.dry_run) and args.ledger_snapshot is None


def _dry_run(args: argparse.Namespace, raw: bytes, params: Any) -> int:
    app = _offline_app(args, params)
    verdict = app.check_tx(raw)
    tx = decode_tx(raw, params) if verdict.code != Code.MALFORMED else None
    report: dict[str, Any] = {
        "tx": raw.hex(),
        "tx_hash": tx_hash_of(raw).hex(),
        "check": verdict.code.name,
        "kind": tx.kind.name if tx else None,
        "signer": tx.signer.hex() if tx else None,
        "nonce": tx.nonce if tx else None,
        "bytes": len(raw),
    }
    if args.ledger_snapshot is not None:
        from hedgerow.protocols.grassroots.app import jsonable

        state = app.state
        receipts, _ = app.execute_block(state.height + 1, state.now + 1, [raw])
        report["receipt"] = {
            "code": receipts[0].code.name,
            "events": jsonable(receipts[0].events),
            "height": state.height,
        }
    _print(args, report, "dry run (nothing submitted)")
    failed = report.get("receipt", {}).get("code", verdict.code.name)
    if verdict.code != Code.OK or failed != "OK":
        raise VerdictFailure(verdict.code.name if verdict.code != Code.OK else failed)
    return 0


def _report_submission(args: argparse.Namespace, raw: bytes, answer: dict[str, Any]) -> int:
    report = {key: value.hex() if isinstance(value, bytes) else value for key, value in answer.items()}
    report.setdefault("tx_hash", tx_hash_of(raw).hex())
    if answer.get("status") == "rejected":
        raise VerdictFailure(str(answer.get("result", "rejected")).upper())
    result = answer.get("tx_result")
    name = result[1] if isinstance(result, list | tuple) and len(result) == 2 else None
    _print(args, report, "submitted")
    if name is not None and name != Code.OK.name:
        raise VerdictFailure(str(name))
    return 0


def run_cosign(args: argparse.Namespace) -> int:
    chain_id, _ = _genesis(args)
    key = _key(args)
    counterparty = args.counterparty or key.public.raw
    terms = SwapTerms(
        chain_id,
        args.proposer,
        args.proposer_nonce,
        counterparty,
        make_lots(args.give),
        make_lots(args.want),
        args.expires_at,
    )
    try:
        signature = cosign(terms, key)
    except ValueError as error:
        raise UsageError(str(error)) from None
    _print(args, {"cosig": signature.hex(), "counterparty": counterparty.hex()}, "cosignature")
    return 0


def run_query(args: argparse.Namespace) -> int:
    query_args: dict[str, Any] = {}
    for item in args.args:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"query argument {item!r} is not KEY=VALUE")
        query_args[name] = parse_account(value).hex() if value.startswith("@") else value
    answer = _read(args, args.what, query_args)
    if args.json:
        print_json(answer)
    elif isinstance(answer, list) and answer and isinstance(answer[0], dict):
        columns = list(answer[0])
        console.print(
            table(f"query {args.what}", columns, ([_cell(row.get(c)) for c in columns] for row in answer))
        )
    elif isinstance(answer, dict):
        console.print(
            table(f"query {args.what}", ["field", "value"], ((k, _cell(v)) for k, v in answer.items()))
        )
    else:
        console.print(json.dumps(answer))
    return 0


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _print(args: argparse.Namespace, report: dict[str, Any], title: str) -> None:
    if args.json:
        print_json(report)
    else:
        console.print(table(title, ["field", "value"], ((k, _cell(v)) for k, v in report.items())))
