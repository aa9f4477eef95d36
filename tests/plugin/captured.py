"""Frames captured from real agents, shared by the framing and state machine tests.

The 6.0.14 bodies were captured by a logging probe plugin under Debian's zabbix_agent2
6.0.14 (``Plugins.Kyoten.Config=/etc/kyoten/x.toml``, ``Timeout=5``); the 7.0.22 ones were
captured the same way, under Debian trixie's zabbix_agent2 7.0.22.
"""

from __future__ import annotations

OPTIONS_60 = (
    '{"Name":"Kyoten","Nodes":[{"Name":"System","Nodes":[{"Name":"Path","Nodes":[{"Value":'
    '"L3RtcC9rcC1wcm9iZS9wcm9iZS5weQ==","Line":14}],"Line":14}],"Line":14},{"Name":"Config",'
    '"Nodes":[{"Value":"L2V0Yy9reW90ZW4veC50b21s","Line":15}],"Line":15}],"Line":14}'
)
REGISTRATION_60 = [
    b'{"id":1,"type":2,"version":"6.0.13"}',
    b'{"id":2,"type":9,"private_options":' + OPTIONS_60.encode() + b"}",
    b'{"id":0,"type":5}',
]
OPERATIONAL_60 = [
    b'{"id":1,"type":8,"global_options":{"Timeout":5,"SourceIP":""},"private_options":'
    + OPTIONS_60.encode()
    + b"}",
    b'{"id":2,"type":4}',
    b'{"id":3,"type":6,"key":"probe.echo","parameters":["a","b c",""]}',
    b'{"id":4,"type":6,"key":"probe.echo"}',
    b'{"id":5,"type":6,"key":"probe.echo","parameters":[""]}',
    b'{"id":0,"type":5}',
]
FRAMES_70 = [
    b'{"id":1,"type":2,"version":"6.4.0"}',
    b'{"id":7,"type":6,"key":"pytest.echo","parameters":["a","b"],"timeout":7}',
    b'{"id":3,"type":5}',
]
