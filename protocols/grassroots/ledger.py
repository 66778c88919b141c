"""The per-block pipeline (spec 5.1, 5.2): begin_block, one receipt per tx, app_hash and results_hash.

Pure: the block's `height` and `now` are the only clock. `apply_block` is the core of spec 4;
`begin_block` / `deliver_tx` / `end_block` expose the same steps one at a time for checkers.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hedgerow.protocols.crypto import VerifyKey
from hedgerow.protocols.grassroots.codes import Code, Kind
from hedgerow.protocols.grassroots.deadlines import fire_deadlines
from hedgerow.protocols.grassroots.encoding import (
    VERSION,
    Malformed,
    Swap,
    Tx,
    cosign_message,
    decode_tx,
    packb,
    sha256,
)
from hedgerow.protocols.grassroots.handlers_escrow import (
    handle_escrow_cancel,
    handle_escrow_create,
    handle_escrow_exercise,
    handle_escrow_release,
)
from hedgerow.protocols.grassroots.handlers_settle import (
    handle_redeem,
    handle_settle_claim,
    handle_withdraw_claim,
)
from hedgerow.protocols.grassroots.handlers_trade import (
    Result,
    handle_accept,
    handle_burn,
    handle_cancel_offer,
    handle_decline,
    handle_mint,
    handle_offer,
    handle_swap,
    handle_transfer,
)
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import LedgerState, app_hash

Handler = Callable[[LedgerState, Params, Tx], Result]
HANDLERS: dict[Kind, Handler] = {
    Kind.MINT: handle_mint,
    Kind.BURN: handle_burn,
    Kind.TRANSFER: handle_transfer,
    Kind.OFFER: handle_offer,
    Kind.ACCEPT: handle_accept,
    Kind.DECLINE: handle_decline,
    Kind.CANCEL_OFFER: handle_cancel_offer,
    Kind.REDEEM: handle_redeem,
    Kind.ESCROW_CREATE: handle_escrow_create,
    Kind.ESCROW_RELEASE: handle_escrow_release,
    Kind.ESCROW_CANCEL: handle_escrow_cancel,
    Kind.ESCROW_EXERCISE: handle_escrow_exercise,
    Kind.SETTLE_CLAIM: handle_settle_claim,
    Kind.WITHDRAW_CLAIM: handle_withdraw_claim,
    Kind.SWAP: handle_swap,
}


class BlockOrderError(Exception):
    """A block out of order or with a clock going backwards: a consensus bug, the node must halt."""


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    code: Code
    events: list[list[Any]]

    def wire(self) -> list[Any]:
        return [self.tx_hash, int(self.code), self.events]


@dataclass(frozen=True, slots=True)
class BlockResult:
    height: int
    now: int
    receipts: tuple[Receipt, ...]
    block_events: list[list[Any]]
    app_hash: bytes
    results_hash: bytes


def results_hash(receipts: Iterable[Receipt]) -> bytes:
    """sha256(packb(receipts)), each receipt as [tx_hash, code, events] (spec 4)."""
    return sha256(packb([receipt.wire() for receipt in receipts]))


@lru_cache(maxsize=4096)
def verify_key(account: bytes) -> VerifyKey:
    """The account's key object, kept for the next tx of the same signer (keys, never verdicts)."""
    return VerifyKey(account)


def precheck(raw: bytes, params: Params, verified: Container[bytes] = ()) -> tuple[Code, Tx | None]:
    """Steps 1-3 of spec 5.2 (schema, chain, signatures). Stateless: used by check_tx too.

    `verified` holds hashes of txs whose signatures already checked out (in check_tx): the hash covers
    every signed byte and the signatures, and verification is deterministic, so skipping it there
    gives the same verdict."""
    code, tx = check_schema(raw, params)
    if tx is None or code != Code.OK:
        return code, tx
    return check_signatures(tx, verified), tx


def check_schema(raw: bytes, params: Params) -> tuple[Code, Tx | None]:
    """Steps 1-2 of spec 5.2: decode and schema (MALFORMED), version and chain (WRONG_CHAIN)."""
    try:
        tx = decode_tx(raw, params)
    except Malformed:
        return Code.MALFORMED, None
    if tx.version != VERSION or tx.chain_id != params.chain_id:
        return Code.WRONG_CHAIN, tx
    return Code.OK, tx


def check_signatures(tx: Tx, verified: Container[bytes] = ()) -> Code:
    """Step 3 of spec 5.2: the signer's signature and, for SWAP, the counterparty's (BAD_SIGNATURE)."""
    if tx.tx_hash in verified:
        return Code.OK
    if not verify_key(tx.signer).verify_raw(tx.sig, tx.sign_payload):
        return Code.BAD_SIGNATURE
    body = tx.body
    if isinstance(body, Swap):
        message = cosign_message(
            tx.chain_id, tx.signer, tx.nonce, body.counterparty, body.give, body.want, body.expires_at
        )
        if not verify_key(body.counterparty).verify_raw(body.cosig, message):
            return Code.BAD_SIGNATURE
    return Code.OK


@dataclass
class Ledger:
    """The grassroots state machine over `LedgerState`, one block at a time."""

    params: Params
    state: LedgerState = field(default_factory=LedgerState)
    verified: Container[bytes] = ()  # hashes whose signatures were verified before (see precheck)
    rejected_total: dict[Code, int] = field(default_factory=dict)
    invalid_in_block_total: int = 0
    _receipts: list[Receipt] = field(default_factory=list)
    _block_events: list[list[Any]] = field(default_factory=list)
    _in_block: bool = False

    def begin_block(self, height: int, now: int) -> list[list[Any]]:
        state = self.state
        if self._in_block:
            raise BlockOrderError(f"begin_block({height}) while block {state.height} is still open")
        if height != state.height + 1 or now < state.now:
            raise BlockOrderError(
                f"block (height={height}, now={now}) does not follow (height={state.height}, now={state.now})"
            )
        state.height, state.now = height, now
        self._in_block = True
        self._receipts = []
        self._block_events = fire_deadlines(state)
        return self._block_events

    def deliver_tx(self, raw: bytes) -> Receipt:
        if not self._in_block:
            raise BlockOrderError("deliver_tx outside a block")
        code, tx = precheck(raw, self.params, self.verified)
        return self._record(self._execute(raw, code, tx))

    def _record(self, receipt: Receipt) -> Receipt:
        self._receipts.append(receipt)
        if receipt.code != Code.OK:
            self.rejected_total[receipt.code] = self.rejected_total.get(receipt.code, 0) + 1
            if receipt.code == Code.BAD_SIGNATURE:
                self.invalid_in_block_total += 1
        return receipt

    def _execute(self, raw: bytes, code: Code, tx: Tx | None) -> Receipt:
        if tx is None:
            return Receipt(sha256(raw), code, [])
        if code != Code.OK:
            return Receipt(tx.tx_hash, code, [])
        nonces = self.state.nonces
        if tx.nonce != nonces.get(tx.signer, 0):
            return Receipt(tx.tx_hash, Code.BAD_NONCE, [])
        nonces[tx.signer] = tx.nonce + 1
        code, events = HANDLERS[tx.kind](self.state, self.params, tx)
        return Receipt(tx.tx_hash, code, events)

    def end_block(self) -> BlockResult:
        if not self._in_block:
            raise BlockOrderError("end_block outside a block")
        self._in_block = False
        receipts = tuple(self._receipts)
        return BlockResult(
            self.state.height,
            self.state.now,
            receipts,
            self._block_events,
            app_hash(self.state),
            results_hash(receipts),
        )

    def apply_block(self, height: int, now: int, txs: Iterable[bytes]) -> BlockResult:
        """`begin_block`, `deliver_tx` for each tx, `end_block`, with the same receipts, but steps 1-3
        (stateless) run for the whole block first, each step as one loop: decoding, then every
        signature check back to back, then execution in block order. The Ed25519 code and the
        state then each stay in cache through a loop instead of evicting each other at every tx."""
        self.begin_block(height, now)
        raws = list(txs)
        schema = [check_schema(raw, self.params) for raw in raws]
        verified = self.verified
        codes = [
            code if tx is None or code != Code.OK else check_signatures(tx, verified) for code, tx in schema
        ]
        for raw, code, (_, tx) in zip(raws, codes, schema, strict=True):
            self._record(self._execute(raw, code, tx))
        return self.end_block()


def apply_block(
    state: LedgerState, params: Params, height: int, now: int, txs: Iterable[bytes]
) -> BlockResult:
    """The pure core of spec 4: mutate `state` by one block; return receipts and hashes."""
    return Ledger(params, state).apply_block(height, now, txs)
