"""The validator's consensus side: the MonadBFT core wired to the transport, the store and timers.

Actors started here (children of the node's nursery):
- `transport`: net.Transport (authenticated, encrypted peers; fault layer from `[faults]`);
- `inbound`: peer messages -> the consensus inbox (frame types other than MonadBFT's are counted
  `unexpected_type` and dropped). A key outside the genesis set may connect as an observer (compute
  coordinators do), but a consensus message from it is refused: counted `not_validator`, and the
  connection is closed (`closed_not_validator`);
- `timers`: fires the core's timers into the consensus inbox;
- `consensus`: one event at a time through the core, then its actions in order:
  `Persist(Checkpoint)` is written in one fsynced SQLite transaction (with the blocks it carries and
  a log of the statements signed after it) before any later Send/Broadcast of the same list leaves;
  `Persist(Block)` is a plain write; `Deliver(Finalized)` goes to the ledger; `Deliver(Voted)` wakes
  speculative waiters.

View changes are logged (WARNING, `event=NAME key=value`) and counted for /metrics as the driver
sees them after each core step: `event=timeout round=R` when this node signs its timeout for R,
`event=tc round=R` when a TC becomes its high certificate (formed here or received),
`event=nec round=R` when the core accepts a proposal whose fresh tip carries an NEC (the leader's
own included), `event=revert height=H ... evidence=KIND offender=N|pending` for a speculative revert.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgpack
import trio

from hedgerow.net.config import TransportConfig
from hedgerow.net.faults import FaultLayer
from hedgerow.net.transport import Transport
from hedgerow.node.config import split_address
from hedgerow.node.errors import ConfigError
from hedgerow.node.runtime import Mailbox
from hedgerow.node.store import SignedRow
from hedgerow.protocols.actions import Broadcast, Deliver, Evidence, Persist, Send, SetTimer
from hedgerow.protocols.crypto import VerifyKey
from hedgerow.protocols.monadbft import messages as m
from hedgerow.protocols.monadbft.certificates import Verifier
from hedgerow.protocols.monadbft.params import Params, ValidatorSet
from hedgerow.protocols.monadbft.records import Checkpoint, Finalized, SpecRevert, Voted
from hedgerow.protocols.wire import DecodeError, decode, encode

if TYPE_CHECKING:
    from hedgerow.node.node import CommittedBlock, Node

log = logging.getLogger("hedgerow.consensus")

FRAME_TYPES = (m.Proposal, m.VoteMsg, m.TimeoutMsg, m.AdvanceRound, m.RoundRecovery, m.NoEndorseMsg,
               m.BlockRequest, m.BlockResponse, m.TxMsg, m.EvidenceMsg, m.EvidenceQuery)
SIGNED_KINDS = {m.VoteMsg: "vote", m.TimeoutMsg: "timeout", m.Proposal: "proposal",
                m.NoEndorseMsg: "ne", m.RoundRecovery: "recovery"}
VOTES_SEEN_MAX = 20_000
TX_BATCH_MAX = 512
# Client txs admitted here wait up to this long to be forwarded, so that the admissions of that
# interval leave as one TxMsg per peer: on a small VM a loopback send costs ~0.2 ms of CPU, and
# forwarding every admission step separately was several % of a loaded node's CPU.
FORWARD_INTERVAL_S = 0.03
DEFAULT_VOTE_PACE_MS = 100
ENCODED_BLOCKS_KEPT = 64
SIGNATURE_MEMO_MAX = 1 << 14


def validator_set(node: Node) -> ValidatorSet:
    return ValidatorSet(tuple(VerifyKey(v.public_key) for v in node.genesis.validators),
                        tuple(v.stake for v in node.genesis.validators))


def params_of(node: Node) -> Params:
    merged: dict[str, Any] = {}
    genesis_params = node.genesis.raw.get("consensus") or {}
    if isinstance(genesis_params, dict):
        merged.update(genesis_params)
    merged.update(node.config.consensus)
    # A real node paces its votes (spec §8: 100 ms on testnets, 0 only for benchmarks): an idle chain
    # then makes ~10 empty blocks/s instead of spinning, and a single validator cannot self-loop.
    merged.setdefault("vote_pace_ms", DEFAULT_VOTE_PACE_MS)
    try:
        return Params(**merged)
    except TypeError as error:
        raise ConfigError(f"consensus parameters: {error}") from None


def encode_proof(proof: tuple[Any, ...]) -> bytes:
    packed: bytes = msgpack.packb([encode(cert) for cert in proof], use_bin_type=True)
    return packed


def decode_proof(data: bytes) -> tuple[Any, ...]:
    items = msgpack.unpackb(data, raw=False, max_ext_len=0)
    return tuple(decode(item) for item in items)


def committed_of(block: m.Block, proof: bytes, data: bytes = b"") -> CommittedBlock:
    """What the ledger executes (and, given the block's wire bytes `data`, stores)."""
    from hedgerow.node.node import CommittedBlock

    header = block.tip.header
    return CommittedBlock(header.height, block.block_id, header.timestamp_ms, tuple(block.txs), proof,
                          header.block_round, data)


def peer_addresses(node: Node) -> dict[bytes, tuple[str, int]]:
    """Genesis validator addresses, then `p2p.peers` entries `NODEIDHEX@HOST:PORT` (which win)."""
    out: dict[bytes, tuple[str, int]] = {}
    for validator in node.genesis.validators:
        if validator.address and validator.public_key != node.key.public.raw:
            out[validator.node_id] = split_address(validator.address, "genesis validator address")
    for entry in node.config.peers:
        ident, sep, address = entry.partition("@")
        if not sep:
            raise ConfigError(f"p2p.peers entry {entry!r}: want NODEIDHEX@HOST:PORT")
        try:
            node_id = bytes.fromhex(ident)
        except ValueError:
            raise ConfigError(f"p2p.peers entry {entry!r}: bad node id") from None
        out[node_id] = split_address(address, "p2p.peers")
    return out


class ConsensusDriver:
    """Owns the core of a validator (or of an observer following validators over the transport)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.validators = validator_set(node)
        self.params = params_of(node)
        self.node_ids = [v.node_id for v in node.genesis.validators]
        self.index_of = {node_id: i for i, node_id in enumerate(self.node_ids)}
        faults = FaultLayer.from_config(node.config.faults) if node.config.faults else None
        self.transport = Transport(node.key, chain_id=node.chain_id, validators=self.node_ids,
                                   config=TransportConfig(seed=None), faults=faults)
        self.inbox: Mailbox[tuple[str, Any, Any]] = Mailbox("consensus", 8192)
        self.timers: dict[Hashable, int] = {}
        self._timers_changed = trio.Event()
        self.core: Any = None
        self.round = 0
        self.dropped: Counter[str] = Counter()
        self.timeouts_fired = 0
        self.view_counts: Counter[str] = Counter()  # round_timeouts, tcs, necs, reverts (metrics)
        self._view_seen = {"timeout": 0, "tc": 0, "nec": 0}  # highest round logged, per event
        self.evidence: list[Any] = []
        self.votes_seen: deque[tuple[int, int, bytes]] = deque(maxlen=VOTES_SEEN_MAX)
        self.persist_s: deque[float] = deque(maxlen=1000)
        self._logged: set[tuple[str, int, bytes]] = set()  # signer-log rows already durable
        self._marked_height = 0  # finalized blocks up to here are marked in the mempool
        self._encoded: dict[bytes, bytes] = {}  # block id -> wire bytes, recent blocks only
        self._last_timeout_row: tuple[bytes, SignedRow] | None = None  # (its bytes, its row)
        self._forward_pending: list[bytes] = []  # admitted client txs not forwarded yet
        self._forward_due = trio.Event()

    # -- construction of the core ---------------------------------------------------------------

    async def build_core(self) -> None:
        from hedgerow.protocols.monadbft.core import MonadCore

        node = self.node
        store = node.store
        assert store is not None
        raw = await node.db(store.read_safety)
        checkpoint = None
        blocks: list[m.Block] = []
        if raw is not None:
            try:
                checkpoint = decode(raw, expected=Checkpoint)
            except DecodeError as error:
                raise ConfigError(f"store: unreadable checkpoint ({error})") from None
            checkpoint.check()
            for data in await node.db(store.blocks_from_height, await self._root_height(checkpoint)):
                blocks.append(decode(data, expected=m.Block))
        self.restored_root = checkpoint.root if checkpoint is not None else None
        self._logged = {(row.kind, row.round, row.digest) for row in await node.db(store.signed_log)}
        assert node.index is not None
        # A signature memo: a QC, a TC or a tip seen again in another message is not verified again.
        verifier = Verifier(memo={}, memo_max=SIGNATURE_MEMO_MAX)
        self.core = MonadCore(node.index, node.key, self.validators, node.chain_id, self.params,
                              checkpoint=checkpoint, blocks=blocks, payload_source=self.payload_source,
                              verifier=verifier)

    def payload_source(self, txs_max: int, bytes_max: int, exclude: frozenset[bytes]) -> list[bytes]:
        """The core's PayloadSource. `exclude` covers the uncommitted ancestors only (root
        excluded); the txs of finalized blocks the ledger has not executed yet are excluded by the
        mempool once marked, which must happen here too: the core may finalize blocks and propose
        in the same step, before their `Deliver(Finalized)` reaches this driver."""
        self.mark_finalized()
        return self.node.payload_source(txs_max, bytes_max, exclude)

    def mark_finalized(self) -> None:
        """Mark in the mempool the txs of the blocks finalized by the core (root and below) that
        are above the ledger's height and not marked yet: walk back from the root."""
        core = self.core
        node = self.node
        floor = max(self._marked_height, node.height)
        root_height = int(core.finalized_height)
        if root_height <= floor:
            return
        cursor = core.root_id
        while cursor != m.GENESIS_ID:
            block = core.tree.get(cursor)
            if block is None:  # below what the core keeps in memory: delivered to the ledger already
                break
            header = block.tip.header
            if header.height <= floor:
                break
            node.mempool.mark_finalized(node.tx_hashes(block.block_id, block.txs))
            cursor = header.parent_qc.block_id
        self._marked_height = root_height

    async def _root_height(self, checkpoint: Checkpoint) -> int:
        if checkpoint.root == m.GENESIS_ID:
            return 0
        data = await self.node.db(self.node.store.get_block, checkpoint.root)  # type: ignore[union-attr]
        if data is None:
            raise ConfigError("store: the checkpoint's root block is missing")
        block = decode(data, expected=m.Block)
        return int(block.tip.header.height)

    async def unexecuted_finalized(self, height: int) -> list[CommittedBlock]:
        """Blocks the core finalized (its persisted root) that the ledger had not executed when the
        process stopped: walk back from the root to the ledger's height (spec §8 decision d)."""
        root = getattr(self, "restored_root", None)
        store = self.node.store
        assert store is not None
        chain: list[m.Block] = []
        block_id = root
        while block_id is not None and block_id != m.GENESIS_ID:
            data = await self.node.db(store.get_block, block_id)
            if data is None:
                raise ConfigError(f"store: finalized block {block_id.hex()[:16]} missing")
            block = decode(data, expected=m.Block)
            if block.tip.header.height <= height:
                break
            chain.append(block)
            block_id = block.tip.header.parent_qc.block_id
        chain.reverse()
        out = []
        for i, block in enumerate(chain):
            stored = await self.node.db(store.get_proof, block.block_id)
            if stored is None:
                partial = (chain[i + 1].tip.header.parent_qc,) if i + 1 < len(chain) else ()
                stored = encode_proof(partial)
            out.append(committed_of(block, stored))
        return out

    def committed_from_bytes(self, data: bytes, proof: bytes) -> CommittedBlock:
        return committed_of(decode(data, expected=m.Block), proof)

    # -- actors -----------------------------------------------------------------------------------

    async def run(self, nursery: trio.Nursery) -> None:
        """Start transport, listener and dialers; then the inbound, timer and consensus actors."""
        node = self.node
        await nursery.start(self.transport.run)
        host, port = await self.transport.listen(node.config.p2p_host, node.config.p2p_port)
        node.ports["p2p"] = port
        self.transport.dial_peers(peer_addresses(node))
        nursery.start_soon(self.inbound_actor)
        nursery.start_soon(self.timer_actor)
        nursery.start_soon(self.forward_actor)
        nursery.start_soon(self.consensus_actor)

    async def inbound_actor(self) -> None:
        async for inbound in self.transport.inbox:
            index = self.index_of.get(inbound.peer)
            msg = inbound.message
            if type(msg) not in FRAME_TYPES:
                self.dropped["unexpected_type"] += 1
                continue
            if index is None:
                self.dropped["not_validator"] += 1
                self.transport.disconnect(inbound.peer, "not_validator")
                continue
            if isinstance(msg, m.VoteMsg):
                self.votes_seen.append((msg.signer, msg.vote.round, msg.vote.block_id))
            elif isinstance(msg, m.TxMsg):
                # Forwarded client txs enter this node's mempool (signature-checked there), whose
                # ready txs the core proposes through its payload source.
                if msg.txs and not self.node.mempool_inbox.try_send((msg.txs, None)):
                    self.dropped["mempool_inbox_full"] += len(msg.txs)
                continue
            await self.inbox.send(("msg", index, msg))

    async def timer_actor(self) -> None:
        while True:
            changed = self._timers_changed
            if not self.timers:
                await changed.wait()
                continue
            timer, at = min(self.timers.items(), key=lambda item: item[1])
            delay_s = (at - now_ms()) / 1000.0
            if delay_s > 0:
                with trio.move_on_after(delay_s):
                    await changed.wait()
                    continue
            if self.timers.get(timer) == at:
                del self.timers[timer]
                await self.inbox.send(("timer", timer, at))

    def forward_txs(self, txs: list[bytes]) -> None:
        """Client txs admitted here go to every other validator (the next leaders among them):
        within FORWARD_INTERVAL_S, or at once when a full TxMsg has gathered."""
        pending = self._forward_pending
        pending += txs
        if len(pending) >= TX_BATCH_MAX:
            self._flush_forward()
        elif pending:
            self._forward_due.set()

    def _flush_forward(self) -> None:
        pending, self._forward_pending = self._forward_pending, []
        for start in range(0, len(pending), TX_BATCH_MAX):
            self.transport.broadcast(m.TxMsg(tuple(pending[start:start + TX_BATCH_MAX])))

    async def forward_actor(self) -> None:
        while True:
            await self._forward_due.wait()
            await trio.sleep(FORWARD_INTERVAL_S)
            self._forward_due = trio.Event()
            self._flush_forward()

    async def consensus_actor(self) -> None:
        core = self.core
        if isinstance(core.high_cert, m.TC):  # restored: logged before the restart
            self._view_seen["tc"] = int(core.high_cert.round)
        if core.last_timeout is not None:
            self._view_seen["timeout"] = int(core.last_timeout.info.round)
        await self.execute(core.start(now_ms()))
        while True:
            kind, a, b = await self.inbox.receive()
            now = now_ms()
            if kind == "msg":
                actions = core.on_message(a, b, now)
            elif kind == "timer":
                if isinstance(a, tuple) and a and a[0] == "round" \
                        and a[1] == getattr(core, "current_round", None):
                    self.timeouts_fired += 1  # a round that ended by its timer, not by a QC
                actions = core.on_timer(a, now)
            else:
                raise ValueError(f"unknown consensus event {kind!r}")
            await self.execute(actions)
            self.observe_view(b if kind == "msg" else None, actions)
            self.round = int(getattr(core, "current_round", self.round))

    def observe_view(self, incoming: Any, actions: list[Any]) -> None:
        """Log and count the timeouts, TCs and NECs one core step shows (read-only on the core)."""
        core = self.core
        seen = self._view_seen
        proposals = [incoming] if isinstance(incoming, m.Proposal) else []
        for action in actions:
            if not isinstance(action, Broadcast):
                continue
            msg = action.message
            if isinstance(msg, m.Proposal):
                proposals.append(msg)  # the leader's own, handled by its core too
            elif isinstance(msg, m.TimeoutMsg) and msg.signer == self.node.index \
                    and msg.info.round > seen["timeout"]:
                seen["timeout"] = msg.info.round
                self._view_event("timeout", "round_timeouts", msg.info.round,
                                 high_qc=msg.info.high_qc_round, high_tip=msg.info.high_tip_round)
        cert = core.high_cert
        if isinstance(cert, m.TC) and cert.round > seen["tc"]:
            seen["tc"] = cert.round
            self._view_event("tc", "tcs", cert.round,
                             high="tip" if isinstance(cert.high_extend, m.Tip) else "qc")
        for proposal in proposals:
            nec = proposal.tip.fresh_cert
            if isinstance(nec, m.NEC) and nec.round > seen["nec"] \
                    and core.handled_proposal.get(proposal.proposal_round) == proposal.tip.block_id:
                seen["nec"] = nec.round
                self._view_event("nec", "necs", nec.round, tip_qc=nec.tip_qc_round,
                                 signers=len(nec.signers))

    def _view_event(self, event: str, counter: str, round_: int, **fields: Any) -> None:
        self.view_counts[counter] += 1
        extra = "".join(f" {key}={value}" for key, value in fields.items())
        log.warning("event=%s node=%s round=%d%s", event, self.node.config.name, round_, extra)

    # -- executing actions ------------------------------------------------------------------------

    async def execute(self, actions: list[Any]) -> None:
        node = self.node
        pending: list[tuple[Any, ...]] = []  # consecutive Persists: one thread hop for all of them
        for position, action in enumerate(actions):
            if isinstance(action, Persist):
                pending.append(self._store_op(action.record, actions, position))
                continue
            if pending:
                await self._persist(pending)
                pending = []
            if isinstance(action, Send):
                self._send(action.to, action.message)
            elif isinstance(action, Broadcast):
                self.transport.broadcast(action.message)
            elif isinstance(action, SetTimer):
                self._prune_timers(action.timer)
                self.timers[action.timer] = int(action.at)
                self._timers_changed.set()
                self._timers_changed = trio.Event()
            elif isinstance(action, Deliver):
                await self._deliver(action.value)
            elif isinstance(action, Evidence):
                self.evidence.append(action.proof)
                log.warning("event=evidence node=%s proof=%r", node.config.name, action.proof)
        if pending:
            await self._persist(pending)

    def _store_op(self, record: Any, actions: list[Any], position: int) -> tuple[Any, ...]:
        """The store call that makes `record` durable: a checkpoint (fsynced, with its blocks and
        the statements signed after it) or a block."""
        store = self.node.store
        assert store is not None
        if isinstance(record, Checkpoint):
            record.check()
            signed = self._new_statements(record, _signed_after(actions, position + 1))
            blocks = [(b.block_id, b.tip.header.height, b.tip.header.block_round, self.block_bytes(b))
                      for b in record.blocks]
            # The blocks go to the blocks table in the same fsynced transaction, so the safety row
            # holds the checkpoint without them (a restart loads them from the root's height up);
            # a checkpoint is then a few hundred bytes instead of a copy of every tx voted on.
            return (store.write_safety, encode(replace(record, blocks=())), signed, blocks)
        header = record.tip.header
        return (store.put_blocks, [(record.block_id, header.height, header.block_round,
                                    self.block_bytes(record))])

    async def _persist(self, ops: list[tuple[Any, ...]]) -> None:
        started = time.perf_counter()
        await self.node.db(_run_ops, ops)
        self.persist_s.append(time.perf_counter() - started)

    def block_bytes(self, block: m.Block) -> bytes:
        """A block's wire encoding, made once: the same block is written as it arrives, with the
        checkpoint that makes it durable and again when it is finalized."""
        data = self._encoded.get(block.block_id)
        if data is None:
            data = self._encoded[block.block_id] = encode(block)
            if len(self._encoded) > ENCODED_BLOCKS_KEPT:
                del self._encoded[next(iter(self._encoded))]
        return data

    def _prune_timers(self, timer: Hashable) -> None:
        """A round (or vote) timer for round r makes those of earlier rounds moot: drop them, so
        the timer table stays bounded and stale timers cost nothing."""
        if not (isinstance(timer, tuple) and len(timer) == 2 and timer[0] in ("round", "vote")
                and isinstance(timer[1], int)):
            return
        kind, round_ = timer
        for old in [t for t in self.timers if isinstance(t, tuple) and len(t) == 2 and t[0] == kind
                    and isinstance(t[1], int) and t[1] < round_]:
            del self.timers[old]

    def _new_statements(self, record: Checkpoint, following: list[SignedRow]) -> list[SignedRow]:
        """What this checkpoint makes durable that the signer log lacks: every vote in `my_votes`
        (VoteMsg or tip vote; a paced vote leaves in a later action list than its checkpoint), the
        last timeout, and the proposals/NEs sent right after it."""
        rows = [SignedRow("vote", r, block_id) for r, block_id in sorted(record.my_votes.items())]
        if record.last_timeout is not None:
            rows.append(self._timeout_row(record.last_timeout))
        rows += following
        fresh = []
        for row in rows:
            key = (row.kind, row.round, row.digest)
            if key not in self._logged:
                self._logged.add(key)
                fresh.append(row)
        return fresh

    def _timeout_row(self, last_timeout: bytes) -> SignedRow:
        """The signer-log row of the checkpoint's last timeout, decoded once per distinct timeout
        (every checkpoint of a round carries the same bytes)."""
        memo = self._last_timeout_row
        if memo is None or memo[0] != last_timeout:
            timeout = decode(last_timeout, expected=m.TimeoutMsg)
            memo = self._last_timeout_row = (last_timeout,
                                             SignedRow("timeout", timeout.info.round, encode(timeout.info)))
        return memo[1]

    def _send(self, to: int, message: Any) -> None:
        if to == self.node.index:
            return
        if not 0 <= to < len(self.node_ids):
            self.dropped["bad_target"] += 1
            return
        self.transport.send_nowait(self.node_ids[to], message)

    async def _deliver(self, value: Any) -> None:
        if isinstance(value, Finalized):
            block = value.block
            self.mark_finalized()
            # The ledger stores the block with its proof when it has executed it, in one write.
            await self.node.ledger_inbox.send(committed_of(block, encode_proof(value.proof),
                                                           self.block_bytes(block)))
        elif isinstance(value, Voted):
            self.node.note_speculative(value.block.block_id, value.block.txs)
        elif isinstance(value, SpecRevert):
            self.view_counts["reverts"] += 1
            header = value.block.tip.header
            log.warning("event=revert node=%s height=%d round=%d block=%s anchor=%s evidence=%s",
                        self.node.config.name, header.height, header.block_round,
                        value.block.block_id.hex(), value.anchor.hex(), self._revert_evidence(value))

    def _revert_evidence(self, value: SpecRevert) -> str:
        """The evidence held against the anchor's leader (`KIND offender=N`), else `pending`: the
        core has asked its peers, and the proof comes as an `event=evidence` line."""
        anchor = self.core.tree.get(value.anchor) if self.core is not None else None
        if anchor is not None:
            header = anchor.tip.header
            for proof in reversed(self.evidence):
                if getattr(proof, "offender", None) == header.author \
                        and getattr(proof, "round", None) == header.block_round:
                    return f"{proof.kind} offender={proof.offender}"
        return "pending"

    def on_executed(self, block: CommittedBlock, hashes: list[bytes]) -> None:
        """The ledger executed a block (the core drops its txs from its own pool itself)."""

    # -- status -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        core = self.core
        rnd = int(getattr(core, "current_round", self.round)) if core is not None else 0
        leader = None
        if core is not None and hasattr(core, "leader"):
            try:
                leader = int(core.leader(rnd))
            except Exception:  # noqa: BLE001 - status must never fail
                leader = None
        peers = self.transport.peers()
        dropped = dict(self.dropped)
        for reason, count in self.transport.stats.dropped.items():
            dropped[f"transport_{reason}"] = count
        for reason, count in self.transport.stats.closed.items():
            dropped[f"closed_{reason}"] = count
        counts = self.transport.stats.counts
        return {"round": rnd, "leader": leader, "peers": len(peers), "timeouts": self.timeouts_fired,
                "frames_in": counts.get("frames_in", 0), "frames_out": counts.get("frames_out", 0),
                "dropped": dropped, "evidence": len(self.evidence), "view_changes": dict(self.view_counts),
                "persist_ms_p50": _pct(self.persist_s, 0.5), "persist_ms_p99": _pct(self.persist_s, 0.99)}

    def peers(self) -> list[dict[str, Any]]:
        return [{"node_id": info.node_id.hex(), "validator": info.validator, "outbound": info.outbound,
                 "address": info.address, "index": self.index_of.get(info.node_id), "queued": info.queued}
                for info in self.transport.peers().values()]

    def rpc_handlers(self) -> dict[str, Any]:
        async def votes_seen(params: dict[str, Any]) -> Any:
            return [list(v) for v in self.votes_seen]

        async def evidence(params: dict[str, Any]) -> Any:
            return [repr(e) for e in self.evidence]

        return {"votes_seen": votes_seen, "evidence": evidence}


def _run_ops(ops: list[tuple[Any, ...]]) -> None:
    for fn, *args in ops:
        fn(*args)


def _signed_after(actions: list[Any], start: int) -> list[SignedRow]:
    """Statements this node signs in the sends that follow a checkpoint (up to the next Persist)."""
    rows: list[SignedRow] = []
    for action in actions[start:]:
        if isinstance(action, Persist):
            break
        if isinstance(action, Send | Broadcast):
            msg = action.message
            kind = SIGNED_KINDS.get(type(msg))
            if kind is None:
                continue
            rows.append(SignedRow(kind, *_round_and_digest(msg)))
            if isinstance(msg, m.TimeoutMsg) and msg.tip_vote_sig is not None \
                    and isinstance(msg.high_extend, m.Tip):
                rows.append(SignedRow("vote", msg.info.round, msg.high_extend.block_id))
    return rows


def _round_and_digest(msg: Any) -> tuple[int, bytes]:
    if isinstance(msg, m.VoteMsg):
        return msg.vote.round, msg.vote.block_id
    if isinstance(msg, m.TimeoutMsg):
        return msg.info.round, encode(msg.info)
    if isinstance(msg, m.Proposal):
        return msg.proposal_round, msg.tip.block_id
    if isinstance(msg, m.NoEndorseMsg):
        return msg.round, encode(msg)
    return int(getattr(msg, "round", 0)), b""


def _pct(values: deque[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def now_ms() -> int:
    return int(time.time() * 1000)
