"""Marker for the Debian package test: ``pytest -m deb`` selects it (it also runs by default)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deb: builds the .deb, installs it with dpkg on this machine, then purges it"
    )
