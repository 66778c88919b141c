"""Reading a node home for the runtime: `config/node.toml`, `config/key.ed25519`,
`config/genesis.json` (layout of DESIGN.md; `node/home.py` writes them, the launcher adds the
network sections). Everything missing gets a default; anything unusable is a ConfigError.

node.toml sections read here (all optional except `version`):
    version = 1
    name = "v0"                 # a short label for logs and status
    role = "validator"          # or "observer" (a key not in genesis is always an observer)
    [p2p]     listen = "127.0.0.1:26656"; peers = ["127.0.0.1:26666", ...]
    [rpc]     listen = "127.0.0.1:26657"
    [metrics] listen = "127.0.0.1:26660"   # "" disables /metrics
    [consensus] delta_ms, local_processing_ms, vote_pace_ms, max_block_txs, ...
    [mempool] txs_max, bytes_max
    [app]     name = "kv"        # overrides genesis "app"
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedgerow.node.errors import ConfigError
from hedgerow.protocols.crypto import SigningKey, VerifyKey


def split_address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"{what}: want HOST:PORT, got {text!r}")
    return host, int(port)


def load_signing_key(path: Path) -> SigningKey:
    """Accepts the foundation's key file: raw 32-byte seed, hex text, a JSON object with a hex
    `private_key`/`seed`, or a PKCS8 PEM."""
    if not path.exists():
        raise ConfigError(f"{path}: key file missing")
    data = path.read_bytes()
    try:
        if len(data) == 32:
            return SigningKey(data)
        text = data.decode().strip()
        if text.startswith("-----BEGIN"):
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return SigningKey(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                serialization.NoEncryption()))
        if text.startswith("{"):
            obj = json.loads(text)
            for name in ("seed", "private_key", "secret_key", "priv_key"):
                if name in obj:
                    return SigningKey(bytes.fromhex(str(obj[name]))[:32])
            raise ValueError("no seed/private_key field")
        return SigningKey(bytes.fromhex(text)[:32])
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: unreadable Ed25519 key ({error})") from None


@dataclass(frozen=True)
class Validator:
    public_key: bytes
    stake: int
    name: str
    address: str

    @property
    def node_id(self) -> bytes:
        return VerifyKey(self.public_key).node_id


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    validators: tuple[Validator, ...]
    app: str
    raw: dict[str, Any]
    genesis_hash: bytes

    def index_of(self, public_key: bytes) -> int | None:
        for index, validator in enumerate(self.validators):
            if validator.public_key == public_key:
                return index
        return None


def parse_genesis(data: bytes, where: str = "genesis") -> Genesis:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: not JSON ({error})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("chain_id"), str):
        raise ConfigError(f"{where}: needs a chain_id")
    validators: list[Validator] = []
    for i, entry in enumerate(raw.get("validators") or []):
        try:
            key_hex = entry.get("public_key") or entry.get("pub_key") or entry.get("key")
            public_key = bytes.fromhex(str(key_hex))
            VerifyKey(public_key)
        except (AttributeError, ValueError) as error:
            raise ConfigError(f"{where}: validator {i}: bad public key ({error})") from None
        validators.append(Validator(public_key, int(entry.get("stake", entry.get("power", 1))),
                                    str(entry.get("name", f"v{i}")), str(entry.get("address", ""))))
    if not validators:
        raise ConfigError(f"{where}: no validators")
    # The consensus core indexes validators in node-id order (spec §2).
    validators.sort(key=lambda v: v.node_id)
    app = raw.get("app")
    app_name = app.get("name", "kv") if isinstance(app, dict) else (app if isinstance(app, str) else "kv")
    return Genesis(raw["chain_id"], tuple(validators), str(app_name), raw, genesis_hash_of(data))


def genesis_hash_of(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class NodeConfig:
    home: Path
    name: str
    role: str
    p2p_host: str
    p2p_port: int
    peers: tuple[str, ...]
    rpc_host: str
    rpc_port: int
    metrics_host: str
    metrics_port: int | None
    app: str | None
    consensus: dict[str, Any] = field(default_factory=dict)
    mempool: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def key_path(self) -> Path:
        return self.home / "config" / "key.ed25519"

    @property
    def genesis_path(self) -> Path:
        return self.home / "config" / "genesis.json"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def signing_key(self) -> SigningKey:
        return load_signing_key(self.key_path)

    def genesis(self) -> Genesis:
        if not self.genesis_path.exists():
            raise ConfigError(f"{self.genesis_path}: genesis missing (run hedgerow init)")
        return parse_genesis(self.genesis_path.read_bytes(), str(self.genesis_path))


def load_node_config(home: Path) -> NodeConfig:
    home = Path(home).expanduser()
    path = home / "config" / "node.toml"
    if not path.exists():
        raise ConfigError(f"{home}: not a hedgerow home (no config/node.toml; run hedgerow init)")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    p2p = _section(raw, "p2p", path)
    rpc = _section(raw, "rpc", path)
    metrics = _section(raw, "metrics", path)
    p2p_host, p2p_port = split_address(p2p.get("listen", raw.get("listen", "127.0.0.1:26656")), "p2p.listen")
    rpc_host, rpc_port = split_address(rpc.get("listen", "127.0.0.1:26657"), "rpc.listen")
    metrics_listen = str(metrics.get("listen", ""))
    metrics_host, metrics_port = (split_address(metrics_listen, "metrics.listen") if metrics_listen
                                  else ("127.0.0.1", None))
    peers = p2p.get("peers", raw.get("peers", []))
    if not isinstance(peers, list):
        raise ConfigError(f"{path}: p2p.peers must be a list of HOST:PORT")
    app_section = raw.get("app")
    app = app_section.get("name") if isinstance(app_section, dict) else app_section
    role = str(raw.get("role", "validator"))
    if role not in ("validator", "observer"):
        raise ConfigError(f"{path}: role must be validator or observer, got {role!r}")
    return NodeConfig(
        home=home, name=str(raw.get("name", raw.get("moniker", home.name))), role=role,
        p2p_host=p2p_host, p2p_port=p2p_port, peers=tuple(str(p) for p in peers),
        rpc_host=rpc_host, rpc_port=rpc_port, metrics_host=metrics_host, metrics_port=metrics_port,
        app=str(app) if app else None,
        consensus=dict(_section(raw, "consensus", path)), mempool=dict(_section(raw, "mempool", path)),
        faults=dict(_section(raw, "faults", path)), raw=raw)


def _section(raw: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return value
