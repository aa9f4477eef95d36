"""kyoten.alerting: the alert bridge from Zabbix events to mail, Slack and PATLITE towers.

Zabbix's webhook media type (:mod:`.mediatype`, the contract) POSTs every problem, update and
recovery to ``POST /v1/events`` (:mod:`.app`). The event is parsed by a pure function
(:mod:`.events`), routed by pure rules (:mod:`.routing`) and committed to the outbox
(:mod:`.outbox`: SQLite by default, PostgreSQL for two bridges sharing the work) before the 2xx
answer. One worker per channel then delivers it (:mod:`.pipeline`: per-event order, backoff with
full jitter and Retry-After, dead letters, rate limits, mute windows, storm digests, state
snapshots for towers). Channels only send (:mod:`.channels.base`); they are listed in
:data:`.channels.REGISTRY`. ``kyoten bridge …`` (:mod:`.cli`) serves, replays dead letters,
checks a config and prints the media type.
"""
