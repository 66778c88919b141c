"""Errors by owner (STYLE.md): each carries the exit code the CLI uses."""

from __future__ import annotations


class HedgerowError(Exception):
    """Base for errors shown to the operator as one line."""

    exit_code = 1


class UsageError(HedgerowError):
    """Bad command-line usage or bad input from the operator."""

    exit_code = 2


class ConfigError(HedgerowError):
    """A home directory, config or genesis file that cannot be used."""

    exit_code = 2


class VerdictFailure(HedgerowError):
    """The command ran, and its verdict is failure (a check or simulation found a violation)."""

    exit_code = 1


class SafetyHalt(HedgerowError):
    """The node halted on a safety violation of its own state."""

    exit_code = 3
