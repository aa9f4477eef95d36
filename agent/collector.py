"""The collector: item key → one query pass per target → shaped JSON text.

Used by ``kyoten get`` (one call per process, UserParameter mode) and by the agent 2 plugin
(one long-lived instance, ``persistent=True``, connections kept between polls).
"""

from __future__ import annotations

import math
import time

from kyoten.agent import jsontext
from kyoten.agent.errors import ConnectError, KeyError_, KyotenError, TargetError, UnknownTarget
from kyoten.agent.keytable import KEYS
from kyoten.agent.shape import (
    Outcome,
    lld_rows,
    shape_cross,
    shape_pg,
    shape_pgpool,
    shape_zabbix,
)
from kyoten.agent.sources.oneshot import make_connector

# names for the type checker only: ``kyoten get`` imports neither typing nor what is only
# named in annotations (mypy reads any name TYPE_CHECKING as true)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from kyoten.agent.config import Config, PgpoolTarget, PgTarget, ZabbixTarget
    from kyoten.agent.keys import KeySpec
    from kyoten.agent.shape import Json
    from kyoten.agent.sources.pgpool_live import PgpoolLive

# Each family's query pass is imported when a key of it is asked for: ``kyoten get`` answers
# one key per process, and loads only what that key needs.

_KIND = {"kyoten.pg": "postgres", "kyoten.pgpool": "pgpool", "kyoten.zabbix.ha": "zabbix"}


def render(value: Any) -> str:
    """JSON as Zabbix stores it: compact, UTF-8 kept readable.

    orjson, because rendering was a tenth of a plugin poll with the standard encoder (13 µs
    against 1.4 µs for a Pgpool snapshot). The shaping already turns Pgpool's 'nan' into 0;
    a non-finite number that still slipped through would come out as null, which spoils
    one dependent item instead of the whole document (Zabbix rejects NaN).
    """
    import orjson  # the plugin's encoder; kyoten get never loads it (see render_once)

    return orjson.dumps(value).decode()


def render_once(value: Any) -> str:
    """The same JSON from the standard library's encoder, for ``kyoten get``.

    A process that renders one document saves more by not importing orjson (it loads uuid,
    platform and more: about 3 ms of CPU) than orjson's speed gives back, and it calls the
    encoder under ``json.dumps`` directly (:mod:`kyoten.agent.jsontext`: ``json`` itself
    imports ``re``). Same compact UTF-8 form; a non-finite number comes out as null, as from
    orjson. Only the spelling of a float's exponent may differ (1e+16 for 1e16), which JSON
    readers take alike.
    """
    try:
        return jsontext.dumps(value)
    except ValueError:
        return render_once(_finite(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class Collector:
    """Answers catalogue keys for the targets of one config."""

    def __init__(self, config: Config, *, persistent: bool = False) -> None:
        self.config = config
        # kyoten get: one libpq connection per pass through ctypes, no psycopg import (its
        # import alone cost more CPU than the rest of a call); the plugin: psycopg, kept
        self.connector = make_connector(
            persistent=persistent, connect_timeout=config.connect_timeout
        )
        self.render = render if persistent else render_once
        self._pool: ThreadPoolExecutor | None = None  # made on first cross-site call
        # plugin mode: Pgpool passes that make the backends' live checks themselves
        self.pgpool_live: PgpoolLive | None = None
        if persistent:
            from kyoten.agent.sources.connect import Connector
            from kyoten.agent.sources.pgpool_live import PgpoolLive

            assert isinstance(self.connector, Connector)
            self.pgpool_live = PgpoolLive(config, self.connector)

    def close(self) -> None:
        if self.pgpool_live is not None:
            self.pgpool_live.close()
        self.connector.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ keys
    def resolve(self, key: str, params: list[str]) -> KeySpec:
        """Check a key and its parameter count against the catalogue."""
        akey = KEYS.get(key)
        if akey is None:
            raise KeyError_(f"unknown item key {key!r}; kyoten knows: {', '.join(sorted(KEYS))}")
        want = len(akey.params)
        if want == 0 and params in ([], [""]):
            return akey
        if len(params) != want:
            form = f"{key}[{','.join(akey.params)}]" if want else key
            raise KeyError_(f"{key} takes {want} parameter(s), got {len(params)}: use {form}")
        return akey

    def get(self, key: str, params: list[str], deadline_s: float | None = None) -> str:
        """The value Zabbix should store for ``key[params]`` (a JSON document or LLD array)."""
        akey = self.resolve(key, params)
        deadline = time.monotonic() + (
            deadline_s if deadline_s is not None else self.config.deadline
        )
        obj = self.snapshot(akey, params, deadline)
        if akey.lld_field:  # a standalone discovery key: the array as plain LLD rows
            return self.render(lld_rows(obj, akey.lld_field, akey.lld_macros))
        return self.render(obj)

    def snapshot(self, akey: KeySpec, params: list[str], deadline: float) -> Json:
        if akey.family == "kyoten.cross":
            return self.cross(deadline)
        kind = _KIND[akey.family]
        name = self.target_name(kind, params[0])
        if kind == "postgres":
            return self.postgres(self.config.postgres[name], deadline)
        if kind == "pgpool":
            return self.pgpool(self.config.pgpool[name], deadline)
        return self.zabbix(self.config.zabbix[name], deadline)

    def target_name(self, kind: str, name: str) -> str:
        """The named target; an empty name is allowed when only one target of the kind exists."""
        targets = self.config.targets(kind)
        if name in targets:
            return name
        if name == "" and len(targets) == 1:
            return next(iter(targets))
        known = ", ".join(sorted(targets)) or "none"
        what = "no target name given" if name == "" else f"unknown {kind} target {name!r}"
        raise UnknownTarget(f"{what}; {kind} targets in {self.config.source}: {known}")

    # ------------------------------------------------------------------ families
    def postgres(self, t: PgTarget, deadline: float) -> Json:
        from kyoten.agent.sources.postgres import query_postgres

        start = time.monotonic()
        try:
            with self.connector.target("pg", t, self.config.statement_timeout, deadline) as conn:
                raw = query_postgres(conn)
        except ConnectError:
            raise
        except TargetError:
            # A kept connection fails on first use after its server died or restarted; the
            # connector has dropped it. Once more on a fresh one, if time is left, so that a
            # dead server reads as refused in this poll, not in the next one.
            if not self.connector.persistent or deadline - time.monotonic() < 0.5:
                raise
            with self.connector.target("pg", t, self.config.statement_timeout, deadline) as conn:
                raw = query_postgres(conn)
        return shape_pg(
            raw,
            target=t.name,
            site=t.site,
            expected_standbys=t.expected_standbys,
            duration=time.monotonic() - start,
        )

    def pgpool(self, t: PgpoolTarget, deadline: float) -> Json:
        from kyoten.agent.sources.pgpool import (
            Pcp,
            query_pgpool_pcp,
            query_pgpool_sql,
            query_watchdog,
        )

        start = time.monotonic()
        label = f"Pgpool-II {t.name}"
        try:
            raw = None
            if self.pgpool_live is not None and t.backends:
                raw = self.pgpool_live.snapshot(t, deadline)
            if raw is None:
                # no statement_timeout: Pgpool answers SHOW itself; the deadline cancels instead
                with self.connector.target("pgpool", t, None, deadline) as conn:
                    raw = query_pgpool_sql(conn, time.time())
        except TargetError as sql_error:
            if t.pcp is None:
                raise
            pcp = Pcp(t.endpoint.host, t.pcp, label)
            try:
                raw = query_pgpool_pcp(pcp, time.time(), self._remaining(deadline))
            except TargetError as pcp_error:
                raise TargetError(f"{sql_error}; PCP fallback: {pcp_error}") from None
        if t.watchdog and t.pcp is not None:
            wd = query_watchdog(Pcp(t.endpoint.host, t.pcp, label), self._remaining(deadline))
            raw = raw._replace(watchdog=wd)
        return shape_pgpool(
            raw,
            target=t.name,
            site=t.site,
            watchdog_enabled=t.watchdog,
            duration=time.monotonic() - start,
            listed=t.backends,
            addresses={
                (p.endpoint.host, str(p.endpoint.port)): n for n, p in self.config.postgres.items()
            },
        )

    def zabbix(self, t: ZabbixTarget, deadline: float) -> Json:
        from kyoten.agent.sources.zabbix import query_zabbix

        start = time.monotonic()
        with self.connector.target("zabbix", t, self.config.statement_timeout, deadline) as conn:
            raw = query_zabbix(conn, time.time())
        return shape_zabbix(raw, target=t.name, site=t.site, duration=time.monotonic() - start)

    def cross(self, deadline: float) -> Json:
        """Every target at once, in parallel; a target that fails or is late is reported."""
        from functools import partial  # only the cross key needs these

        start = time.monotonic()
        cfg = self.config
        jobs: dict[str, list[tuple[str, Callable[[], Json]]]] = {
            "pg": [(n, partial(self.postgres, t, deadline)) for n, t in cfg.postgres.items()],
            "pool": [(n, partial(self.pgpool, t, deadline)) for n, t in cfg.pgpool.items()],
            "zbx": [(n, partial(self.zabbix, t, deadline)) for n, t in cfg.zabbix.items()],
        }
        from concurrent.futures import ThreadPoolExecutor, wait  # only the cross key needs it

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kyoten-cross")
        pool = self._pool
        futures = {g: [(n, pool.submit(fn)) for n, fn in items] for g, items in jobs.items()}
        wait([f for items in futures.values() for _, f in items], timeout=self._remaining(deadline))
        outcomes: dict[str, list[Outcome]] = {}
        for group, items in futures.items():
            outcomes[group] = []
            for name, fut in items:
                where = self._where(group, name)
                if not fut.done():
                    fut.cancel()
                    outcomes[group].append(
                        Outcome(name, None, "no answer within the deadline", True, *where)
                    )
                elif (exc := fut.exception()) is not None:
                    msg = (
                        str(exc) if isinstance(exc, KyotenError) else f"{type(exc).__name__}: {exc}"
                    )
                    refused = isinstance(exc, ConnectError)  # down, not merely slow
                    outcomes[group].append(Outcome(name, None, msg, not refused, *where))
                else:
                    outcomes[group].append(Outcome(name, fut.result(), None, True, *where))
        return shape_cross(
            outcomes["pg"], outcomes["pool"], outcomes["zbx"], duration=time.monotonic() - start
        )

    def _where(self, group: str, name: str) -> tuple[str, str]:
        """(site, host:port) of a cross-site target, from kyoten.toml."""
        t: PgTarget | PgpoolTarget | ZabbixTarget
        if group == "pg":
            t = self.config.postgres[name]
        elif group == "pool":
            t = self.config.pgpool[name]
        else:
            t = self.config.zabbix[name]
        return t.site, t.endpoint.address()

    # ------------------------------------------------------------------ time
    @staticmethod
    def _remaining(deadline: float) -> float:
        return max(deadline - time.monotonic(), 0.05)
