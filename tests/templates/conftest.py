"""Real Zabbix servers for the template tests: 6.0 (Debian) and 7.0 (trixie root), on loopback.

Both keep their database on the shared cluster's primary (databases ``zabbix`` and
``zabbix70``), as the cross-site design does. They start once per session; tests that need the
templates imported share one import through ``imported60``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.shell import zabbix_import
from kyoten.shell.lab.procs import LabError, free_port, write_file
from kyoten.shell.lab.zabbix import ADMIN_PASSWORD, ADMIN_USER, Zabbix60, ZabbixDb, zabbix_port
from kyoten.shell.lab.zabbix70 import Zabbix70


@pytest.fixture(scope="session")
def admin_password_file(lab_root: Path) -> Path:
    return write_file(lab_root / "zabbix-admin.pw", ADMIN_PASSWORD + "\n", "root", 0o600)


@pytest.fixture(scope="session")
def zabbix60(cluster: Any, lab_root: Path) -> Iterator[Zabbix60]:
    """Debian's Zabbix 6.0 server (HA node site-a) + frontend, DB on the cluster primary."""
    z = Zabbix60(lab_root / "zabbix60", ZabbixDb(cluster.primary), zabbix_port(), free_port())
    try:
        z.start()
    except LabError:
        z.stop()
        raise
    yield z
    z.stop()


@pytest.fixture(scope="session")
def zabbix70(cluster: Any, lab_root: Path) -> Iterator[Zabbix70]:
    """trixie's Zabbix 7.0 server + frontend (first run on a machine installs the root)."""
    db = ZabbixDb(cluster.primary, name="zabbix70", user="zabbix70", password="zabbix70")
    z = Zabbix70(lab_root / "zabbix70", db, zabbix_port(), free_port())
    try:
        z.start()
    except LabError:
        z.stop()
        raise
    yield z
    z.stop()


def kyoten_import(url: str, password_file: Path, *extra: str) -> int:
    """``kyoten import`` exactly as the CLI dispatches it."""
    argv = ["import", "--url", url, "--user", ADMIN_USER, "--password-file", str(password_file)]
    return zabbix_import.main([*argv, *extra])


@pytest.fixture(scope="session")
def imported60(zabbix60: Zabbix60, admin_password_file: Path) -> Any:
    """The 6.0 server with kyoten's templates and media type imported; a logged-in API."""
    assert kyoten_import(zabbix60.url, admin_password_file) == 0
    return zabbix60.api()


def wait_until(
    check: Callable[[], Any],
    what: str,
    timeout: float,
    interval: float = 2,
    show: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``check()`` until it returns something truthy; returns it. Fails the test otherwise,
    quoting the last value (or what ``show()`` says then)."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(interval)
    if show is not None:
        last = show()
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


CANARY_GROUP = "kyoten canary test NOC"
CANARY_USER = "kyoten-canary-test"


def canary_recipients(api: Any) -> tuple[str, str]:
    """(usrgrpid, userid) of the user group the canary tests name in ``--canary-usergroup``.

    One plain user (User role, no super admin, no media): the canary action's alerts for it
    are rows with "No media defined for user", so they prove the action fired and that the
    group may read the canary host, without sending anything anywhere (the media type tests
    point the kyoten media of Admin at their sink, which must see none of these).
    """
    found = api.usergroup.get(filter={"name": CANARY_GROUP}, output=["usrgrpid"])
    if found:
        groupid = str(found[0]["usrgrpid"])
    else:
        groupid = str(api.usergroup.create(name=CANARY_GROUP)["usrgrpids"][0])
    users = api.user.get(filter={"username": CANARY_USER}, output=["userid"])
    if users:
        return groupid, str(users[0]["userid"])
    created = api.user.create(
        username=CANARY_USER,
        passwd=secrets.token_urlsafe(18),
        roleid="1",  # "User role" of the stock data
        usrgrps=[{"usrgrpid": groupid}],
    )
    return groupid, str(created["userids"][0])
