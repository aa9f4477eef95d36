"""The agent 2 configuration lines that load kyoten as a plugin (``kyoten export agent2-plugin``).

Pure text rendering: the caller decides where it goes (usually
``/etc/zabbix/zabbix_agent2.d/plugins.d/kyoten.conf``, which Debian's agent config includes).
The lines are checked here because the agent's own reactions are harsh: 7.x rejects a
relative ``System.Path``, a line break would inject arbitrary agent settings, and the same
keys configured as UserParameters stop the agent at start ("duplicate key").
"""

from __future__ import annotations

import os

from .bindings import PLUGIN_NAME
from .options import TIMEOUT_RANGE


def _single_line(name: str, value: str) -> str:
    if any(c in value for c in "\r\n\0") or value != value.strip():
        raise ValueError(f"{name} must be one line without surrounding blanks: {value!r}")
    return value


def render_plugin_conf(
    executable: str, config_path: str | None = None, timeout_s: int | None = None
) -> str:
    """The ``Plugins.Kyoten.*`` block for zabbix_agent2.

    :param executable: absolute path of ``kyoten-agent2-plugin`` as the agent (user
        ``zabbix``) will exec it; a shebang script is fine.
    :param config_path: kyoten's TOML config, when not the default lookup; it is then
        checked at agent start, so a wrong path stops the agent with the reason.
    :param timeout_s: ``Plugins.Kyoten.Timeout``, only needed on 6.0 agents whose
        PluginTimeout is lower than their Timeout (6.0 tells plugins only the latter).
    :raises ValueError: a path is relative or not a single line, or the timeout is out of range.
    """
    lines = [
        "# Zabbix agent 2: kyoten as a loadable plugin (written by 'kyoten export agent2-plugin').",
        "# It registers the same keys as kyoten's UserParameter file: use one or the other.",
        "# The agent runs it as its own user, which must be able to read kyoten's config.",
    ]
    if not os.path.isabs(_single_line("executable", executable)):
        raise ValueError(f"the plugin path must be absolute (agent 2 rejects {executable!r})")
    lines.append(f"Plugins.{PLUGIN_NAME}.System.Path={executable}")
    if config_path is not None:
        if not os.path.isabs(_single_line("config_path", config_path)):
            raise ValueError(f"the kyoten config path must be absolute: {config_path!r}")
        lines.append(f"Plugins.{PLUGIN_NAME}.Config={config_path}")
    if timeout_s is not None:
        lo, hi = TIMEOUT_RANGE
        if not lo <= timeout_s <= hi:
            raise ValueError(f"timeout_s must be within {lo}-{hi}, not {timeout_s}")
        lines.append(f"Plugins.{PLUGIN_NAME}.Timeout={timeout_s}")
    else:
        lines.append(
            f"# Plugins.{PLUGIN_NAME}.Timeout=3   (6.0 only: set to PluginTimeout if below Timeout)"
        )
    return "\n".join(lines) + "\n"
