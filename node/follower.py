"""The observer side: follow the finalized chain of validators over their RPC, verify, execute.

An observer (a key not in the genesis validator set, or `role = "observer"`) does not vote. It asks
its sync peers (`[sync] peers = ["HOST:RPCPORT", ...]`, or the join address) for finalized blocks
with their proofs and accepts a run of blocks only when every check passes:
- each block's tip verifies (author = leader of its round, leader signature, parent QC with stake
  >= Q of valid votes, fresh certificate when the parent QC is not the previous round's);
- the payload hash matches the txs, heights increase by one and each block's parent QC certifies
  the previous accepted block (so it is certified by a quorum);
- the run ends at a block P whose finalization proof verifies: a QC on P and a QC of round + 1.
Anything else is counted (`invalid_sync`) and the next peer is tried. Accepted blocks go to the
ledger like a validator's, so the observer serves the same reads and state hash.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import trio

from hedgerow.node.config import split_address
from hedgerow.node.consensus import committed_of, decode_proof, validator_set
from hedgerow.node.rpc_client import AsyncRpcClient, RpcCallError
from hedgerow.protocols.monadbft import messages as m
from hedgerow.protocols.monadbft.certificates import CertChecker, Verifier
from hedgerow.protocols.monadbft.leader import round_robin, stake_weighted
from hedgerow.protocols.wire import DecodeError, decode

if TYPE_CHECKING:
    from hedgerow.node.node import CommittedBlock, Node

log = logging.getLogger("hedgerow.follower")
SYNC_BATCH = 64
IDLE_POLL_S = 0.1


class SyncRejected(Exception):
    pass


class Follower:
    def __init__(self, node: Node) -> None:
        self.node = node
        validators = validator_set(node)
        consensus = node.genesis.raw.get("consensus") or {}
        election = consensus.get("leader_election", "round_robin") if isinstance(consensus, dict) else ""
        leader = (stake_weighted(validators, node.chain_id) if election == "stake_weighted"
                  else round_robin(validators.n))
        self.checker = CertChecker(validators, node.chain_id, leader, Verifier())
        sync = node.config.raw.get("sync", {})
        peers = sync.get("peers", []) if isinstance(sync, dict) else []
        self.sync_peers = [split_address(p, "sync.peers") for p in peers]
        self.rejected: Counter[str] = Counter()
        self.last_block_id: bytes | None = None
        self.peer_index = 0
        self.synced_from: str | None = None
        self.connected = 0

    def committed_from_bytes(self, data: bytes, proof: bytes) -> CommittedBlock:
        block = decode(data, expected=m.Block)
        self.last_block_id = block.block_id
        return committed_of(block, proof)

    async def run(self, nursery: trio.Nursery) -> None:
        if not self.sync_peers:
            log.warning("event=observer_without_peers node=%s", self.node.config.name)
            return
        nursery.start_soon(self.sync_actor)

    async def sync_actor(self) -> None:
        while True:
            host, port = self.sync_peers[self.peer_index % len(self.sync_peers)]
            try:
                client = await AsyncRpcClient.connect(host, port, self.node.key)
            except (OSError, RpcCallError):
                self.rejected["peer_unreachable"] += 1
                self.peer_index += 1
                await trio.sleep(0.5)
                continue
            self.connected = 1
            self.synced_from = f"{host}:{port}"
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client.run_reader)
                    await self._follow(client)
                    nursery.cancel_scope.cancel()
            # `except*`: these arrive inside the nursery's exception group.
            except* (OSError, RpcCallError, trio.BrokenResourceError, trio.ClosedResourceError):
                self.rejected["peer_lost"] += 1
            except* SyncRejected as group:
                self.rejected["invalid_sync"] += 1
                log.warning("event=invalid_sync peer=%s:%d reason=%s", host, port, group.exceptions[0])
            finally:
                self.connected = 0
                await client.aclose()
            self.peer_index += 1
            await trio.sleep(0.2)

    async def _follow(self, client: AsyncRpcClient) -> None:
        while True:
            start = self.node.height + 1
            items = await client.call("blocks", start=start, count=SYNC_BATCH)
            accepted = self.verify_run(start, items)
            for block in accepted:
                await self.node.ledger_inbox.send(block)
            if accepted:
                await self._wait_executed(accepted[-1].height)
            else:
                await trio.sleep(IDLE_POLL_S)

    async def _wait_executed(self, height: int) -> None:
        while self.node.height < height:
            await trio.sleep(0.01)

    def verify_run(self, start: int, items: list[dict[str, Any]]) -> list[CommittedBlock]:
        """The longest verified prefix of `items` that ends at a block with a valid finality proof."""
        accepted: list[CommittedBlock] = []
        pending: list[CommittedBlock] = []
        previous = self.last_block_id
        expected_height = start
        for item in items:
            try:
                block = decode(item["block"], expected=m.Block)
                proof = decode_proof(item["proof"])
            except (DecodeError, KeyError, TypeError, ValueError) as error:
                raise SyncRejected(f"undecodable block: {error}") from None
            header = block.tip.header
            if header.height != expected_height or item.get("height") != expected_height:
                raise SyncRejected(f"height {header.height}, want {expected_height}")
            reason = self.checker.check_tip(block.tip)
            if reason is not None:
                raise SyncRejected(f"tip at height {header.height}: {reason}")
            if header.payload_hash != m.payload_hash_of(block.txs):
                raise SyncRejected(f"payload hash at height {header.height}")
            if previous is not None and header.parent_qc.block_id != previous:
                raise SyncRejected(f"height {header.height} does not extend the previous block")
            pending.append(committed_of(block, item["proof"], item["block"]))
            previous = block.block_id
            expected_height += 1
            if self._proves_final(block.block_id, proof):
                accepted.extend(pending)
                pending.clear()
                self.last_block_id = block.block_id
        return accepted

    def _proves_final(self, block_id: bytes, proof: tuple[Any, ...]) -> bool:
        if len(proof) < 2 or not all(isinstance(q, m.QC) for q in proof[:2]):
            return False
        parent_qc, child_qc = proof[0], proof[1]
        if parent_qc.block_id != block_id or child_qc.round != parent_qc.round + 1:
            return False
        return self.checker.check_qc(parent_qc) is None and self.checker.check_qc(child_qc) is None

    def forward_txs(self, txs: list[bytes]) -> None:
        """Observers accept no txs in this version; clients submit to validators."""

    def on_executed(self, block: CommittedBlock, hashes: list[bytes]) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {"round": None, "leader": None, "peers": self.connected, "dropped": dict(self.rejected),
                "synced_from": self.synced_from}

    def peers(self) -> list[dict[str, Any]]:
        return [{"address": f"{h}:{p}", "sync": True} for h, p in self.sync_peers]

    def rpc_handlers(self) -> dict[str, Any]:
        return {}
