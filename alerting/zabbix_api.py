"""A logged-in Zabbix API client on the bridge's own HTTP session, for what acts or asks as a
configured user (Slack clicks, reconciliation).

zabbix_utils' ``AsyncZabbixAPI`` constructor reads the API version with blocking I/O, so it is
built in a thread; the session is the caller's and is never closed by the library.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


async def logged_in(
    url: str, session: aiohttp.ClientSession, token: str, *, verify: bool, timeout: float
) -> Any:
    """An ``AsyncZabbixAPI`` for ``url`` logged in with the API ``token``."""
    from zabbix_utils import AsyncZabbixAPI

    api = await asyncio.to_thread(
        AsyncZabbixAPI,
        url=url,
        client_session=session,  # never closed by the library
        validate_certs=verify,
        timeout=max(1, int(timeout)),
        skip_version_check=True,
    )
    await api.login(token=token)
    return api
