"""The top-level command line: version, help, and lazy dispatch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kyoten.shell import cli


def test_version_matches_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"kyoten {cli.package_version()}"


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_get_does_not_import_the_bridge_stack() -> None:
    """UserParameter mode pays Python start-up on every poll: keep aiohttp & co out of it."""
    code = (
        "import sys; from kyoten.shell import cli; cli.build_parser();"
        "heavy = ('aiohttp', 'slack_sdk', 'serial', 'aiosmtplib');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
