"""Incremental canonical state encoding: the app_hash preimage of spec 4 from cached fragments.

`packb(state_wire(state))` packs every balance row, nonce and contract again at each block; at 10^5
balances that is most of a block's time. A msgpack array is its header followed by its packed items,
so the same bytes come from fragments that are packed once and kept until their value changes:

- balance rows grouped by holder and supply rows grouped by issuer (`Groups`): each group keeps its
  sorted keys, its packed rows in the same order and their join; the rows that `add`/`sub`/
  `add_supply` marked dirty are repacked, then only the groups they belong to are joined again;
- nonces: one packed pair per account, compared by value each call (no marking needed);
- contracts (`Contracts`): packed once when they appear, in buckets of consecutive ids, each bucket
  joined again only when a contract in it changes. Only an open contract can still change (terminal
  ones never do, invariant 4), so only those are compared, by the fields a handler may set.

`check_state` compares the result with `packb(state_wire(state))`, and tests do so after random
sequences of blocks, snapshots and restores. Nothing here is hashed as such or compared as state.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any

import msgpack

# One packer for the process: `pack` of lists, bytes, str and ints runs in C without calling back
# into Python, so it cannot interleave; it skips building a Packer per call as `msgpack.packb` does.
pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
BUCKET_BITS = 7  # contracts are bucketed by id >> BUCKET_BITS
STATE_TAG = "grassroots-state/v1"
ROW_KEY_BYTES = 32 + 8  # issuer, maturity as a big-endian uint64


def array_header(length: int) -> bytes:
    """The msgpack header of an array of `length` items."""
    if length < 16:
        return bytes([0x90 | length])
    if length < 2**16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


class Groups:
    """Rows `[group, *key, *values]` sorted by (group, key), kept as one joined fragment per group.

    `row(group, key)` returns the row's packed bytes, or None when the row is absent."""

    __slots__ = ("order", "keys", "parts", "chunks", "stale", "count")

    def __init__(self) -> None:
        self.order: list[Any] = []  # groups with at least one row, sorted
        self.keys: dict[Any, list[Any]] = {}  # group -> its row keys, sorted
        self.parts: dict[Any, list[bytes]] = {}  # group -> packed rows, in key order
        self.chunks: dict[Any, bytes] = {}  # group -> b"".join(parts[group])
        self.stale: set[Any] = set()  # groups whose chunk must be joined again
        self.count = 0

    def update(self, group: Any, key: Any, packed: bytes | None) -> None:
        keys = self.keys.get(group)
        if keys is None:
            if packed is None:
                return
            keys = self.keys[group] = []
            self.parts[group] = []
            insort(self.order, group)
        parts = self.parts[group]
        index = bisect_left(keys, key)
        present = index < len(keys) and keys[index] == key
        if packed is not None:
            if present:
                parts[index] = packed
            else:
                keys.insert(index, key)
                parts.insert(index, packed)
                self.count += 1
        elif present:
            del keys[index], parts[index]
            self.count -= 1
        else:
            return
        self.stale.add(group)

    def fragments(self) -> list[bytes]:
        """The array header and the groups' fragments, in order."""
        chunks = self.chunks
        for group in self.stale:
            parts = self.parts[group]
            if parts:
                chunks[group] = b"".join(parts)
            else:
                del self.keys[group], self.parts[group]
                chunks.pop(group, None)
                self.order.pop(bisect_left(self.order, group))
        self.stale.clear()
        return [array_header(self.count), *map(chunks.__getitem__, self.order)]


class Contracts:
    """One contract map (`id -> contract`) as its canonical array, `[wire(c) for id in sorted]`.

    `live(contract)` is None for a terminal contract (it never changes again), otherwise the tuple
    of its fields that a handler may still set; a contract is packed again when that tuple changes."""

    __slots__ = ("source", "seen", "last", "ids", "parts", "chunks", "order", "stale", "watch")

    def __init__(self) -> None:
        self.source: Mapping[int, Any] | None = None
        self.seen = 0  # entries of `source`, in insertion order, already placed
        self.last: int | None = None  # the id placed last (entry `seen - 1` of `source`)
        self.ids: dict[int, list[int]] = {}  # bucket -> sorted ids
        self.parts: dict[int, list[bytes]] = {}  # bucket -> packed contracts in id order
        self.chunks: dict[int, bytes] = {}
        self.order: list[int] = []  # buckets, sorted
        self.stale: set[int] = set()
        self.watch: dict[int, Any] = {}  # id -> live fields, for contracts that may still change

    def fragments(self, contracts: Mapping[int, Any], live: Callable[[Any], Any]) -> list[bytes]:
        if contracts is not self.source or not self._appended_only(contracts):
            self.__init__()  # type: ignore[misc]  # a new map, or ids removed: start over
            self.source = contracts
        watch = self.watch
        for contract_id, fields in list(watch.items()):
            contract = contracts[contract_id]
            now = live(contract)
            if now != fields:
                self._put(contract_id, pack(contract.wire()), new=False)
                if now is None:
                    del watch[contract_id]
                else:
                    watch[contract_id] = now
        if len(contracts) > self.seen:
            for contract_id in islice(contracts, self.seen, None):
                contract = contracts[contract_id]
                self._put(contract_id, pack(contract.wire()), new=True)
                fields = live(contract)
                if fields is not None:
                    watch[contract_id] = fields
            self.seen, self.last = len(contracts), contract_id
        chunks = self.chunks
        for bucket in self.stale:
            chunks[bucket] = b"".join(self.parts[bucket])
        self.stale.clear()
        return [array_header(len(contracts)), *map(chunks.__getitem__, self.order)]

    def _appended_only(self, contracts: Mapping[int, Any]) -> bool:
        """True when the map still starts with the entries placed so far (ids are only ever added,
        spec 4): a removal anywhere shifts entry `seen - 1` or shrinks the map."""
        if not self.seen:
            return True
        if len(contracts) < self.seen:
            return False
        return next(islice(contracts, self.seen - 1, None)) == self.last

    def _put(self, contract_id: int, packed: bytes, new: bool) -> None:
        bucket = contract_id >> BUCKET_BITS
        ids = self.ids.get(bucket)
        if ids is None:
            ids = self.ids[bucket] = []
            self.parts[bucket] = []
            insort(self.order, bucket)
        index = bisect_left(ids, contract_id)
        if new:
            ids.insert(index, contract_id)
            self.parts[bucket].insert(index, packed)
        else:
            self.parts[bucket][index] = packed
        self.stale.add(bucket)


class Nonces:
    """The nonces array: one packed `[account, nonce]` per account, repacked when its value changes."""

    __slots__ = ("source", "order", "values", "parts", "chunk")

    def __init__(self) -> None:
        self.source: Mapping[bytes, int] | None = None
        self.order: list[bytes] = []
        self.values: list[int] = []
        self.parts: list[bytes] = []
        self.chunk = b""

    def fragments(self, nonces: Mapping[bytes, int]) -> list[bytes]:
        values: list[int] | None = None
        if nonces is self.source and len(nonces) == len(self.order):
            try:
                values = list(map(nonces.__getitem__, self.order))
            except KeyError:
                values = None
        if values is None:  # first call, new accounts, or a replaced map: pack them all
            self.source, self.order = nonces, sorted(nonces)
            self.values = [nonces[account] for account in self.order]
            self.parts = [pack([account, nonces[account]]) for account in self.order]
            self.chunk = b"".join(self.parts)
        elif values != self.values:
            parts, old, order = self.parts, self.values, self.order
            for index, value in enumerate(values):
                if value != old[index]:
                    parts[index] = pack([order[index], value])
            self.values = values
            self.chunk = b"".join(parts)
        return [array_header(len(self.order)), self.chunk]


def row_key(issuer: bytes, maturity: int) -> bytes:
    """A bytes key that sorts like `(issuer, maturity)`: one memcmp per comparison in a bisect."""
    if not 0 <= maturity < 2**64 or len(issuer) != ROW_KEY_BYTES - 8:
        raise ValueError("a balance class is not (32-byte issuer, uint64 maturity)")  # as decode_tx checks
    return issuer + maturity.to_bytes(8, "big")


def rows_of(
    groups: Groups, dirty: Iterable[tuple[Any, Any]], row: Callable[[Any, Any], bytes | None]
) -> None:
    """Apply the dirty (group, key) marks to `groups`, packing each row with `row`."""
    update = groups.update
    for group, key in dirty:
        update(group, key, row(group, key))


def _open_offer(offer: Any) -> Any:
    return offer.state if offer.state == 0 else None  # OfferState.OPEN


def _locked_escrow(escrow: Any) -> Any:
    return escrow.state if escrow.state == 0 else None  # EscrowState.LOCKED


def _open_claim(claim: Any) -> Any:
    return (claim.state, claim.amount) if claim.state == 0 else None  # ClaimState.OPEN


class StateCache:
    """The fragments of one `LedgerState`'s canonical encoding (see the module docstring)."""

    __slots__ = ("built", "balances", "supply", "nonces", "offers", "escrows", "claims")

    def __init__(self) -> None:
        self.built = False
        self.balances, self.supply, self.nonces = Groups(), Groups(), Nonces()
        self.offers, self.escrows, self.claims = Contracts(), Contracts(), Contracts()

    def fragments(self, state: Any) -> list[bytes]:
        """`packb(state_wire(state))` as a list of byte strings (their join)."""
        head = pack([state.height, state.now, state.next_id])[1:]
        parts = [TOP_HEADER + head, *self.nonces.fragments(state.nonces)]
        parts += self._balances(state)
        parts += self._supply(state)
        parts.append(pack([[key, value] for key, value in sorted(state.default_count.items())]))
        parts += self.offers.fragments(state.offers, _open_offer)
        parts += self.escrows.fragments(state.escrows, _locked_escrow)
        parts += self.claims.fragments(state.claims, _open_claim)
        return parts

    def _balances(self, state: Any) -> list[bytes]:
        """Balance rows grouped by holder, keyed by `row_key(issuer, maturity)`; `state.dirty_rows`
        holds the new amount (0: gone) of every row changed since the last call."""
        holdings: dict[bytes, dict[tuple[bytes, int], int]] = state.holdings
        groups = self.balances
        if not self.built:
            self._build(state)
        else:  # Groups.update inlined: this loop runs for every balance a block changed
            keys_of, parts_of, stale = groups.keys, groups.parts, groups.stale
            for (holder, (issuer, maturity)), amount in state.dirty_rows.items():
                key = issuer + maturity.to_bytes(8, "big")  # row_key, inlined
                if len(key) != ROW_KEY_BYTES:
                    raise ValueError("a balance issuer is not a 32-byte key")
                keys = keys_of.get(holder)
                if keys is None:
                    if amount:
                        groups.update(holder, key, pack([holder, issuer, maturity, amount]))
                    continue
                index = bisect_left(keys, key)
                if index < len(keys) and keys[index] == key:
                    if amount:
                        parts_of[holder][index] = pack([holder, issuer, maturity, amount])
                    else:
                        del keys[index], parts_of[holder][index]
                        groups.count -= 1
                elif amount:
                    keys.insert(index, key)
                    parts_of[holder].insert(index, pack([holder, issuer, maturity, amount]))
                    groups.count += 1
                else:
                    continue
                stale.add(holder)
        state.dirty_rows.clear()
        fragments = groups.fragments()
        if len(groups.order) != len(holdings) or groups.count != sum(map(len, holdings.values())):
            raise ValueError("balance cache out of step with holdings")  # a mutation bypassed add/sub
        return fragments

    def _supply(self, state: Any) -> list[bytes]:
        minted: dict[tuple[bytes, int], int] = state.minted
        burned: dict[tuple[bytes, int], int] = state.burned

        def row(issuer: bytes, maturity: int) -> bytes | None:
            count = minted.get((issuer, maturity))
            if count is None:
                return None
            return pack([issuer, maturity, count, burned.get((issuer, maturity), 0)])

        rows_of(self.supply, state.supply_dirty, row)
        state.supply_dirty.clear()
        fragments = self.supply.fragments()
        if self.supply.count != len(minted):
            raise ValueError("supply cache out of step with minted")  # a mutation bypassed add_supply
        return fragments

    def _build(self, state: Any) -> None:
        """First call: every balance and supply row, whatever was marked before."""
        groups = self.balances
        for holder in sorted(state.holdings):
            held = state.holdings[holder]
            classes = sorted(held)
            if not classes:
                continue
            groups.order.append(holder)
            groups.keys[holder] = [row_key(issuer, maturity) for issuer, maturity in classes]
            groups.parts[holder] = [pack([holder, *key, held[key]]) for key in classes]
            groups.stale.add(holder)
            groups.count += len(classes)
        state.supply_dirty.update(state.minted)
        self.built = True


TOP_HEADER = array_header(11) + pack(STATE_TAG)
