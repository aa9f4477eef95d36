"""Keep secrets out of everything kyoten writes: the one redaction helper of every part.

The agent 2 plugin's log frames end up in the agent's log file and its error replies in the
Zabbix database and frontend; the bridge's delivery errors reach ``/health``, its logs and its
dead letters; ``kyoten import`` prints API errors; tower URLs are logged. All are readable by far
more people than the config. Callers are meant to produce clean messages already; this is the
second line: connection-string and URL passwords are masked by pattern, and the exact values of
configured secrets (registered once the config is loaded) are masked wherever they appear.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# password=..., password: ..., "password": "..." (libpq keyword strings, TOML/JSON echoes)
_KEYWORD = re.compile(
    r"""(?P<k>\b(?:password|passwd|pwd|passphrase|secret|token)\b["']?\s*[=:]\s*)"""
    r"""(?P<q>["']?)(?P<v>[^"'\s,;&})]+)""",
    re.IGNORECASE,
)
# scheme://user:password@host
_URL = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/:@\s]+:)(?P<v>[^@\s/]+)(?P<at>@)", re.I)


class Redactor:
    """Masks configured secrets and password-looking fragments; safe to share across threads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Also mask these exact strings (longest first, so a secret containing another is
        masked whole). Values shorter than 4 characters are ignored: masking "pg" everywhere
        would garble messages and protect nothing."""
        fresh = {s for s in secrets if len(s) >= 4}
        with self._lock:
            merged = set(self._secrets) | fresh
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _URL.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)
        return _KEYWORD.sub(lambda m: f"{m['k']}{m['q']}{MASK}", text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with ``secrets`` and password-looking fragments masked (a one-off
    :class:`Redactor`)."""
    return Redactor(secrets)(text)


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for details and logs: the user
    name goes too, since some towers and proxies take a token there."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=MASK + "@" + parts.netloc.rpartition("@")[2]))
