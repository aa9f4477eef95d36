"""One convention on every command: exit 2 for a usage or configuration error (every problem
listed), 1 when what was checked failed, ``--log-level`` with the same choices, all of it in
``--help``."""

from __future__ import annotations

from pathlib import Path

import pytest
from kyoten.common.cli import EXIT_CODES
from kyoten.shell import cli

COMMANDS = [
    ["check-config"],
    ["bridge", "check-config"],
    ["bridge", "serve"],
    ["bridge", "send"],
    ["bridge", "status"],
    ["health", "check"],
    ["health", "serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_states_the_exit_codes_and_the_log_levels(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*command, "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert " ".join(EXIT_CODES.split()) in text
    assert "--log-level {debug,info,warning,error}" in text
    if command[0] in ("check-config", "health"):  # the default file, not its directory
        assert "$KYOTEN_CONFIG or /etc/kyoten/kyoten.toml)" in text


def test_a_bad_config_exits_2_listing_every_problem_on_each_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "kyoten.toml"
    toml.write_text('deadline = "2"\n[postgres.a]\nport = 0\n')
    yaml = tmp_path / "bridge.yaml"
    yaml.write_text("token: short\nmax_body: 1\nchannels: {}\nroutes: []\n")
    runs = {
        "check-config": ["check-config", "--config", str(toml)],
        "health check": ["health", "check", "--config", str(toml), "--site", "a"],
        "bridge check-config": ["bridge", "check-config", "--config", str(yaml)],
    }
    for name, argv in runs.items():
        assert cli.main(argv) == 2, name
        err = capsys.readouterr().err
        if "bridge" in name:
            for field in ("token:", "max_body:", "channels:", "routes:"):
                assert field in err, (name, err)
        else:
            for field in ("deadline:", "postgres.a.host: missing", "postgres.a.port:"):
                assert field in err, (name, err)
