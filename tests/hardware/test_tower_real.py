"""Hardware in the loop: runs only when ``KYOTEN_TOWER_URL`` names a real tower, e.g.
``KYOTEN_TOWER_URL='pns://10.1.0.50?model=nh' pytest tests/hardware -k real``. It lights the
tower for about a second and leaves it cleared."""

from __future__ import annotations

import asyncio
import os

import pytest
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.tower import open_tower

URL = os.environ.get("KYOTEN_TOWER_URL", "")


@pytest.mark.skipif(not URL, reason="set KYOTEN_TOWER_URL to test a real tower")
async def test_real_tower_set_readback_clear() -> None:
    state = TowerState(red=Light.BLINK, green=Light.ON)
    async with open_tower(URL, timeout=3) as tower:
        await tower.set(state)
        if tower.can_read:
            assert await tower.status() == state
        await asyncio.sleep(1)
        await tower.clear()
        if tower.can_read:
            assert await tower.status() == TowerState()
