"""Read-only queries over the ledger (spec 6.2, 6.3), returning JSON-ready values (keys as hex)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hedgerow.protocols.grassroots.handlers_settle import auto_candidates
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.ratios import exposure, liabilities, net_position, owned_units, ratios
from hedgerow.protocols.grassroots.state import ClaimContract, EscrowContract, LedgerState, OfferContract

Contract = OfferContract | EscrowContract | ClaimContract


class QueryError(ValueError):
    """A query with an unknown path or bad arguments."""


def key_arg(args: Mapping[str, Any], name: str) -> bytes:
    value = args.get(name)
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
    raise QueryError(f"argument {name!r} must be a 32-byte account (64 hex digits)")


def int_arg(args: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = args.get(name, default)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int:
        raise QueryError(f"argument {name!r} must be an integer")
    return value


def lots_json(lots: Any) -> list[dict[str, Any]]:
    return [
        {"issuer": issuer.hex(), "maturity": maturity, "amount": amount} for issuer, maturity, amount in lots
    ]


def contract_json(contract: Contract) -> dict[str, Any]:
    if isinstance(contract, OfferContract):
        return {
            "type": "offer",
            "id": contract.id,
            "proposer": contract.proposer.hex(),
            "counterparty": contract.counterparty.hex(),
            "give": lots_json(contract.give),
            "want": lots_json(contract.want),
            "expires_at": contract.expires_at,
            "created_at": contract.created_at,
            "state": contract.state.name,
        }
    if isinstance(contract, EscrowContract):
        return {
            "type": "escrow",
            "id": contract.id,
            "depositor": contract.depositor.hex(),
            "beneficiary": contract.beneficiary.hex(),
            "lots": lots_json(contract.lots),
            "release_at": contract.release_at,
            "refund_at": contract.refund_at,
            "strike": lots_json(contract.strike),
            "cancellable": contract.cancellable,
            "created_at": contract.created_at,
            "state": contract.state.name,
        }
    return {
        "type": "claim",
        "id": contract.id,
        "claimant": contract.claimant.hex(),
        "issuer": contract.issuer.hex(),
        "maturity": contract.maturity,
        "amount": contract.amount,
        "opened_at": contract.opened_at,
        "state": contract.state.name,
    }


def find_contract(state: LedgerState, contract_id: int) -> Contract | None:
    return state.offers.get(contract_id) or state.escrows.get(contract_id) or state.claims.get(contract_id)


def balance(state: LedgerState, args: Mapping[str, Any]) -> Any:
    holder = key_arg(args, "holder")
    held = state.holdings.get(holder, {})
    return {
        "holder": holder.hex(),
        "free": lots_json((issuer, maturity, amount) for (issuer, maturity), amount in sorted(held.items())),
    }


def contract(state: LedgerState, args: Mapping[str, Any]) -> Any:
    found = find_contract(state, int_arg(args, "id"))
    return None if found is None else contract_json(found)


def contracts(state: LedgerState, args: Mapping[str, Any]) -> Any:
    party = key_arg(args, "party") if "party" in args else None
    everything: list[Contract] = [*state.offers.values(), *state.escrows.values(), *state.claims.values()]
    rows = [contract_json(c) for c in sorted(everything, key=lambda c: c.id)]
    if party is not None:
        rows = [
            row
            for row in rows
            if party.hex()
            in (
                row.get("proposer"),
                row.get("counterparty"),
                row.get("depositor"),
                row.get("beneficiary"),
                row.get("claimant"),
                row.get("issuer"),
            )
        ]
    return rows


def supply(state: LedgerState, args: Mapping[str, Any]) -> Any:
    """Per class: minted, burned, outstanding (= minted - burned) and the part held by others."""
    issuer_filter = key_arg(args, "issuer") if "issuer" in args else None
    held_by_others: dict[tuple[bytes, int], int] = {}
    for owner, issuer, maturity, amount in owned_units(state):
        if owner != issuer:
            held_by_others[(issuer, maturity)] = held_by_others.get((issuer, maturity), 0) + amount
    rows = []
    for (issuer, maturity), minted in sorted(state.minted.items()):
        if issuer_filter is not None and issuer != issuer_filter:
            continue
        burned = state.burned.get((issuer, maturity), 0)
        rows.append(
            {
                "issuer": issuer.hex(),
                "maturity": maturity,
                "minted": minted,
                "burned": burned,
                "outstanding": minted - burned,
                "held_by_others": held_by_others.get((issuer, maturity), 0),
            }
        )
    return rows


def agent_report(state: LedgerState, params: Params, args: Mapping[str, Any]) -> Any:
    agent = key_arg(args, "agent")
    report = ratios(state, params, agent)
    return {
        "agent": agent.hex(),
        "cash": report.cash,
        "quick": report.quick,
        "current": report.current,
        "current_liabilities": report.current_liabilities,
        "ratios": report.as_strings(),
        "liabilities": liabilities(state, agent),
        "net_position": net_position(state, agent),
        "default_count": state.default_count.get(agent, 0),
        "in_default": state.in_default(agent),
    }


def redemption_menu(state: LedgerState, args: Mapping[str, Any]) -> Any:
    """What an auto redemption of `issuer`'s matured bonds by `redeemer` would draw on, in order,
    plus GLP's menu: the issuer's earliest-maturity free holding per other issuer."""
    issuer, redeemer = key_arg(args, "issuer"), key_arg(args, "redeemer")
    earliest: dict[bytes, tuple[int, int]] = {}
    for (other, maturity), amount in sorted(state.holdings.get(issuer, {}).items()):
        if other != issuer and other not in earliest:
            earliest[other] = (maturity, amount)
    return {
        "auto": lots_json(auto_candidates(state, issuer, redeemer)),
        "menu": lots_json(
            (other, maturity, amount) for other, (maturity, amount) in sorted(earliest.items())
        ),
    }


def exposure_query(state: LedgerState, args: Mapping[str, Any]) -> Any:
    agent, other = key_arg(args, "agent"), key_arg(args, "other")
    mine, theirs = exposure(state, agent, other)
    return {"holds_of_other": mine, "other_holds": theirs}


def nonce(state: LedgerState, args: Mapping[str, Any]) -> Any:
    return state.nonces.get(key_arg(args, "account"), 0)


StateQuery = Callable[[LedgerState, Mapping[str, Any]], Any]
STATE_QUERIES: dict[str, StateQuery] = {
    "balance": balance,
    "contract": contract,
    "contracts": contracts,
    "supply": supply,
    "redemption_menu": redemption_menu,
    "exposure": exposure_query,
    "nonce": nonce,
}
PARAM_QUERIES = {"ratios": agent_report, "liabilities": agent_report}
