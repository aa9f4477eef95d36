"""Channel registry: config ``type`` → builder, one line per channel.

Builders are imported lazily (``"module:function"``) so a bridge without, say, a tower configured
never imports its transport. A value may also be a builder itself (tests register recording
channels that way). See :mod:`kyoten.alerting.channels.base` for the contract.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the type: config validation reads the names and must not load aiohttp
    from .base import Builder

REGISTRY: dict[str, str | Builder] = {
    "mail": "kyoten.alerting.channels.mail:build",
    "slack": "kyoten.alerting.channels.slack:build",
    "slack-webhook": "kyoten.alerting.channels.slack:build_webhook",
    "tower": "kyoten.alerting.channels.tower:build",
}


def load_builder(kind: str) -> Builder:
    """The builder registered for channel type ``kind`` (KeyError if none)."""
    entry = REGISTRY[kind]
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    builder: Builder = getattr(importlib.import_module(module), attr)
    return builder
