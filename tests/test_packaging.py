"""Every folder with an __init__.py is packaged under the `hedgerow` namespace."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("node", "net", "protocols", "compute", "testnet")


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        "hedgerow." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk, "no package folders found"
    assert on_disk == listed


def test_package_dir_maps_each_top_level_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    assert mapping == {f"hedgerow.{top}": top for top in TOP_LEVEL}


def test_each_top_level_package_ships_a_typed_marker() -> None:
    for top in TOP_LEVEL:
        assert (ROOT / top / "py.typed").is_file(), top
