"""kyoten's plugin: the catalogue's keys, answered by the persistent collector.

This is the only module of the plugin package that knows kyoten's collector exists; the
session and the dispatcher run any :class:`~.session.PluginSpec`. Heavy imports (the
collector pulls in psycopg) happen inside the functions, so the registration run, which must
answer within the agent's PluginTimeout, only imports the catalogue.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kyoten.agent.errors import KyotenError

from .dispatch import Handler
from .metrics import register_list
from .options import PluginOptions
from .session import PluginSpec

if TYPE_CHECKING:
    from kyoten.agent.config import Config

#: Must equal ``<Name>`` in ``Plugins.<Name>.System.Path`` (case-sensitive), or the agent
#: refuses to start with "mismatch plugin names".
PLUGIN_NAME = "Kyoten"


def kyoten_metrics() -> tuple[str, ...]:
    """Every catalogue key with its description, in catalogue order."""
    from kyoten.agent.catalogue import agent_keys

    return register_list((k.key, k.description) for k in agent_keys())


def config_secrets(config: object) -> list[str]:
    """Every password-like string in the loaded config, to be masked in what we send.

    The config is a tree of named tuples (kyoten.agent.config), dataclasses, dicts and
    sequences; a string is a secret by the name of the field that holds it.
    """
    found: list[str] = []

    def fields_of(obj: object) -> list[tuple[str, object]] | None:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
        names = getattr(type(obj), "_fields", None)  # a named tuple
        if isinstance(obj, tuple) and isinstance(names, tuple):
            return list(zip(names, obj, strict=True))
        return None

    def walk(obj: object) -> None:
        fields = fields_of(obj)
        if fields is not None:
            for name, value in fields:
                if isinstance(value, str) and any(
                    word in name.lower() for word in ("password", "secret", "token")
                ):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list | tuple):
            for value in obj:
                walk(value)

    walk(config)
    return found


class KyotenHandler:
    """The collector in persistent mode: target connections stay open between polls."""

    def __init__(self, config: Config) -> None:
        from kyoten.agent.collector import Collector

        self.config = config
        self.collector = Collector(config, persistent=True)

    def get(self, key: str, params: list[str], deadline_s: float) -> str:
        return self.collector.get(key, params, deadline_s)

    def close(self) -> None:
        close = getattr(self.collector, "close", None)
        if callable(close):
            close()


def make_handler(options: PluginOptions) -> Handler:
    """Load the config (``Plugins.Kyoten.Config``, else the usual lookup) and start collecting."""
    from kyoten.agent.config import load_config

    return KyotenHandler(load_config(options.config_path))


def check_options(options: PluginOptions) -> None:
    """At agent start: an explicitly configured kyoten config must load, so a wrong path
    stops the agent with the reason instead of failing every check later. Without
    ``Plugins.Kyoten.Config`` nothing is loaded here, so an agent on a host where kyoten is
    installed but not configured yet still starts."""
    if options.config_path is not None:
        from kyoten.agent.config import load_config

        load_config(options.config_path)


def secrets_of(handler: Handler) -> list[str]:
    return config_secrets(handler.config) if isinstance(handler, KyotenHandler) else []


def kyoten_spec() -> PluginSpec:
    """The plugin the ``kyoten-agent2-plugin`` executable serves."""
    return PluginSpec(
        name=PLUGIN_NAME,
        metrics=kyoten_metrics,
        make_handler=make_handler,
        check=check_options,
        expected=(KyotenError,),
        secrets=secrets_of,
    )
