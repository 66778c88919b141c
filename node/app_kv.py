"""`kv`: a small signed key/value application, the default for testnets of the consensus path.

A transaction is a msgpack array shaped like grassroots transactions, so the mempool treats both
alike: `[version=1, chain_id, kind, signer(32 B), nonce, body, sig(64 B)]`, signed over
`b"hedgerow/kv/tx/v1\\0" + packb([version, chain_id, kind, signer, nonce, body])`.
Kinds: 1 SET `[key: bytes, value: bytes]`, 2 NOOP `[]` (load generation).

State: a dict key -> value, and per signer the highest nonce executed. A tx executes iff its
signature is valid and its nonce is above the signer's last one (replays and stale copies are
skipped with a reason; gaps are allowed, so forwarded txs may arrive in any order across
senders). The state hash chains every executed block: `H(prev || height || H(txs results))`,
and `snapshot()` carries the dict, nonces and hash, so a restored node continues the same chain.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgpack

from hedgerow.node.app import CheckResult
from hedgerow.protocols.crypto import SigningKey, verify_signature

TX_DOMAIN = b"hedgerow/kv/tx/v1\x00"
KIND_SET = 1
KIND_NOOP = 2
TX_BYTES_MAX = 4096
KEY_BYTES_MAX = 256
VERIFIED_CACHE_MAX = 65_536  # about 20 s of txs at full load; a full mempool holds 10,000
SIG_FIELD_BYTES = 66  # a 64-byte signature as msgpack bin 8


def tx_sign_bytes(chain_id: str, kind: int, signer: bytes, nonce: int, body: list[Any]) -> bytes:
    packed: bytes = msgpack.packb([1, chain_id, kind, signer, nonce, body], use_bin_type=True)
    return TX_DOMAIN + packed


def make_tx(key: SigningKey, chain_id: str, nonce: int, kind: int = KIND_SET,
            body: list[Any] | None = None) -> bytes:
    """Build and sign one kv transaction (client side)."""
    body = [b"k", b"v"] if body is None and kind == KIND_SET else (body or [])
    signer = key.public.raw
    sig = key.sign_raw(tx_sign_bytes(chain_id, kind, signer, nonce, body))
    packed: bytes = msgpack.packb([1, chain_id, kind, signer, nonce, body, sig], use_bin_type=True)
    return packed


def _decode(tx: bytes, chain_id: str,
            pack: Callable[[Any], bytes]) -> tuple[int, bytes, int, list[Any], bytes, bytes]:
    """(kind, signer, nonce, body, sig, signed bytes) of a well-formed, canonical tx (`pack`: a
    reusable msgpack packer's `pack`, which re-encodes it for the canonical check)."""
    if len(tx) > TX_BYTES_MAX:
        raise ValueError("oversize")
    obj = msgpack.unpackb(tx, raw=False, max_bin_len=TX_BYTES_MAX, max_array_len=64, max_map_len=0,
                          max_ext_len=0)
    if type(obj) is not list or len(obj) != 7:
        raise ValueError("malformed")
    version, chain, kind, signer, nonce, body, sig = obj
    if version != 1 or chain != chain_id:
        raise ValueError("wrong_chain")
    if type(kind) is not int or type(nonce) is not int or nonce < 0 or type(body) is not list:
        raise ValueError("malformed")
    if type(signer) is not bytes or len(signer) != 32 or type(sig) is not bytes or len(sig) != 64:
        raise ValueError("malformed")
    if kind == KIND_SET:
        if len(body) != 2 or type(body[0]) is not bytes or type(body[1]) is not bytes \
                or len(body[0]) > KEY_BYTES_MAX:
            raise ValueError("malformed")
    elif kind != KIND_NOOP or body:
        raise ValueError("malformed")
    if pack(obj) != tx:
        raise ValueError("non_canonical")
    # Canonical, so the signed array is the tx's own bytes with a 6-element header (0x96 for 0x97)
    # and without the signature's trailing bin 8 (0xc4 0x40 + 64 bytes): no second encoding.
    return kind, signer, nonce, body, sig, TX_DOMAIN + b"\x96" + tx[1:-SIG_FIELD_BYTES]


# A checked tx: its CheckResult, kind and body (plain values only, so the collector skips them).
_Checked = tuple[CheckResult, int, tuple[bytes, ...]]


class KvApp:
    name = "kv"

    def __init__(self, chain_id: str, genesis: dict[str, Any] | None = None) -> None:
        self.chain_id = chain_id
        self.height = 0
        self.data: dict[bytes, bytes] = {}
        self.nonces: dict[bytes, int] = {}
        self._hash = hashlib.sha256(b"hedgerow/kv/genesis|" + chain_id.encode()).digest()
        self.executed = 0
        self.verifications = 0  # signature checks run (the cache saves the rest)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        # Valid txs this process decoded and verified: mempool admission checks a tx once, a
        # forwarded copy and the block that carries it reuse that check (no second decode or
        # signature verification). Bounded, oldest forgotten first (a forgotten tx is simply
        # checked again); entries are plain tuples, which the garbage collector does not trace.
        self._verified: OrderedDict[bytes, _Checked] = OrderedDict()  # by tx bytes

    def check_tx(self, tx: bytes) -> CheckResult:
        return self._check(tx)[0]

    def _check(self, tx: bytes) -> _Checked:
        known = self._verified.get(tx)
        if known is not None:
            return known
        tx_hash = hashlib.sha256(tx).digest()
        try:
            kind, signer, nonce, body, sig, signed = _decode(tx, self.chain_id, self._pack)
        except Exception as error:  # noqa: BLE001 - any decode failure is "malformed"
            reason = str(error) if str(error) in ("oversize", "wrong_chain", "non_canonical") else "malformed"
            return CheckResult(False, reason, b"", 0, tx_hash), 0, ()
        self.verifications += 1
        if not verify_signature(signer, sig, signed):
            return CheckResult(False, "bad_signature", signer, nonce, tx_hash), 0, ()
        known = (CheckResult(True, "", signer, nonce, tx_hash), kind, tuple(body))
        self._verified[tx] = known
        if len(self._verified) > VERIFIED_CACHE_MAX:
            self._verified.popitem(last=False)
        return known

    def account_nonce(self, sender: bytes) -> int:
        """The next nonce this sender may use (one above its last executed one)."""
        last = self.nonces.get(sender)
        return 0 if last is None else last + 1

    def execute_block(self, height: int, timestamp_ms: int, txs: list[bytes]) -> tuple[list[Any], bytes]:
        if height != self.height + 1:
            raise ValueError(f"kv: block height {height} after {self.height}")
        results: list[Any] = []
        for tx in txs:
            check, kind, body = self._check(tx)
            if not check.ok:
                results.append([1, check.reason])
                continue
            if check.nonce < self.account_nonce(check.sender):
                results.append([4, "bad_nonce"])
                continue
            self.nonces[check.sender] = check.nonce
            if kind == KIND_SET:
                self.data[body[0]] = body[1]
            self.executed += 1
            results.append([0, ""])
        summary = hashlib.sha256(msgpack.packb([txs, results], use_bin_type=True)).digest()
        self._hash = hashlib.sha256(self._hash + height.to_bytes(8, "big") + summary).digest()
        self.height = height
        return results, self._hash

    def state_hash(self) -> bytes:
        return self._hash

    def query(self, path: str, args: dict[str, Any]) -> Any:
        if path == "get":
            key = args.get("key")
            key_bytes = key.encode() if isinstance(key, str) else key
            value = self.data.get(key_bytes) if isinstance(key_bytes, bytes) else None
            return {"key": key, "value": value, "height": self.height}
        if path == "nonce":
            signer = args.get("signer")
            return {"nonce": self.account_nonce(signer) if isinstance(signer, bytes) else 0}
        if path == "info":
            return {"app": self.name, "height": self.height, "state_hash": self._hash.hex(),
                    "keys": len(self.data), "executed": self.executed,
                    "verifications": self.verifications}
        raise KeyError(f"unknown query path {path!r}")

    def snapshot(self) -> bytes:
        packed: bytes = msgpack.packb(
            [self.height, self._hash, self.executed, sorted(self.data.items()), sorted(self.nonces.items())],
            use_bin_type=True)
        return packed

    def restore(self, data: bytes) -> None:
        height, state_hash, executed, items, nonces = msgpack.unpackb(data, raw=False)
        self.height = int(height)
        self._hash = bytes(state_hash)
        self.executed = int(executed)
        self.data = {bytes(k): bytes(v) for k, v in items}
        self.nonces = {bytes(k): int(v) for k, v in nonces}
