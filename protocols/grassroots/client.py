"""Client side: build and sign every tx kind, and the named instruments of spec 5.4 as tx lists.

A `Client` holds one signing key and its next nonce; each builder returns the signed tx bytes and
advances the nonce. SWAP needs the counterparty's cosignature over the proposer's terms and nonce:
`swap_terms` -> counterparty `cosign` -> proposer `swap`, or `swap_with` when both keys are at hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hedgerow.protocols.crypto import SigningKey
from hedgerow.protocols.grassroots.codes import Kind
from hedgerow.protocols.grassroots.encoding import (
    VERSION,
    Accept,
    Body,
    Burn,
    ContractRef,
    EscrowCreate,
    Lot,
    Lots,
    Mint,
    Offer,
    Redeem,
    SettleClaim,
    Swap,
    Transfer,
    cosign_message,
    encode_tx,
    sign_message,
    terms_hash,
)


def make_lots(items: Iterable[Lot]) -> Lots:
    """Sort by (issuer, maturity) and merge duplicates, as the canonical lot list requires."""
    merged: dict[tuple[bytes, int], int] = {}
    for issuer, maturity, amount in items:
        merged[(issuer, maturity)] = merged.get((issuer, maturity), 0) + amount
    return tuple((issuer, maturity, amount) for (issuer, maturity), amount in sorted(merged.items()))


@dataclass(frozen=True, slots=True)
class SwapTerms:
    """What a SWAP's counterparty cosigns: the proposer's identity and nonce plus the terms."""

    chain_id: str
    proposer: bytes
    nonce: int
    counterparty: bytes
    give: Lots
    want: Lots
    expires_at: int

    def message(self) -> bytes:
        return cosign_message(
            self.chain_id, self.proposer, self.nonce, self.counterparty, self.give, self.want, self.expires_at
        )


def cosign(terms: SwapTerms, key: SigningKey) -> bytes:
    """The counterparty's signature over `terms` (it must be `terms.counterparty`)."""
    if key.public.raw != terms.counterparty:
        raise ValueError("only the named counterparty can cosign a swap")
    return key.sign_raw(terms.message())


class Client:
    """Builds signed transactions for one account."""

    def __init__(self, key: SigningKey, chain_id: str, nonce: int = 0, version: int = VERSION) -> None:
        self.key = key
        self.chain_id = chain_id
        self.nonce = nonce
        self.version = version

    @property
    def account(self) -> bytes:
        return self.key.public.raw

    def sign(self, kind: Kind, body: Body) -> bytes:
        """Sign `body` as a tx of `kind` with the next nonce, and advance the nonce."""
        wire = body.wire()
        sig = self.key.sign_raw(
            sign_message(self.version, self.chain_id, int(kind), self.account, self.nonce, wire)
        )
        raw = encode_tx(self.version, self.chain_id, int(kind), self.account, self.nonce, wire, sig)
        self.nonce += 1
        return raw

    # --- one builder per kind ------------------------------------------------------------------
    def mint(self, maturity: int, amount: int) -> bytes:
        return self.sign(Kind.MINT, Mint(maturity, amount))

    def burn(self, maturity: int, amount: int) -> bytes:
        return self.sign(Kind.BURN, Burn(maturity, amount))

    def transfer(self, to: bytes, lots: Iterable[Lot]) -> bytes:
        return self.sign(Kind.TRANSFER, Transfer(to, make_lots(lots)))

    def offer(self, counterparty: bytes, give: Iterable[Lot], want: Iterable[Lot], expires_at: int) -> bytes:
        return self.sign(Kind.OFFER, Offer(counterparty, make_lots(give), make_lots(want), expires_at))

    def accept(self, offer_id: int, offer_terms_hash: bytes) -> bytes:
        return self.sign(Kind.ACCEPT, Accept(offer_id, offer_terms_hash))

    def accept_terms(
        self, offer_id: int, proposer: bytes, give: Iterable[Lot], want: Iterable[Lot], expires_at: int
    ) -> bytes:
        """ACCEPT an offer whose terms the caller knows (it computes terms_hash itself)."""
        digest = terms_hash(offer_id, proposer, self.account, make_lots(give), make_lots(want), expires_at)
        return self.accept(offer_id, digest)

    def decline(self, offer_id: int) -> bytes:
        return self.sign(Kind.DECLINE, ContractRef(offer_id))

    def cancel_offer(self, offer_id: int) -> bytes:
        return self.sign(Kind.CANCEL_OFFER, ContractRef(offer_id))

    def redeem(self, issuer: bytes, maturity: int, amount: int, want: Iterable[Lot] = ()) -> bytes:
        return self.sign(Kind.REDEEM, Redeem(issuer, maturity, amount, make_lots(want)))

    def escrow_create(
        self,
        beneficiary: bytes,
        lots: Iterable[Lot],
        *,
        release_at: int | None = None,
        refund_at: int | None = None,
        strike: Iterable[Lot] = (),
        cancellable: bool = False,
    ) -> bytes:
        return self.sign(
            Kind.ESCROW_CREATE,
            EscrowCreate(beneficiary, make_lots(lots), release_at, refund_at, make_lots(strike), cancellable),
        )

    def escrow_release(self, escrow_id: int) -> bytes:
        return self.sign(Kind.ESCROW_RELEASE, ContractRef(escrow_id))

    def escrow_cancel(self, escrow_id: int) -> bytes:
        return self.sign(Kind.ESCROW_CANCEL, ContractRef(escrow_id))

    def escrow_exercise(self, escrow_id: int) -> bytes:
        return self.sign(Kind.ESCROW_EXERCISE, ContractRef(escrow_id))

    def settle_claim(self, claim_id: int, lots: Iterable[Lot]) -> bytes:
        return self.sign(Kind.SETTLE_CLAIM, SettleClaim(claim_id, make_lots(lots)))

    def withdraw_claim(self, claim_id: int) -> bytes:
        return self.sign(Kind.WITHDRAW_CLAIM, ContractRef(claim_id))

    def swap_terms(
        self, counterparty: bytes, give: Iterable[Lot], want: Iterable[Lot], expires_at: int
    ) -> SwapTerms:
        """The terms of this account's *next* tx as a SWAP, for the counterparty to cosign."""
        return SwapTerms(
            self.chain_id,
            self.account,
            self.nonce,
            counterparty,
            make_lots(give),
            make_lots(want),
            expires_at,
        )

    def swap(self, terms: SwapTerms, cosig: bytes) -> bytes:
        if terms.proposer != self.account or terms.nonce != self.nonce or terms.chain_id != self.chain_id:
            raise ValueError("swap terms were made for another signer, nonce or chain")
        return self.sign(Kind.SWAP, Swap(terms.counterparty, terms.give, terms.want, terms.expires_at, cosig))

    def swap_with(
        self, counterparty: Client, give: Iterable[Lot], want: Iterable[Lot], expires_at: int
    ) -> bytes:
        """A SWAP cosigned on the spot by `counterparty` (simulations, tests, one-wallet demos)."""
        terms = self.swap_terms(counterparty.account, give, want, expires_at)
        return self.swap(terms, cosign(terms, counterparty.key))
