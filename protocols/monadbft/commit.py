"""Block arrival and the commit rule (spec R9): FINALIZED on a consecutive child QC, VOTED on an
own-round QC, SPEC_REVERT for speculatively final blocks pruned by a finalization."""

from __future__ import annotations

from hedgerow.protocols.actions import Persist
from hedgerow.protocols.monadbft.messages import QC, Block, EvidenceQuery
from hedgerow.protocols.monadbft.records import Delivery, Finalized, SpecRevert, Voted
from hedgerow.protocols.monadbft.state import CoreState


class CommitMixin(CoreState):
    def add_block(self, block: Block) -> None:
        """A verified block (tip checked, payload hash matched) enters the tree."""
        block_id = block.block_id
        if self.tree.has(block_id):
            return
        linked, invalid = self.tree.add(block)
        if not self.tree.has(block_id):
            return  # a fork below the root
        self._out.append(Persist(block))  # no fsync needed (spec §4)
        for bad in invalid:
            self._reject("invalid_block")
            self.qcs_by_block.pop(bad.block_id, None)
        if not linked and not invalid:
            self.sync_ancestors(block_id)
        if linked:
            self._after_linked(linked)

    def sync_ancestors(self, block_id: bytes) -> None:
        """Request the first missing ancestor of a held block whose path to root is incomplete."""
        cursor = block_id
        hint: tuple[int, ...] = ()
        for _ in range(len(self.tree.uncommitted) + 1):
            block = self.tree.get(cursor)
            if block is None:
                self.start_sync(cursor, hint)
                return
            if self.tree.is_linked(cursor):
                return
            hint = block.tip.header.parent_qc.signers
            cursor = block.tip.header.parent_qc.block_id

    def _after_linked(self, linked: list[Block]) -> None:
        for block in linked:
            self.commit_check(block.tip.header.parent_qc)
            for qc in list(self.qcs_by_block.get(block.block_id, {}).values()):
                self.commit_check(qc)
        self.try_vote_pending()
        self.try_propose()

    def commit_check(self, qc: QC) -> None:
        tree = self.tree
        if qc.block_id in tree.committed:
            return
        block = tree.get(qc.block_id)
        if block is None:
            self.start_sync(qc.block_id, qc.signers)
            return
        if not tree.is_linked(qc.block_id):
            self.sync_ancestors(qc.block_id)
            return  # re-run when it links
        deliveries: list[Delivery] = []
        header = block.tip.header
        parent_id = header.parent_qc.block_id
        if qc.round == header.parent_qc.round + 1 and tree.above_root(parent_id):
            deliveries.extend(self._finalize(parent_id, (header.parent_qc, qc)))
        if qc.round == header.block_round:
            for ancestor in tree.path_from_root(qc.block_id):
                if ancestor.block_id not in self.spec_final:
                    self.spec_final[ancestor.block_id] = qc.block_id
                    self._dirty = True
                    self.stats.add("voted")
                    deliveries.append(Voted(ancestor, (qc,), qc.block_id))
        self._deliver(deliveries)

    def _finalize(self, new_root: bytes, proof: tuple[QC, QC]) -> list[Delivery]:
        before = {
            block_id: self.tree.blocks[block_id]
            for block_id in self.spec_final
            if block_id in self.tree.blocks
        }
        finalized, pruned = self.tree.finalize(new_root)
        deliveries: list[Delivery] = []
        for block in finalized:
            self.spec_final.pop(block.block_id, None)
            if self.payload_source is None:  # the core's own pool supplied (and dedups) the txs
                self.pool.finalized(block.txs)
            self.stats.add("finalized")
            deliveries.append(Finalized(block, proof))
        for block in pruned:
            anchor = self.spec_final.pop(block.block_id, None)
            self.qcs_by_block.pop(block.block_id, None)
            if anchor is None:
                continue
            self.stats.add("spec_reverts")
            deliveries.append(SpecRevert(block, anchor))
            anchor_block = before.get(anchor) or self.tree.get(anchor)
            if anchor_block is None:
                continue
            header = anchor_block.tip.header
            if not self.evidence.against_leader(header.author, header.block_round):
                self._broadcast(EvidenceQuery(anchor_block.tip), local=False)
        root_round = self.root_round
        self.my_votes = {r: b for r, b in self.my_votes.items() if r >= root_round}
        self.qcs_by_block = {
            block_id: by_round
            for block_id, by_round in self.qcs_by_block.items()
            if max(by_round) >= root_round and block_id not in self.tree.committed
        }
        self.evidence.prune(root_round - self.params.evidence_window)
        self.tree.forget_finalized(self.params.finalized_blocks_kept)
        self._dirty = True
        return deliveries
