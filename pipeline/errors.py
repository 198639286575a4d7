"""The project's base errors: every package may import them, none owns them."""

from __future__ import annotations


class ITwinRunsError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(ITwinRunsError):
    """Settings are missing or invalid; the message says what to set."""
