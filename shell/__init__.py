"""kyoten.shell: the product shell, the parts that span the others.

The ``kyoten`` root command (:mod:`.cli`), ``kyoten export`` and ``kyoten import``
(:mod:`.export`, :mod:`.zabbix_import`: the agent's templates together with the bridge's media
type) and the demo lab (:mod:`.lab`). Nothing here runs inside the Zabbix agent or the bridge:
the collector (``kyoten.agent``), the bridge (``kyoten.alerting``) and the tower drivers
(``kyoten.hardware``) never import this package.
"""
