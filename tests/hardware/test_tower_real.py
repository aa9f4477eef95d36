"""Hardware in the loop: runs only when ``KYOTEN_TOWER_URL`` names a real tower, e.g.
``KYOTEN_TOWER_URL='pns://10.1.0.50?model=nh' pytest tests/hardware -k real``. It lights the
tower for about a second and leaves it cleared.

Every protocol but the HTTP control API reads the tower back, so the lamps are checked
through it; for HTTP the test asserts that read-back is refused as unsupported instead (the
tower's own ``Success.`` to each command is still checked by ``set`` and ``clear``)."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import pytest
from kyoten.hardware.errors import UnsupportedState
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.tower import open_tower

URL = os.environ.get("KYOTEN_TOWER_URL", "")
#: URL schemes whose protocol has no read-back (the NH family's HTTP control API).
WRITE_ONLY = ("http", "https")


@pytest.mark.skipif(not URL, reason="set KYOTEN_TOWER_URL to test a real tower")
async def test_real_tower_set_readback_clear() -> None:
    state = TowerState(red=Light.BLINK, green=Light.ON)
    readable = urlsplit(URL).scheme.lower() not in WRITE_ONLY
    async with open_tower(URL, timeout=3) as tower:
        assert tower.can_read is readable, f"{tower.codec.name}: can_read is {tower.can_read}"
        await tower.set(state)
        if readable:
            assert await tower.status() == state
        else:
            with pytest.raises(UnsupportedState):
                await tower.status()
        await asyncio.sleep(1)
        await tower.clear()
        if readable:
            assert await tower.status() == TowerState()
        else:
            with pytest.raises(UnsupportedState):
                await tower.status()
