"""The private_options tree, the registered metric list, and the exported agent config."""

from __future__ import annotations

import base64
import json

import pytest
from captured import OPTIONS_60
from kyoten.agent.catalogue import agent_keys
from kyoten.agent.plugin import bindings, metrics, options
from kyoten.agent.plugin.config import render_plugin_conf
from kyoten.common.redact import Redactor


def leaf(text: str, line: int = 1) -> dict[str, object]:
    return {"Value": base64.b64encode(text.encode()).decode(), "Line": line}


def tree(**opts: str) -> dict[str, object]:
    nodes = [{"Name": k, "Nodes": [leaf(v)], "Line": 1} for k, v in opts.items()]
    return {"Name": "Kyoten", "Nodes": nodes, "Line": 1}


def test_captured_60_tree_flattens_with_the_system_subtree() -> None:
    flat = options.flatten(json.loads(OPTIONS_60))
    assert flat == {"System.Path": ["/tmp/kp-probe/probe.py"], "Config": ["/etc/kyoten/x.toml"]}
    assert options.parse_options(json.loads(OPTIONS_60)).config_path == "/etc/kyoten/x.toml"


def test_no_options_at_all_gives_defaults() -> None:
    assert options.parse_options(None) == options.PluginOptions()
    assert options.parse_options({"Name": "Kyoten", "Line": 3}) == options.PluginOptions()


def test_timeout_and_workers_are_parsed_and_range_checked() -> None:
    got = options.parse_options(tree(Timeout="7", Workers="4"))
    assert (got.timeout_s, got.workers) == (7, 4)
    with pytest.raises(options.OptionsError, match="outside 1-30"):
        options.parse_options(tree(Timeout="31"))
    with pytest.raises(options.OptionsError, match="not an integer"):
        options.parse_options(tree(Workers="many"))


def test_unknown_and_repeated_options_are_rejected_by_name() -> None:
    with pytest.raises(options.OptionsError, match=r"Plugins\.Kyoten\.Confg"):
        options.parse_options(tree(Confg="/x"))
    twice = {"Name": "Kyoten", "Nodes": [{"Name": "Config", "Nodes": [leaf("/a"), leaf("/b")]}]}
    with pytest.raises(options.OptionsError, match="2 times"):
        options.parse_options(twice)


def test_a_leaf_that_is_not_base64_is_an_options_error() -> None:
    bad = {"Name": "Kyoten", "Nodes": [{"Name": "Config", "Nodes": [{"Value": "%%%"}]}]}
    with pytest.raises(options.OptionsError, match="base64"):
        options.parse_options(bad)


def test_descriptions_follow_the_agent_registry_rules() -> None:
    assert metrics.agent_description("echo  back\n the params") == "Echo back the params."
    assert metrics.agent_description("Done.") == "Done."
    with pytest.raises(metrics.MetricError):
        metrics.agent_description("  ")


def test_bad_or_repeated_keys_never_reach_the_agent() -> None:
    with pytest.raises(metrics.MetricError, match="form"):
        metrics.register_list([("kyoten.pg[x]", "X.")])
    with pytest.raises(metrics.MetricError, match="twice"):
        metrics.register_list([("a", "A."), ("a", "B.")])


def test_plugin_registers_exactly_the_catalogue_keys() -> None:
    flat = bindings.kyoten_metrics()
    keys, descriptions = flat[0::2], flat[1::2]
    assert list(keys) == [k.key for k in agent_keys()]
    for text in descriptions:
        assert text[0].isupper() and text.endswith("."), text


def test_config_secrets_finds_nested_passwords() -> None:
    from dataclasses import dataclass, field

    @dataclass
    class Endpoint:
        host: str
        password: str | None = None

    @dataclass
    class Conf:
        targets: dict[str, Endpoint] = field(default_factory=dict)
        pcp_password: str = ""

    conf = Conf({"a": Endpoint("h", "pw-one"), "b": Endpoint("h")}, "pw-two")
    assert sorted(bindings.config_secrets(conf)) == ["pw-one", "pw-two"]


def test_config_secrets_finds_every_password_of_kyoten_toml() -> None:
    """The real config (named tuples, not dataclasses): each target's and PCP's password."""
    from kyoten.agent.config import parse_config

    conf = parse_config(
        {
            "postgres": {"a": {"host": "h", "password": "pw-pg"}, "b": {"host": "h"}},
            "pgpool": {
                "p": {
                    "host": "h",
                    "password": "pw-pool",
                    "pcp_port": 9898,
                    "pcp_password": "pw-pcp",
                }
            },
            "zabbix": {"z": {"host": "h", "password": "pw-zbx"}},
        }
    )
    assert sorted(bindings.config_secrets(conf)) == ["pw-pcp", "pw-pg", "pw-pool", "pw-zbx"]
    assert "pw-pg" not in repr(conf) and "pw-pcp" not in repr(conf)


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("connection failed: password=s3cr3t host=x", "s3cr3t"),
        ("dsn postgresql://zbx:s3cr3t@127.0.0.1:5432/db", "s3cr3t"),
        ('{"password": "s3cr3t"}', "s3cr3t"),
        ("FATAL: auth for my-registered-secret failed", "my-registered-secret"),
    ],
)
def test_redactor_masks_secrets(text: str, leaked: str) -> None:
    redact = Redactor(["my-registered-secret"])
    out = redact(text)
    assert leaked not in out and "***" in out


def test_redactor_leaves_ordinary_text_alone() -> None:
    text = "127.0.0.1:55432: connection refused (is the server running?)"
    assert Redactor(["pg"])(text) == text


def test_rendered_conf_names_the_plugin_path_and_config() -> None:
    text = render_plugin_conf("/usr/bin/kyoten-agent2-plugin", "/etc/kyoten/kyoten.toml", 2)
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert lines == [
        "Plugins.Kyoten.System.Path=/usr/bin/kyoten-agent2-plugin",
        "Plugins.Kyoten.Config=/etc/kyoten/kyoten.toml",
        "Plugins.Kyoten.Timeout=2",
    ]
    bare = render_plugin_conf("/usr/bin/kyoten-agent2-plugin")
    assert [ln for ln in bare.splitlines() if not ln.startswith("#")] == [
        "Plugins.Kyoten.System.Path=/usr/bin/kyoten-agent2-plugin"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("bin/kyoten-agent2-plugin", None, None),
        ("/usr/bin/x\nUserParameter=evil,id", None, None),
        ("/usr/bin/x", "etc/kyoten.toml", None),
        ("/usr/bin/x", None, 0),
    ],
)
def test_rendered_conf_refuses_what_the_agent_would_choke_on(
    args: tuple[str, str | None, int | None],
) -> None:
    with pytest.raises(ValueError):
        render_plugin_conf(*args)


def test_rendered_conf_round_trips_through_the_options_parser() -> None:
    text = render_plugin_conf("/opt/k/bin/kyoten-agent2-plugin", "/etc/k.toml", 4)
    opts = {}
    for line in text.splitlines():
        if line.startswith("Plugins.Kyoten.") and not line.startswith("Plugins.Kyoten.System"):
            name, value = line.removeprefix("Plugins.Kyoten.").split("=", 1)
            opts[name] = value
    parsed = options.parse_options(tree(**opts))
    assert (parsed.config_path, parsed.timeout_s) == ("/etc/k.toml", 4)
