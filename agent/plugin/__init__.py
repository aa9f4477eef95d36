"""kyoten as a Zabbix agent 2 loadable plugin.

Agent 2 starts ``kyoten-agent2-plugin <socket> <true|false>`` and talks to it over a Unix
socket, in length-prefixed JSON frames (their layout and message types: :mod:`.protocol`).
One persistent process answers every check of the catalogue's keys, so a poll no longer pays
for a Python start and a fresh database connection.

The package is layered so each layer can be tested without the next:

- :mod:`.protocol` - pure framing, bytes to typed messages and back;
- :mod:`.options` - the agent's ``private_options`` tree and the plugin's own settings;
- :mod:`.metrics` - the registered key list, following the agent's registry rules;
- :mod:`kyoten.common.redact` (used by the session) - keeps secrets out of Log frames and
  error replies;
- :mod:`.dispatch` - exports on a bounded pool: deadlines, coalescing, one answer per id;
- :mod:`.session` - the state machine over one connected socket;
- :mod:`.main` - process concerns: argv, signals, connecting, exiting;
- :mod:`.config` - the ``Plugins.Kyoten.*`` lines ``kyoten export agent2-plugin`` writes.
"""
