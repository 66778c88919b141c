"""The home layout: init writes it, load reads and cross-checks it, nothing is ever overwritten."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from hedgerow.net import TransportConfig
from hedgerow.node.errors import ConfigError, UsageError
from hedgerow.node.home import (
    Genesis,
    GenesisValidator,
    init_home,
    load_home,
    load_key_file,
    parse_address,
    write_key_file,
)
from hedgerow.protocols.crypto import SigningKey


def test_init_writes_the_layout(tmp_path: Path) -> None:
    home = init_home(tmp_path / "h", "local", listen="127.0.0.1:4000")
    config = tmp_path / "h" / "config"
    assert stat.S_IMODE((config / "key.ed25519").stat().st_mode) == 0o600
    toml = tomllib.loads((config / "node.toml").read_text())
    assert toml["version"] == 1 and toml["chain_id"] == "local" and toml["p2p"]["listen"] == "127.0.0.1:4000"
    genesis = json.loads((config / "genesis.json").read_text())
    assert genesis["chain_id"] == "local"
    assert [v["node_id"] for v in genesis["validators"]] == [home.key.node_id.hex()]
    assert (tmp_path / "h" / "data" / "logs").is_dir()
    loaded = load_home(tmp_path / "h")
    assert loaded.key.node_id == home.key.node_id and loaded.is_validator
    assert loaded.config.listen_address == ("127.0.0.1", 4000)
    assert loaded.genesis.peer_addresses() == {home.key.node_id: ("127.0.0.1", 4000)}
    assert loaded.config.transport_config() == TransportConfig()
    assert not loaded.config.fault_layer().enabled


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    first = init_home(tmp_path, "local")
    with pytest.raises(UsageError, match="refusing to overwrite"):
        init_home(tmp_path, "local")
    assert load_home(tmp_path).key.node_id == first.key.node_id


def test_init_with_a_given_genesis(tmp_path: Path) -> None:
    others = [SigningKey.from_label(f"v{i}") for i in range(3)]
    genesis = Genesis("net-7", tuple(GenesisValidator(k.public.raw, 1, f"127.0.0.1:{7000 + i}")
                                     for i, k in enumerate(others)), extra={"app": {"x": 1}})
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis.to_json()))
    home = init_home(tmp_path / "obs", "net-7", genesis_file=path)
    assert not home.is_validator and load_home(tmp_path / "obs").genesis == genesis
    with pytest.raises(UsageError, match="does not match"):
        init_home(tmp_path / "other", "net-8", genesis_file=path)


@pytest.mark.parametrize("bad_chain", ["", "has space", "x" * 65, "-lead"])
def test_bad_chain_ids(tmp_path: Path, bad_chain: str) -> None:
    with pytest.raises(UsageError, match="chain id"):
        init_home(tmp_path, bad_chain)


def test_key_file_round_trip_permissions_and_no_overwrite(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "k"
    write_key_file(path, key)
    assert load_key_file(path).seed == key.seed
    with pytest.raises(UsageError, match="refusing"):
        write_key_file(path, SigningKey.generate())
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 644"):
        load_key_file(path)
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_key_file(path)


def test_load_home_reports_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a node home"):
        load_home(tmp_path)
    init_home(tmp_path, "local")
    toml_path = tmp_path / "config" / "node.toml"
    original = toml_path.read_text()
    toml_path.write_text(original.replace("version = 1", "version = 99"))
    with pytest.raises(ConfigError, match="version 99"):
        load_home(tmp_path)
    toml_path.write_text(original + "idle_timeout_s = -1\n")  # lands in [faults]: unknown key
    with pytest.raises(ConfigError, match="faults"):
        load_home(tmp_path).config.fault_layer()
    toml_path.write_text(original.replace("[transport]", "[transport]\nidle_timeout = 3"))
    with pytest.raises(ConfigError, match="unknown \\[transport\\]"):
        load_home(tmp_path).config.transport_config()
    toml_path.write_text(original)
    genesis_path = tmp_path / "config" / "genesis.json"
    document = json.loads(genesis_path.read_text())
    document["validators"][0]["node_id"] = "00" * 20
    genesis_path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="does not match its public key"):
        load_home(tmp_path)


@pytest.mark.parametrize(("text", "expected"), [("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:9", ("::1", 9))])
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["nohost", ":80", "h:", "h:99999", "h:x"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)
