"""Shared terminal output: rich tables and progress for people, plain JSON for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_json(value: Any) -> None:
    """Print one JSON document on stdout (sorted keys, so outputs diff cleanly)."""
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table with the given header and rows (values rendered with str)."""
    result = Table(title=title)
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*(str(cell) for cell in row))
    return result


def progress(*, quiet: bool = False) -> Progress:
    """A progress bar on stderr (disabled when `quiet`, e.g. with --json)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    )


def parse_range(text: str) -> range:
    """Parse `A-B` (inclusive) or `N` into a range; raises ValueError on anything else."""
    first, sep, last = text.partition("-")
    start = int(first)
    stop = int(last) if sep else start
    if stop < start or start < 0:
        raise ValueError(f"bad range {text!r}: want A-B with 0 <= A <= B")
    return range(start, stop + 1)
