"""The block tree: finalized chain up to `root`, uncommitted blocks, connectivity and pruning."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hedgerow.protocols.monadbft.messages import GENESIS_ID, Block
from hedgerow.protocols.monadbft.txpool import tx_hash

TX_DIGESTS_KEPT = 256  # blocks whose tx digests are memoised


@dataclass(frozen=True, slots=True)
class BlockMeta:
    height: int
    block_round: int
    timestamp_ms: int


GENESIS_META = BlockMeta(0, 0, 0)


class BlockTree:
    """Holds every verified block. A block is *linked* when its path to root is complete and checked
    (height = parent + 1, timestamp >= parent's). Finalized blocks stay for serving sync requests."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, Block] = {}
        self.root_id = GENESIS_ID
        self.root_meta = GENESIS_META
        self.committed: set[bytes] = {GENESIS_ID}
        self.linked: set[bytes] = set()  # uncommitted, path to root complete
        self.children: dict[bytes, list[bytes]] = {}  # parent id -> uncommitted child ids
        self.uncommitted: dict[bytes, None] = {}  # insertion-ordered set
        self.committed_order: deque[bytes] = deque()  # finalized ids, oldest first
        self._tx_digests: dict[bytes, frozenset[bytes]] = {}  # block id -> its txs' SHA-256s

    # -- queries
    def has(self, block_id: bytes) -> bool:
        return block_id == GENESIS_ID or block_id in self.blocks

    def get(self, block_id: bytes) -> Block | None:
        return self.blocks.get(block_id)

    def meta(self, block_id: bytes) -> BlockMeta | None:
        if block_id == GENESIS_ID:
            return GENESIS_META
        block = self.blocks.get(block_id)
        if block is None:
            return None
        header = block.tip.header
        return BlockMeta(header.height, header.block_round, header.timestamp_ms)

    def is_linked(self, block_id: bytes) -> bool:
        """Path to root complete (root itself and finalized blocks count)."""
        return block_id in self.linked or block_id in self.committed

    def above_root(self, block_id: bytes) -> bool:
        return block_id in self.linked

    def path_from_root(self, block_id: bytes) -> list[Block]:
        """Blocks after root up to `block_id` (linked), in height order."""
        path: list[Block] = []
        cursor = block_id
        while cursor in self.linked:
            block = self.blocks[cursor]
            path.append(block)
            cursor = block.tip.header.parent_qc.block_id
        path.reverse()
        return path

    def tx_digests(self, block: Block) -> frozenset[bytes]:
        """The SHA-256s of a block's txs, computed once per block (recent blocks memoised)."""
        block_id = block.block_id
        digests = self._tx_digests.get(block_id)
        if digests is None:
            digests = self._tx_digests[block_id] = frozenset([tx_hash(tx) for tx in block.txs])
            if len(self._tx_digests) > TX_DIGESTS_KEPT:
                del self._tx_digests[next(iter(self._tx_digests))]
        return digests

    # -- updates
    def add(self, block: Block) -> tuple[list[Block], list[Block]]:
        """Store a verified block; returns (newly linked blocks parent-first, blocks found invalid)."""
        block_id = block.block_id
        if block_id in self.blocks:
            return [], []
        parent_id = block.tip.header.parent_qc.block_id
        if parent_id in self.committed and parent_id != self.root_id:
            return [], []  # forks below root can never be finalized
        self.blocks[block_id] = block
        self.uncommitted[block_id] = None
        self.children.setdefault(parent_id, []).append(block_id)
        if self.is_linked(parent_id):
            return self._link_from(block_id)
        return [], []

    def _link_from(self, start: bytes) -> tuple[list[Block], list[Block]]:
        linked: list[Block] = []
        invalid: list[Block] = []
        stack = [start]
        while stack:
            block_id = stack.pop()
            block = self.blocks[block_id]
            header = block.tip.header
            parent = self.meta(header.parent_qc.block_id)
            if (
                parent is None
                or header.height != parent.height + 1
                or header.timestamp_ms < parent.timestamp_ms
            ):
                invalid.extend(block for block, _ in self._drop_subtree(block_id))
                continue
            self.linked.add(block_id)
            linked.append(block)
            stack.extend(reversed(self.children.get(block_id, [])))
        return linked, invalid

    def _drop_subtree(self, block_id: bytes) -> list[tuple[Block, bool]]:
        """Remove a block and its descendants; returns (block, was linked) pairs."""
        dropped: list[tuple[Block, bool]] = []
        stack = [block_id]
        while stack:
            current = stack.pop()
            block = self.blocks.pop(current, None)
            if block is None:
                continue
            was_linked = current in self.linked
            self.linked.discard(current)
            self.uncommitted.pop(current, None)
            dropped.append((block, was_linked))
            parent_children = self.children.get(block.tip.header.parent_qc.block_id)
            if parent_children is not None and current in parent_children:
                parent_children.remove(current)
            stack.extend(self.children.pop(current, []))
        return dropped

    def finalize(self, new_root: bytes) -> tuple[list[Block], list[Block]]:
        """Commit the path up to `new_root`; returns (finalized blocks in height order, pruned
        blocks that were linked, i.e. every linked block not descending from the new root)."""
        path = self.path_from_root(new_root)
        on_path = {block.block_id for block in path}
        orphans: list[bytes] = []
        for block in path:
            block_id = block.block_id
            orphans.extend(
                c for c in self.children.pop(block.tip.header.parent_qc.block_id, []) if c not in on_path
            )
            self.committed.add(block_id)
            self.committed_order.append(block_id)
            self.linked.discard(block_id)
            self.uncommitted.pop(block_id, None)
        header = self.blocks[new_root].tip.header
        self.root_id = new_root
        self.root_meta = BlockMeta(header.height, header.block_round, header.timestamp_ms)
        pruned: list[Block] = []
        for orphan in orphans:
            pruned.extend(block for block, was_linked in self._drop_subtree(orphan) if was_linked)
        for block_id in list(self.uncommitted):
            pending = self.blocks.get(block_id)
            if (
                pending is not None
                and block_id not in self.linked
                and pending.tip.header.block_round <= header.block_round
            ):
                self._drop_subtree(block_id)  # pending, and can no longer attach above the root
        return path, pruned

    def forget_finalized(self, keep: int) -> None:
        """Drop the oldest finalized blocks beyond `keep` (the root always stays)."""
        while len(self.committed_order) > max(1, keep):
            old = self.committed_order.popleft()
            if old == self.root_id:
                self.committed_order.append(old)
                return
            self.blocks.pop(old, None)
            self.committed.discard(old)

    def load(self, blocks: list[Block], root_id: bytes) -> list[Block]:
        """Rebuild from a store: every block, with the chain ending at `root_id` finalized."""
        for block in blocks:
            self.blocks[block.block_id] = block
        if root_id != GENESIS_ID and root_id not in self.blocks:
            raise KeyError("the root block is missing from the store")
        self._restore_root(root_id)
        for block_id, block in list(self.blocks.items()):
            if block_id in self.committed:
                continue
            parent_id = block.tip.header.parent_qc.block_id
            if parent_id in self.committed and parent_id != root_id:
                del self.blocks[block_id]
                continue
            self.uncommitted[block_id] = None
            self.children.setdefault(parent_id, []).append(block_id)
        linked: list[Block] = []
        for child in list(self.children.get(root_id, [])):
            linked.extend(self._link_from(child)[0])
        return linked

    def _restore_root(self, root_id: bytes) -> None:
        if root_id == GENESIS_ID:
            return
        cursor = root_id
        chain: list[bytes] = []
        while cursor != GENESIS_ID and cursor in self.blocks:
            chain.append(cursor)
            cursor = self.blocks[cursor].tip.header.parent_qc.block_id
        self.committed.update(chain)
        self.committed_order.extend(reversed(chain))
        self.root_id = root_id
        root = self.blocks[root_id].tip.header
        self.root_meta = BlockMeta(root.height, root.block_round, root.timestamp_ms)
