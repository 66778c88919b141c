"""A small harness for tests and examples: lettered agents, one ledger, the invariant monitor."""

from __future__ import annotations

from dataclasses import dataclass, field

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.client import Client
from hedgerow.protocols.grassroots.codes import Code
from hedgerow.protocols.grassroots.invariants import Monitor
from hedgerow.protocols.grassroots.ledger import BlockResult, Ledger, Receipt
from hedgerow.protocols.grassroots.params import Params
from hedgerow.protocols.grassroots.state import LedgerState

TEST_CHAIN = "hedgerow-test"


class InvariantBroken(Exception):
    """The monitor found a violated invariant."""


@dataclass
class Harness:
    letters: str = "ABC"
    params: Params = field(default_factory=lambda: Params(chain_id=TEST_CHAIN))
    label_prefix: str = "test"

    def __post_init__(self) -> None:
        self.clients = {
            x: Client(SigningKey.from_label(f"{self.label_prefix}/{x}"), self.params.chain_id)
            for x in self.letters
        }
        self.monitor = Monitor(Ledger(self.params, LedgerState()))
        self.last: BlockResult | None = None

    @property
    def ledger(self) -> Ledger:
        return self.monitor.ledger

    @property
    def state(self) -> LedgerState:
        return self.monitor.ledger.state

    def __getitem__(self, letter: str) -> Client:
        return self.clients[letter]

    def key(self, letter: str) -> bytes:
        return self.clients[letter].account

    def block(self, *txs: bytes, now: int | None = None) -> list[Receipt]:
        """One block at `now` (default: one tick later); raises if an invariant broke."""
        state = self.state
        self.last = self.monitor.apply_block(state.height + 1, state.now + 1 if now is None else now, txs)
        if self.monitor.violations:
            raise InvariantBroken("; ".join(self.monitor.violations[:5]))
        return list(self.last.receipts)

    def codes(self, *txs: bytes, now: int | None = None) -> list[Code]:
        return [receipt.code for receipt in self.block(*txs, now=now)]

    def code(self, tx: bytes, now: int | None = None) -> Code:
        return self.codes(tx, now=now)[0]

    def ok(self, *txs: bytes, now: int | None = None) -> list[Receipt]:
        receipts = self.block(*txs, now=now)
        bad = [receipt.code.name for receipt in receipts if receipt.code != Code.OK]
        if bad:
            raise AssertionError(f"expected OK receipts, got {bad}")
        return receipts

    def free(self, holder: str, issuer: str, maturity: int = 0) -> int:
        return self.state.free(self.key(holder), self.key(issuer), maturity)

    def lot(self, issuer: str, maturity: int, amount: int) -> tuple[bytes, int, int]:
        return (self.key(issuer), maturity, amount)

    def credit_line(self, a: str, b: str, amount: int) -> None:
        """Mint and swap `amount` a-coins for b-coins."""
        ca, cb = self[a], self[b]
        self.ok(
            ca.mint(0, amount),
            cb.mint(0, amount),
            ca.swap_with(cb, [self.lot(a, 0, amount)], [self.lot(b, 0, amount)], self.state.now + 100),
        )
