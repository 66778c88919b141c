"""Block sync (spec R10), evidence messages (R11) and transactions."""

from __future__ import annotations

from hedgerow.protocols.monadbft.evidence import LEADER_KINDS, verify_evidence
from hedgerow.protocols.monadbft.messages import (
    Block,
    BlockRequest,
    BlockResponse,
    EvidenceMsg,
    EvidenceQuery,
    TxMsg,
    payload_hash_of,
)
from hedgerow.protocols.monadbft.state import CoreState, SyncRequest


class SyncMixin(CoreState):
    # ------------------------------------------------------------------ R10 requester
    def peer_order(self, hint: tuple[int, ...]) -> list[int]:
        """Signers of the referencing certificate, cyclically from self+1, then the others."""
        n = self.validators.n
        me = self.index

        def distance(peer: int) -> int:
            return (peer - me - 1) % n

        hinted = sorted({s for s in hint if s != me and self.validators.known(s)}, key=distance)
        others = sorted((s for s in range(n) if s != me and s not in hinted), key=distance)
        return hinted + others

    def start_sync(self, block_id: bytes, hint: tuple[int, ...], count: int = 0) -> None:
        if self.tree.has(block_id) or block_id in self.tree.committed or block_id in self.sync_requests:
            return
        request = SyncRequest(self.peer_order(hint), count=count or self.params.sync_batch)
        if not request.peers:
            return
        self.sync_requests[block_id] = request
        self._sync_send(block_id, request)

    def _sync_send(self, block_id: bytes, request: SyncRequest) -> None:
        peer = request.peers[request.next_peer % len(request.peers)]
        request.next_peer += 1
        request.sent += 1
        self.stats.add("sync_requests")
        self._send(peer, BlockRequest(block_id, request.count))
        self._set_timer(("sync", block_id), self._now + self.params.sync_retry_ms)

    def on_sync_timer(self, block_id: bytes) -> None:
        request = self.sync_requests.get(block_id)
        if request is None:
            return
        if self.tree.has(block_id):
            del self.sync_requests[block_id]
            return
        self._sync_send(block_id, request)

    # ------------------------------------------------------------------ R10 responder
    def on_block_request(self, sender: int, m: BlockRequest) -> None:
        blocks: list[Block] = []
        cursor = m.block_id
        limit = min(m.count, self.params.sync_batch)
        while len(blocks) < limit:
            block = self.tree.get(cursor)
            if block is None:
                break
            blocks.append(block)
            cursor = block.tip.header.parent_qc.block_id
        self.stats.add("sync_served")
        self._send(sender, BlockResponse(m.block_id, tuple(blocks)))

    def _response_ok(self, m: BlockResponse) -> bool:
        expected = m.block_id
        for block in m.blocks:
            if block.block_id != expected or payload_hash_of(block.txs) != block.tip.header.payload_hash:
                return False
            if self.certs.check_tip(block.tip) is not None:
                return False
            expected = block.tip.header.parent_qc.block_id
        return True

    def on_block_response(self, sender: int, m: BlockResponse) -> None:
        if self.tree.has(m.block_id) or m.block_id in self.tree.committed:
            self.sync_requests.pop(m.block_id, None)
            return
        if not m.blocks:
            self.stats.add("sync_empty")
            return  # not held there: the retry timer moves to the next peer
        if not self._response_ok(m):
            self._reject("invalid_sync")
            return
        for block in reversed(m.blocks):
            self.index_tip(block.tip)
            self.add_block(block)
        if self.tree.has(m.block_id):
            self.sync_requests.pop(m.block_id, None)
        newest = max((block.tip.header.parent_qc for block in m.blocks), key=lambda q: q.round)
        self.observe_qc(newest)  # one observation per batch: a lagging node jumps once

    # ------------------------------------------------------------------ R11 messages
    def on_evidence(self, sender: int, m: EvidenceMsg) -> None:
        proof = m.evidence
        if (proof.kind, proof.offender, proof.round) in self.evidence.held:
            return
        if not verify_evidence(proof, self.validators, self.chain_id, self.verifier):
            self._reject("invalid_evidence")
            return
        if self.evidence.add_verified(proof):
            self.stats.add("evidence_received")
            from hedgerow.protocols.actions import Evidence

            self._out.append(Evidence(proof))

    def on_evidence_query(self, sender: int, m: EvidenceQuery) -> None:
        header = m.tip.header
        if not self.index_tip(m.tip):
            self._reject("invalid_evidence")
            return
        for kind in LEADER_KINDS:
            proof = self.evidence.held.get((kind, header.author, header.block_round))
            if proof is not None:
                self._send(sender, EvidenceMsg(proof))
                return

    # ------------------------------------------------------------------ transactions
    def on_tx(self, sender: int, m: TxMsg) -> None:
        for tx in m.txs:
            self._admit(tx)

    def _admit(self, tx: bytes) -> str:
        if len(tx) > self.params.max_tx_bytes or not tx:
            self._reject("invalid_tx")
            return "invalid_tx"
        result = self.pool.add(tx)
        if result != "ok":
            self.stats.add(result)
        return result

    def submit(self, tx: bytes) -> str:
        """A client tx: admit it, forward it to the next `tx_forward_leaders` leaders."""
        result = self._admit(tx)
        if result != "ok":
            return result
        targets: list[int] = []
        for offset in range(self.params.tx_forward_leaders):
            leader = self.leader(self.current_round + offset)
            if leader != self.index and leader not in targets:
                targets.append(leader)
        for target in targets:
            self._send(target, TxMsg((tx,)))
        return result
