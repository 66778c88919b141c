"""The node's home directory (CometBFT-like) and its three config files.

    HOME/config/node.toml      node settings, with a `version` field (read with tomllib)
    HOME/config/key.ed25519    the node's Ed25519 key (JSON, mode 0600)
    HOME/config/genesis.json   chain id, validator set (node id, public key, power, address), accounts
    HOME/data/                 databases and logs (written by the node runtime)

Operator mistakes raise `UsageError` (bad arguments, refusing to overwrite) or `ConfigError` (a file
that cannot be used); both reach the user as one line with exit code 2.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hedgerow.net import PROTOCOL_VERSION, FaultLayer, TransportConfig
from hedgerow.node.errors import ConfigError, UsageError
from hedgerow.protocols.crypto import PUBLIC_KEY_BYTES, SigningKey, node_id_of

CONFIG_VERSION = 1
DEFAULT_LISTEN = "127.0.0.1:26656"
CHAIN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_FILE_TYPE = "hedgerow-ed25519"


# ---------------------------------------------------------------------------------------------
# Small parsers


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` -> (host, port); ValueError otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad address {text!r}: want HOST:PORT")
    return host.strip("[]"), int(port_text)


def check_chain_id(chain_id: str) -> str:
    if not CHAIN_ID_PATTERN.fullmatch(chain_id):
        raise UsageError(f"bad chain id {chain_id!r}: 1-64 of letters, digits, '.', '_', '-'")
    return chain_id


# ---------------------------------------------------------------------------------------------
# Key file


def write_key_file(path: Path, key: SigningKey) -> None:
    """Create `path` (mode 0600) holding `key`; refuses to overwrite an existing file."""
    document = {
        "type": KEY_FILE_TYPE,
        "seed": key.seed.hex(),
        "public_key": key.public.raw.hex(),
        "node_id": key.node_id.hex(),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as error:
        raise UsageError(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_key_file(path: Path) -> SigningKey:
    """The key in `path`; ConfigError when missing, malformed, inconsistent or readable by others."""
    try:
        mode = path.stat().st_mode & 0o777
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read key file {path}: {error}") from None
    if mode & 0o077:
        raise ConfigError(f"key file {path} has mode {mode:o}; it must be 600 (chmod 600 {path})")
    try:
        if document["type"] != KEY_FILE_TYPE:
            raise ValueError(f"type {document['type']!r}")
        key = SigningKey(bytes.fromhex(document["seed"]))
        if document.get("public_key", key.public.raw.hex()) != key.public.raw.hex():
            raise ValueError("public key does not match the seed")
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"bad key file {path}: {error}") from None
    return key


# ---------------------------------------------------------------------------------------------
# Genesis


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    public_key: bytes
    power: int = 1
    address: str | None = None  # HOST:PORT where its transport listens

    @property
    def node_id(self) -> bytes:
        return node_id_of(self.public_key)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"node_id": self.node_id.hex(), "public_key": self.public_key.hex(),
                                 "power": self.power}
        if self.address is not None:
            entry["address"] = self.address
        return entry


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    validators: tuple[GenesisValidator, ...]
    protocol_version: int = PROTOCOL_VERSION
    accounts: tuple[Any, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # sections other components own

    @property
    def validator_ids(self) -> frozenset[bytes]:
        return frozenset(v.node_id for v in self.validators)

    def peer_addresses(self) -> dict[bytes, tuple[str, int]]:
        """node id -> (host, port) of every validator that has an address."""
        return {v.node_id: parse_address(v.address) for v in self.validators if v.address is not None}

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, "chain_id": self.chain_id, "protocol_version": self.protocol_version,
                "validators": [v.to_json() for v in self.validators], "accounts": list(self.accounts)}

    @classmethod
    def from_json(cls, document: Any) -> Genesis:
        """Validate a parsed genesis document; ValueError on anything wrong."""
        if not isinstance(document, dict):
            raise ValueError("genesis must be a JSON object")
        chain_id = document.get("chain_id")
        if not isinstance(chain_id, str) or not CHAIN_ID_PATTERN.fullmatch(chain_id):
            raise ValueError(f"bad chain_id {chain_id!r}")
        entries = document.get("validators")
        if not isinstance(entries, list) or not entries:
            raise ValueError("validators must be a non-empty list")
        validators = tuple(_validator_from_json(entry) for entry in entries)
        if len({v.node_id for v in validators}) != len(validators):
            raise ValueError("duplicate validator")
        accounts = document.get("accounts", [])
        version = document.get("protocol_version", PROTOCOL_VERSION)
        if not isinstance(accounts, list) or type(version) is not int:
            raise ValueError("accounts must be a list and protocol_version an int")
        known = {"chain_id", "validators", "accounts", "protocol_version"}
        extra = {key: value for key, value in document.items() if key not in known}
        return cls(chain_id, validators, version, tuple(accounts), extra)


def _validator_from_json(entry: Any) -> GenesisValidator:
    if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
        raise ValueError(f"bad validator entry {entry!r}")
    public_key = bytes.fromhex(entry["public_key"])
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError("validator public_key must be 32 bytes of hex")
    power = entry.get("power", 1)
    if type(power) is not int or power <= 0:
        raise ValueError("validator power must be a positive int")
    address = entry.get("address")
    if address is not None:
        parse_address(address)
    validator = GenesisValidator(public_key, power, address)
    if "node_id" in entry and entry["node_id"] != validator.node_id.hex():
        raise ValueError(f"validator node_id {entry['node_id']} does not match its public key")
    return validator


def load_genesis(path: Path) -> Genesis:
    try:
        return Genesis.from_json(json.loads(path.read_text()))
    except OSError as error:
        raise ConfigError(f"cannot read genesis {path}: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(f"bad genesis {path}: {error}") from None


# ---------------------------------------------------------------------------------------------
# node.toml


@dataclass(frozen=True, slots=True)
class NodeConfig:
    chain_id: str
    moniker: str
    listen: str = DEFAULT_LISTEN
    version: int = CONFIG_VERSION
    transport: dict[str, Any] = field(default_factory=dict)  # TransportConfig overrides
    faults: dict[str, Any] = field(default_factory=dict)  # FaultLayer.from_config table

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_address(self.listen)

    def transport_config(self) -> TransportConfig:
        names = {f.name for f in fields(TransportConfig)}
        unknown = set(self.transport) - names
        if unknown:
            raise ConfigError(f"unknown [transport] keys in node.toml: {sorted(unknown)}")
        try:
            return TransportConfig(**self.transport)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"bad [transport] in node.toml: {error}") from None

    def fault_layer(self) -> FaultLayer:
        try:
            return FaultLayer.from_config(self.faults)
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"bad [faults] in node.toml: {error}") from None


def render_node_toml(config: NodeConfig) -> str:
    return (
        "# Hedgerow node configuration (hedgerow init). Keys are documented in README.md.\n"
        f"version = {config.version}\n"
        f"chain_id = {json.dumps(config.chain_id)}\n"
        f"moniker = {json.dumps(config.moniker)}\n"
        "\n[p2p]\n"
        f"listen = {json.dumps(config.listen)}  # HOST:PORT of the transport\n"
        "\n[transport]  # overrides of hedgerow.net.TransportConfig, e.g. idle_timeout_s = 30.0\n"
        "\n[faults]  # seeded fault injection (drop, delay, duplicate, reorder, partition); off\n"
        "enabled = false\nseed = 0\n"
    )


def load_node_config(path: Path) -> NodeConfig:
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"bad TOML in {path}: {error}") from None
    version = document.get("version")
    if version != CONFIG_VERSION:
        raise ConfigError(f"{path}: config version {version!r} is not supported (want {CONFIG_VERSION})")
    try:
        config = NodeConfig(
            chain_id=document["chain_id"], moniker=str(document.get("moniker", "")),
            listen=document.get("p2p", {}).get("listen", DEFAULT_LISTEN), version=version,
            transport=dict(document.get("transport", {})), faults=dict(document.get("faults", {})),
        )
        config.listen_address  # noqa: B018 - validates HOST:PORT
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ConfigError(f"bad {path}: {error}") from None
    return config


# ---------------------------------------------------------------------------------------------
# The home as a whole


@dataclass(frozen=True, slots=True)
class Home:
    path: Path
    config: NodeConfig
    key: SigningKey
    genesis: Genesis

    @property
    def is_validator(self) -> bool:
        return self.key.node_id in self.genesis.validator_ids


def config_dir(home: Path) -> Path:
    return home / "config"


def data_dir(home: Path) -> Path:
    return home / "data"


def init_home(home: Path, chain_id: str, *, genesis_file: Path | None = None,
              listen: str = DEFAULT_LISTEN) -> Home:
    """Create a fresh home; UsageError if one exists there or the arguments are wrong."""
    check_chain_id(chain_id)
    try:
        parse_address(listen)
    except ValueError as error:
        raise UsageError(str(error)) from None
    genesis = None
    if genesis_file is not None:
        genesis = load_genesis(genesis_file)
        if genesis.chain_id != chain_id:
            raise UsageError(f"--chain-id {chain_id} does not match the genesis chain id {genesis.chain_id}")
    config_path = config_dir(home)
    if config_path.exists():
        raise UsageError(f"{home} is already a node home ({config_path} exists); refusing to overwrite")
    try:
        config_path.mkdir(parents=True)
        (data_dir(home) / "logs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {config_path}: {error.strerror}") from None
    key = SigningKey.generate()
    write_key_file(config_path / "key.ed25519", key)
    if genesis is None:
        genesis = Genesis(chain_id, (GenesisValidator(key.public.raw, 1, listen),))
    config = NodeConfig(chain_id=chain_id, moniker=f"node-{key.public.short_id}", listen=listen)
    _write_text(config_path / "genesis.json", json.dumps(genesis.to_json(), indent=2) + "\n")
    _write_text(config_path / "node.toml", render_node_toml(config))
    return Home(home, config, key, genesis)


def load_home(home: Path) -> Home:
    """Read and cross-check a home; ConfigError on anything unusable."""
    config_path = config_dir(home)
    if not config_path.is_dir():
        raise ConfigError(f"{home} is not a node home (no {config_path}); run `hedgerow init` first")
    config = load_node_config(config_path / "node.toml")
    key = load_key_file(config_path / "key.ed25519")
    genesis = load_genesis(config_path / "genesis.json")
    if genesis.chain_id != config.chain_id:
        raise ConfigError(f"node.toml chain_id {config.chain_id} differs from genesis {genesis.chain_id}")
    return Home(home, config, key, genesis)


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)
