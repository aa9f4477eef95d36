"""``kyoten demo``: the whole two-site chain on one machine, on 127.0.0.1.

``up`` brings up, step by step with durations: PostgreSQL primary (site A) and streaming standby
(site B), one standalone Pgpool-II per site, the Zabbix database, Zabbix 6.0 server HA nodes for
both sites (each reaching the database through its own site's Pgpool, as in production), a
frontend per site (likewise), with kyoten's templates and the bridge media type imported and
hosts created, zabbix_agent2 running the kyoten loadable plugin, the alert-path canary (its
template, host and action, as ``kyoten import --canary`` sets them up), and the alert bridge
with mail to a local SMTP sink, Slack to a local fake of its Web API, and a PATLITE tower
emulator. ``fault NAME`` injects one failure, waits until the problem is in Zabbix and on the
tower, repairs it and waits for the recovery. ``down`` stops everything. ``up`` is idempotent:
it starts what is not running.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from kyoten.shell.lab import inbox
from kyoten.shell.lab.agent2 import ZABBIX_USER, Agent2, stop_agent_in
from kyoten.shell.lab.cluster import Cluster
from kyoten.shell.lab.config import ZabbixDb as ZabbixTarget
from kyoten.shell.lab.config import lab_config
from kyoten.shell.lab.faults import Faults, lead_pattern
from kyoten.shell.lab.pgpool import Pgpool
from kyoten.shell.lab.postgres import PgNode
from kyoten.shell.lab.procs import (
    LabError,
    make_dir,
    port_open,
    read_pid,
    run,
    spawn,
    stop_pid,
    wait_for,
    write_file,
)

if TYPE_CHECKING:
    from kyoten.shell.lab.zabbix import Zabbix60

DEFAULT_DIR = Path("/var/lib/kyoten-demo")
#: The decision table's faults (kyoten.shell.lab.faults, the integration tests' too) and the
#: HA failover; primary-stop is left out: the demo's Zabbix database lives on that primary.
FAULTS = (
    "primary-down",
    "standby-stop",
    "receiver-stop",
    "replay-paused",
    "two-primaries",
    "double-failover",
    "pgpool-drift",
    "children-exhausted",
    "zabbix-failover",
)
#: Faults only the bridge's alert-path canary can see: Zabbix itself cannot raise them.
BRIDGE_FAULTS = ("zabbix-down", "database-down", "alert-path-broken")
HOST_GROUP = "kyoten demo"
#: The action that sends every problem to the bridge (made by kyoten import's wiring).
ACTION = "kyoten: problems to the bridge"
#: Its name in demo labs built before 'kyoten import --config' wired the action: removed.
LEGACY_ACTION = "kyoten demo: all problems to the bridge"
#: The stock group of Admin, the demo's user with the kyoten media: it receives the canary.
NOC_GROUP = "Zabbix administrators"
#: The [zabbix.NAME] table that lab_config writes into the demo's kyoten.toml.
ZABBIX_TARGET = "zabbix"
#: The demo's NOC operator: a plain "User role" Zabbix user (read-write on the demo's hosts,
#: never an admin) whom the Slack user below acts as when pressing Acknowledge.
OPERATOR, OPERATOR_GROUP, OPERATOR_SLACK = "kyoten-noc", "kyoten demo operators", "U0KYOTENNOC"
CANARY_INTERVAL = 15
#: seconds an incident takes new members after its last message (the channels' group window)
GROUP_WINDOW = 60
#: short windows so that a fault shows within a minute (production defaults are minutes)
DEMO_MACROS = {
    "{$KYOTEN.INTERVAL}": "10s",
    "{$KYOTEN.NODATA.TIMEOUT}": "1m",
    "{$PG.RECEIVER.WINDOW}": "30s",
    "{$PG.STANDBY.MISSING.WINDOW}": "30s",
    "{$PG.REPL_LAG.WINDOW}": "1m",
    "{$PG.REPL_LAG.BYTES.MAX.WARN}": "1048576",  # replay-paused writes a few MB
    "{$PGPOOL.DRIFT.WINDOW}": "30s",
    "{$PGPOOL.CHILDREN.RESERVED}": "1",  # the lab's Pgpools: reserved_connections = 1
    "{$KYOTEN.CHANGE.HOLD}": "2m",
}


@dataclass(frozen=True)
class Ports:
    """Fixed loopback ports, so the URLs the demo prints stay the same between runs."""

    pg_a: int = 25432
    pg_b: int = 25433
    pool_a: int = 29999
    pcp_a: int = 29898
    pool_b: int = 29998
    pcp_b: int = 29897
    zbx_a: int = 20051
    zbx_b: int = 20052
    web: int = 28080
    web_b: int = 28081  # site B's frontend, through pool-b
    agent: int = 20050
    bridge: int = 28089
    smtp: int = 28025
    slack: int = 28091
    tower: int = 20000
    tower_web: int = 28092


class Progress:
    """Numbered steps with durations; a failing step is named, with its error."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        print(f"[{self.n:2}/{self.total}] {title} ...", end="", flush=True)
        start = time.monotonic()
        try:
            yield
        except Exception as exc:
            print(" FAILED", flush=True)
            raise LabError(f"step {self.n} ({title}) failed: {exc}") from exc
        print(f" {time.monotonic() - start:.1f} s", flush=True)


class Demo:
    """Every component of the demo, rebuilt from the directory and the fixed ports."""

    def __init__(self, root: Path, ports: Ports | None = None) -> None:
        p = ports or Ports()
        self.root, self.p = root, p
        self.primary = PgNode("site-a", root / "pg" / "site-a", p.pg_a)
        self.standby = PgNode("site-b", root / "pg" / "site-b", p.pg_b)
        nodes = [self.primary, self.standby]
        # each Zabbix server keeps ~25 sessions: a Pgpool with too few children makes it hang
        self.pool_a = Pgpool(
            "pool-a",
            root / "pgpool-a",
            p.pool_a,
            p.pcp_a,
            nodes,
            num_init_children=64,
            site="site-a",
        )
        self.pool_b = Pgpool(
            "pool-b",
            root / "pgpool-b",
            p.pool_b,
            p.pcp_b,
            nodes,
            num_init_children=64,
            site="site-b",
        )
        self.cluster = Cluster(self.primary, self.standby, self.pool_a, self.pool_b)
        self.run_dir = root / "run"
        self.agent = Agent2(root / "agent2", port=p.agent, hostname="kyoten-demo", timeout=10)
        self.web_url = f"http://127.0.0.1:{p.web}"
        self.web_url_b = f"http://127.0.0.1:{p.web_b}"
        #: what site A's frontend answered when the last problems() found it cut from its
        #: database ("" if it could read it), and where the problems came from instead
        self.frontend_error = self.problems_from = ""

    # ------------------------------------------------------------------ small helpers
    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def daemon(
        self,
        name: str,
        argv: list[str],
        port: int,
        user: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start a long-running helper once; its pid goes to run/NAME.pid, output to run/."""
        if read_pid(self.pidfile(name)) is not None and port_open(port):
            return
        make_dir(self.run_dir, "root", 0o755)
        proc = spawn(argv, user=user, log=self.run_dir / f"{name}.log", env=env)
        self.pidfile(name).write_text(f"{proc.pid}\n")
        try:
            wait_for(lambda: port_open(port), f"{name} on 127.0.0.1:{port}", timeout=60, proc=proc)
        except LabError as exc:
            tail = (self.run_dir / f"{name}.log").read_text(errors="replace")[-1500:]
            raise LabError(f"{exc}; its log:\n{tail}") from exc

    def stop_daemon(self, name: str, group: bool = False) -> None:
        stop_pid(read_pid(self.pidfile(name)), name, group=group)
        self.pidfile(name).unlink(missing_ok=True)

    @staticmethod
    def script(name: str) -> str:
        """A console script of this installation (kyoten, kyoten-agent2-plugin)."""
        return str(Path(sys.executable).with_name(name))

    @property
    def config_path(self) -> Path:
        return self.root / "kyoten" / "kyoten.toml"

    def secret(self, name: str) -> str:
        """A random secret kept in the demo directory (the bridge token)."""
        path = self.root / "secrets" / name
        if not path.exists():
            make_dir(path.parent, "root", 0o700)
            write_file(path, secrets.token_urlsafe(24) + "\n", "root", 0o600)
        return path.read_text().strip()

    def zabbix_db_view(self, pool: Pgpool) -> Any:
        """The Zabbix database as reached through one site's Pgpool (what its server uses)."""
        from kyoten.shell.lab.zabbix import ZabbixDb

        return ZabbixDb(PgNode(pool.name, pool.workdir, pool.port))

    def api(self) -> Any:
        from kyoten.shell.lab.zabbix import login

        return login(self.p.web)

    def roles(self) -> tuple[PgNode, PgNode]:
        """(primary, standby) as they are now: faults may have swapped the sites."""
        a_primary = (
            self.primary.running() and self.primary.value("SELECT pg_is_in_recovery()") is False
        )
        return (self.primary, self.standby) if a_primary else (self.standby, self.primary)

    # ------------------------------------------------------------------ up
    def up(self) -> None:
        total = 10
        steps = Progress(total)
        print(f"kyoten demo: bringing the lab up under {self.root} (all on 127.0.0.1)")
        make_dir(self.root, "root", 0o755)
        with steps.step("PostgreSQL 15: site-a primary, site-b streaming standby"):
            self.up_postgres()
        with steps.step("Pgpool-II 4.3: one standalone instance per site; repair what faults left"):
            for pool in (self.pool_a, self.pool_b):
                pool.start()
            # a split brain, a stopped node, held-down backends, stuck children: calm again
            self.lab_faults().heal()
        with steps.step("Zabbix database (schema, images, data)"):
            from kyoten.shell.lab.zabbix import DEBIAN_SQL, ZabbixDb, schema_files

            ZabbixDb(self.roles()[0]).create(schema_files(DEBIAN_SQL))
        with steps.step(
            "Zabbix 6.0 HA: node site-a (via pool-a), node site-b (via pool-b), frontend"
        ):
            self.up_zabbix()
        with steps.step("kyoten.toml and zabbix_agent2 with the kyoten plugin"):
            self.up_agent()
        with steps.step("Templates and the bridge media type (kyoten import)"):
            self.import_templates()
        # before the bridge, so that the canary host and action exist when it sends a token
        with steps.step("Hosts, macros, media, the action and the alert-path canary (Zabbix API)"):
            self.configure_zabbix()
        with steps.step("Tower emulator, SMTP sink, Slack fake, alert bridge"):
            self.up_bridge()
        with steps.step("First values from the agent reach Zabbix"):
            self.revive_zabbix()
        with steps.step("NOC view: topology map and the kyoten NOC dashboard, Admin's home page"):
            self.noc_view()
        self.print_summary()

    def up_postgres(self) -> None:
        primary, standby = self.primary, self.standby
        if not (primary.datadir / "PG_VERSION").exists():
            primary.init_primary()
        primary.start()
        if not (standby.datadir / "PG_VERSION").exists():
            standby.init_standby(primary, slot="site_b")
        standby.start()
        current_primary, current_standby = self.roles()
        if (
            current_standby.value("SELECT pg_is_in_recovery()") is True
            and current_standby.primary_conninfo() == ""
        ):
            self.connect_standby(current_standby, current_primary)

    def connect_standby(self, standby: PgNode, primary: PgNode) -> None:
        from kyoten.shell.lab.postgres import REPL_PASSWORD, REPL_USER

        standby.set_primary_conninfo(
            f"host={primary.host} port={primary.port} user={REPL_USER} password={REPL_PASSWORD} "
            f"application_name={standby.name}"
        )

    def heal_pools(self) -> None:
        """Re-attach backends a Pgpool holds down while PostgreSQL answers (after faults)."""
        for pool in (self.pool_a, self.pool_b):
            for node_id, status in enumerate(pool.node_status()):
                node = pool.backends[node_id]
                if status in ("down", "quarantine") and node.running():
                    run(
                        [
                            "pcp_attach_node",
                            "-h",
                            pool.host,
                            "-p",
                            str(pool.pcp_port),
                            "-U",
                            "pcpadmin",
                            "-w",
                            "-n",
                            str(node_id),
                        ],
                        env={"PCPPASSFILE": str(self.pcppass())},
                        timeout=30,
                    )

    def pcppass(self) -> Path:
        path = self.root / "secrets" / "pcppass"
        make_dir(path.parent, "root", 0o700)
        return write_file(
            path, self.pool_a.pcppass_line() + self.pool_b.pcppass_line(), "root", 0o600
        )

    def lab_faults(self) -> Faults:
        """The decision table's faults and the repair, on this lab's nodes and Pgpools."""
        return Faults([self.primary, self.standby], [self.pool_a, self.pool_b], self.pcppass())

    def zabbix_nodes(self) -> dict[str, Zabbix60]:
        from kyoten.shell.lab.zabbix import Zabbix60

        return {
            "site-a": Zabbix60(
                self.root / "zabbix-site-a",
                self.zabbix_db_view(self.pool_a),
                self.p.zbx_a,
                self.p.web,
                ha_node_name="site-a",
            ),
            "site-b": Zabbix60(
                self.root / "zabbix-site-b",
                self.zabbix_db_view(self.pool_b),
                self.p.zbx_b,
                self.p.web,
                ha_node_name="site-b",
            ),
        }

    def start_zabbix_node(self, node: Zabbix60) -> None:
        """Start one HA node; only the active node listens, so wait for its ha_node row."""
        node.write_config()
        if read_pid(node.workdir / "zabbix_server.pid") is not None:
            return
        # A node that went away without saying so (its database link was cut) stays
        # "standby" in ha_node until the failover delay passes, and Zabbix refuses to start
        # a node of the same name until then ("found standby duplicate"): try again.
        end = time.monotonic() + 120
        while True:
            since = int(time.time())
            log_size = node.log.stat().st_size if node.log.exists() else 0
            run(["zabbix_server", "-c", str(node.conf)], timeout=30)
            try:
                wait_for(
                    lambda since=since: self.ha_status(node.ha_node_name, since) in (0, 3),
                    f"Zabbix HA node {node.ha_node_name} to register",
                    timeout=30,
                )
                return
            except LabError:
                with open(node.log, errors="replace") as fh:
                    fh.seek(log_size)
                    duplicate = "duplicate" in fh.read()
                if not duplicate or time.monotonic() > end:
                    raise
                time.sleep(5)

    def ha_status(self, name: str, since: int = 0) -> int | None:
        primary = self.roles()[0]
        rows = primary.sql(
            "SELECT status FROM ha_node WHERE name = %s AND lastaccess >= %s",
            (name, since),
            dbname="zabbix",
        )
        return int(rows[0][0]) if rows else None

    def up_zabbix(self) -> None:
        nodes = self.zabbix_nodes()
        for node in nodes.values():
            self.start_zabbix_node(node)
        active = next(n for n in nodes.values() if self.ha_status(n.ha_node_name) == 3)
        with contextlib.suppress(LabError):  # 6.0 accepts runtime commands on the active node
            run(
                ["zabbix_server", "-c", str(active.conf), "-R", "ha_set_failover_delay=10s"],
                timeout=30,
            )
        self.start_frontend()

    def start_frontend(self) -> None:
        """A frontend per site, each reading the database through its site's Pgpool like
        the server: site A's on the demo's address, site B's beside it (what the NOC still
        sees when site A's Pgpool locks its frontend out)."""
        from kyoten.shell.lab.zabbix import frontend_conf, serve_frontend, wait_api

        for name, folder, pool, port in (
            ("frontend", "web", self.pool_a, self.p.web),
            ("frontend-b", "web-b", self.pool_b, self.p.web_b),
        ):
            web = make_dir(self.root / folder, "root", 0o755)
            title = "kyoten demo" if pool is self.pool_a else "kyoten demo (site B)"
            write_file(
                web / "zabbix.conf.php",
                frontend_conf(self.zabbix_db_view(pool), None, title),
                "root",
                0o644,
            )
            if read_pid(self.pidfile(name)) is None or not port_open(port):
                make_dir(self.run_dir, "root", 0o755)
                proc = serve_frontend(web, port, self.run_dir / f"{name}.log")
                self.pidfile(name).write_text(f"{proc.pid}\n")
        for port in (self.p.web, self.p.web_b):
            wait_api(port)

    def up_agent(self) -> None:
        from kyoten.agent.plugin.config import render_plugin_conf

        text = lab_config(
            self.primary,
            [self.standby],
            [self.pool_a, self.pool_b],
            ZabbixTarget("127.0.0.1", self.p.pool_a, "zabbix", "zabbix", "zabbix"),
        )
        # a standby promoted by a fault must see its old primary missing too
        text = text.replace(
            "[postgres.site-b]", '[postgres.site-b]\nexpected_standbys = ["site-a"]', 1
        )
        make_dir(self.config_path.parent, ZABBIX_USER, 0o755)
        write_file(self.config_path, text, ZABBIX_USER, 0o640)
        self.agent.extra = render_plugin_conf(
            self.script("kyoten-agent2-plugin"), str(self.config_path)
        ).splitlines()
        if read_pid(self.agent.pidfile) is None:
            self.agent.start()

    def import_templates(self) -> None:
        pw = self.root / "secrets" / "zabbix-admin"
        make_dir(pw.parent, "root", 0o700)
        write_file(pw, "zabbix\n", "root", 0o600)
        run(
            [
                self.script("kyoten"),
                "import",
                "--url",
                self.web_url,
                "--user",
                "Admin",
                "--password-file",
                str(pw),
            ],
            timeout=300,
        )
        from kyoten.shell.lab.zabbix import ZabbixDb

        ZabbixDb(self.roles()[0]).analyze()  # fresh template rows: see ZabbixDb.analyze

    def bridge_config(self) -> str:
        from kyoten.alerting.canary_template import HOST as CANARY_HOST
        from kyoten.shell.lab.zabbix import api_url

        p = self.p
        token_file = self.root / "secrets" / "bridge-token"
        self.secret("bridge-token")
        app_token = self.root / "secrets" / "slack-app-token"
        if not app_token.exists():  # the fake's Socket Mode takes any app-level token
            write_file(app_token, f"xapp-1-kyoten-demo-{secrets.token_hex(8)}\n", "root", 0o600)
        # one incident, one conversation: a fault's problems within 10 s become one thread; a
        # fault a minute after the last message of the previous one starts a thread of its own
        group = {"by": ["host_group"], "wait": 10, "window": GROUP_WINDOW}
        config = {
            "listen": {"host": "127.0.0.1", "port": p.bridge},
            "token_file": str(token_file),
            "node": "site-a",
            "outbox": {"backend": "sqlite", "path": str(self.root / "bridge" / "outbox.db")},
            "channels": {
                "noc-mail": {
                    "type": "mail",
                    "host": "127.0.0.1",
                    "port": p.smtp,
                    "security": "none",
                    "from": "kyoten-demo@example.org",
                    "to": ["noc@example.org"],
                    "group": group,
                },
                "noc-slack": {
                    "type": "slack",
                    "token": "xoxb-kyoten-demo",
                    "channel": "#noc",
                    "base_url": f"http://127.0.0.1:{p.slack}/api/",
                    "buttons": True,
                    "group": group,
                },
                "noc-tower": {
                    "type": "tower",
                    "url": f"pns://127.0.0.1:{p.tower}?model=nh",
                    "reassert": 30,
                },
            },
            "routes": [{"channels": ["noc-mail", "noc-slack", "noc-tower"]}],
            "zabbix_url": self.web_url,
            # problems whose recovery never comes (a split brain's lost events) are closed
            "reconcile": {
                "token_file": str(self.root / "secrets" / "operator-token"),
                "interval": 60,
                "grace": 60,
            },
            # Acknowledge from Slack (Socket Mode of the fake), as the NOC operator
            "slack_actions": {
                "app_token_file": str(app_token),
                "slack_channel": "noc-slack",
                "api_url": api_url(p.web),
                "users": {
                    OPERATOR_SLACK: {
                        "zabbix_user": OPERATOR,
                        "token_file": str(self.root / "secrets" / "operator-token"),
                    }
                },
            },
            # the alert-path canary: tokens to every HA node (only the active one listens)
            "canary": {
                "servers": [f"127.0.0.1:{node.port}" for node in self.zabbix_nodes().values()],
                "host": CANARY_HOST,
                "interval": CANARY_INTERVAL,
                "kyoten_config": str(self.config_path),
                "zabbix_target": ZABBIX_TARGET,
                "api_url": api_url(p.web),
            },
        }
        return json.dumps(config, indent=2)  # JSON is YAML

    def up_bridge(self) -> None:
        p = self.p
        make_dir(self.root / "bridge", "root", 0o700)
        maildir = self.root / "mail"
        make_dir(maildir, "root", 0o755)
        self.daemon(
            "tower",
            [
                self.script("kyoten"),
                "tower",
                "emulate",
                "--protocol",
                "pns-nh",
                "--listen",
                f"127.0.0.1:{p.tower}",
                "--web",
                f"127.0.0.1:{p.tower_web}",
            ],
            p.tower,
        )
        self.daemon(
            "smtp",
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{p.smtp}",
                "-c",
                "aiosmtpd.handlers.Mailbox",
                str(maildir / "Maildir"),
            ],
            p.smtp,
        )
        self.daemon(
            "slack",
            [
                sys.executable,
                "-m",
                "kyoten.alerting.devtools.slack_fake",
                "--listen",
                f"127.0.0.1:{p.slack}",
                "--record",
                str(self.root / "slack-calls.jsonl"),
            ],
            p.slack,
        )
        conf = write_file(self.root / "bridge" / "bridge.yaml", self.bridge_config(), "root", 0o600)
        self.daemon(
            "bridge", [self.script("kyoten"), "bridge", "serve", "--config", str(conf)], p.bridge
        )

    def topology(self) -> Any:
        """The demo's hosts, map and dashboard, planned from its kyoten.toml like any
        installation's (``kyoten import --config``), with the demo's short windows."""
        from kyoten.agent.config import load_config
        from kyoten.agent.export.topology import plan

        return plan(load_config(str(self.config_path)), macros=DEMO_MACROS)

    def wiring(self) -> Any:
        from kyoten.shell.zabbix_wiring import Wiring

        return Wiring(
            host_group=HOST_GROUP,
            agent=("127.0.0.1", self.p.agent),
            bridge_url=f"http://127.0.0.1:{self.p.bridge}/v1/events",
            bridge_token=self.secret("bridge-token"),
            usergroup=NOC_GROUP,
        )

    def configure_zabbix(self) -> None:
        """What ``kyoten import --config`` wires, through the same functions (hosts, the
        bridge's global macros, the action to the NOC group), plus the demo's own user: Admin
        gets the kyoten media, and the media type is enabled."""
        from kyoten.alerting.mediatype import NAME as MEDIA_TYPE
        from kyoten.shell.zabbix_import import setup_canary
        from kyoten.shell.zabbix_wiring import (
            reconcile_action,
            reconcile_global_macros,
            reconcile_hosts,
        )

        api = self.api()
        wiring = self.wiring()
        reconcile_hosts(api, self.topology(), wiring, apply=True)
        reconcile_global_macros(api, wiring.bridge_url, wiring.bridge_token, apply=True)
        mt = api.mediatype.get(filter={"name": MEDIA_TYPE}, output=["mediatypeid"])[0]
        api.mediatype.update(mediatypeid=mt["mediatypeid"], status=0)
        admin = api.user.get(filter={"username": "Admin"}, output=["userid"])[0]
        api.user.update(
            userid=admin["userid"],
            medias=[
                {
                    "mediatypeid": mt["mediatypeid"],
                    "sendto": "noc",
                    "active": 0,
                    "severity": 63,
                    "period": "1-7,00:00-24:00",
                }
            ],
        )
        for legacy in api.action.get(filter={"name": LEGACY_ACTION}, output=["actionid"]):
            api.action.delete(legacy["actionid"])
        reconcile_action(api, NOC_GROUP, apply=True)
        setup_canary(api, NOC_GROUP)
        self.operator(api)
        self.reload_zabbix()

    def operator(self, api: Any) -> None:
        """The NOC operator Slack clicks act as: a User-role user, read-write on the demo's
        host group, with an API token in ``secrets/operator-token`` (made once)."""
        token_file = self.root / "secrets" / "operator-token"
        from kyoten.shell.lab.zabbix import api_token, operator

        (group,) = api.hostgroup.get(filter={"name": HOST_GROUP}, output=["groupid"])
        userid = operator(api, OPERATOR, OPERATOR_GROUP, group["groupid"])
        name = "kyoten demo slack"
        if token_file.exists() and api.token.get(
            filter={"name": name, "userid": userid}, output=["tokenid"]
        ):
            return
        token = api_token(api, userid, name)
        make_dir(token_file.parent, "root", 0o700)
        write_file(token_file, token + "\n", "root", 0o600)

    def noc_view(self) -> None:
        """The topology map and the NOC dashboard, once discovery has created the triggers
        the map's links show (a minute at most at the demo's interval), and the dashboard as
        the page Admin lands on."""
        from kyoten.agent.export import topology
        from kyoten.shell.zabbix_wiring import (
            discovered_triggers,
            home_page,
            reconcile_dashboard,
            reconcile_map,
        )

        api, topo = self.api(), self.topology()
        wanted = topology.map_triggers(topology.map_export(topo))
        with contextlib.suppress(LabError):  # what is still missing is imported by a later up
            wait_for(
                lambda: not discovered_triggers(api, wanted),
                "the triggers the map's links show to be discovered",
                timeout=120,
                interval=2,
            )
        for line in reconcile_map(api, topo, "6.0", apply=True):
            if "not in Zabbix yet" in line:
                print(f"\n  {line}", end="")
        reconcile_dashboard(api, topo, "6.0", apply=True)
        home_page(api, "Admin", apply=True)

    def reload_zabbix(self) -> None:
        for node in self.zabbix_nodes().values():
            if self.ha_status(node.ha_node_name) == 3:
                run(
                    ["zabbix_server", "-c", str(node.conf), "-R", "config_cache_reload"], timeout=30
                )

    def revive_zabbix(self) -> None:
        """After a repair: a server that the fault left hung (its database split or cut under
        it, as a double failover does to the Zabbix database behind the Pgpools) stores
        nothing until restarted — what the canary reports as the alert path broken."""
        try:
            self.wait_first_values(timeout=60)
        except LabError:
            print("  Zabbix stores no value: restarting its server nodes (hung by the fault)")
            self.restart_zabbix()
            self.wait_first_values()

    def restart_zabbix(self) -> None:
        """Stop both HA nodes (SIGKILL after 20 s) and start them again."""
        for node in self.zabbix_nodes().values():
            with contextlib.suppress(LabError):  # "ignored signal …; killed" is what we want
                stop_pid(read_pid(node.workdir / "zabbix_server.pid"), "zabbix_server", timeout=20)
        self.up_zabbix()

    def wait_first_values(self, timeout: float = 120) -> None:
        """A value collected after this step started: the agent → server chain works now."""
        api, since = self.api(), int(time.time())

        def arrived() -> bool:
            items = api.item.get(
                filter={"key_": "kyoten.pg.duration"}, host="site-a", output=["lastclock"]
            )
            return any(int(i["lastclock"]) >= since for i in items)

        wait_for(arrived, "a fresh kyoten.pg value of site-a in Zabbix", timeout, interval=1)

    def print_summary(self) -> None:
        p = self.p
        print(f"""
kyoten demo is up.
  Zabbix frontend   {self.web_url}/  (Admin / zabbix): the kyoten NOC dashboard, the map
                    "kyoten topology"; hosts in group "{HOST_GROUP}"
                    site B's, through pool-b: {self.web_url_b}/
  PATLITE tower     http://127.0.0.1:{p.tower_web}/  (emulated PNS tower at 127.0.0.1:{p.tower});
                    or: kyoten tower status 'pns://127.0.0.1:{p.tower}?model=nh'
  Mailbox           {self.root / "mail" / "Maildir"}  (SMTP sink on 127.0.0.1:{p.smtp})
  Slack (fake)      {self.root / "slack-calls.jsonl"}
  Bridge            http://127.0.0.1:{p.bridge}/health
  Collector         {self.script("kyoten")} get --config {self.config_path} 'kyoten.cross'
Inject a failure:   kyoten demo fault {"|".join(FAULTS + BRIDGE_FAULTS)}
Stop:               kyoten demo down""")

    # ------------------------------------------------------------------ status / down
    def status(self) -> None:
        rows = [
            ("postgres site-a", self.primary.running()),
            ("postgres site-b", self.standby.running()),
            ("pgpool pool-a", read_pid(self.pool_a.pidfile) is not None),
            ("pgpool pool-b", read_pid(self.pool_b.pidfile) is not None),
            ("zabbix_agent2", read_pid(self.agent.pidfile) is not None),
        ]
        for name, node in self.zabbix_nodes().items():
            rows.append(
                (f"zabbix_server {name}", read_pid(node.workdir / "zabbix_server.pid") is not None)
            )
        for name in ("frontend", "frontend-b", "tower", "smtp", "slack", "bridge"):
            rows.append((name, read_pid(self.pidfile(name)) is not None))
        for name, up in rows:
            print(f"  {name:22} {'up' if up else 'down'}")
        with contextlib.suppress(Exception):
            for name in self.problems():
                print(f"  problem: {name}")
            if self.frontend_error:
                print(f"  frontend: cannot reach its database ({self.frontend_error})")
                print(f"  (the problems above were read from {self.problems_from})")

    def down(self, purge: bool) -> None:
        for name in ("bridge", "slack", "smtp", "tower"):
            self.stop_daemon(name)
        self.stop_daemon("frontend", group=True)
        self.stop_daemon("frontend-b", group=True)
        stop_agent_in(self.agent.root)
        for node in self.zabbix_nodes().values():
            stop_pid(read_pid(node.workdir / "zabbix_server.pid"), "zabbix_server", timeout=60)
        self.cluster.stop()
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)
        print("kyoten demo: stopped" + (f" and {self.root} removed" if purge else ""))

    # ------------------------------------------------------------------ faults
    def tower_state(self) -> str:
        out = subprocess.run(
            [self.script("kyoten"), "tower", "status", f"pns://127.0.0.1:{self.p.tower}?model=nh"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return (out.stdout or out.stderr).strip()

    def problems(self, min_severity: int = 0) -> list[str]:
        """Open problems' names (severity 2 = Warning and above, 1 = Information).

        From site A's frontend API; when it cannot reach its database (it reads it through
        pool-a, as site A's server does, so children-exhausted locks it out while the
        server's kept connections still raise and deliver problems), from site B's frontend
        (through pool-b), and failing that from the Zabbix database itself, past the
        Pgpools. :attr:`frontend_error` then says what site A's frontend answered.
        """
        from kyoten.shell.lab.zabbix import login
        from zabbix_utils.exceptions import APIRequestError

        self.frontend_error = ""
        for port in (self.p.web, self.p.web_b):
            try:
                found = login(port).problem.get(
                    output=["name"], recent=False, severities=list(range(min_severity, 6))
                )
            except APIRequestError as exc:
                if "database" not in str(exc).lower():
                    raise
                self.frontend_error = self.frontend_error or " ".join(str(exc).split())
                continue
            via = f"site B's frontend (through {self.pool_b.name})"
            self.problems_from = via if self.frontend_error else ""
            return [p["name"] for p in found]
        self.problems_from = "the Zabbix database on PostgreSQL, past the Pgpools"
        return self.problems_in_database(min_severity)

    def problems_in_database(self, min_severity: int = 0) -> list[str]:
        """What problem.get would list, read from the Zabbix database on the primary (or, if
        it does not answer, the standby): open trigger problems, oldest first."""
        primary, standby = self.roles()
        query = (
            "SELECT name FROM problem WHERE source = 0 AND object = 0 AND r_eventid IS NULL "
            "AND severity >= %s ORDER BY eventid"
        )
        try:
            rows = primary.sql(query, (min_severity,), dbname="zabbix")
        except psycopg.Error:
            rows = standby.sql(query, (min_severity,), dbname="zabbix")
        return [str(r[0]) for r in rows]

    def wait_problem(self, fragment: str, present: bool, timeout: float) -> float:
        start = time.monotonic()
        what = f"a problem with {fragment!r} to {'appear' if present else 'resolve'} in Zabbix"
        wait_for(
            lambda: any(re.search(fragment, n) for n in self.problems()) == present,
            what,
            timeout=timeout,
            interval=2,
        )
        return time.monotonic() - start

    def deliveries(self) -> str:
        """What the bridge has delivered so far: mails in the sink, calls to the Slack fake."""
        mails = inbox.read_mails(self.root / "mail" / "Maildir")
        calls = inbox.read_slack(self.root / "slack-calls.jsonl")
        return f"{len(mails)} mail(s) in the sink, {len(calls)} Slack API call(s)"

    def notifications(self, since: float) -> inbox.Tally:
        """What people received since ``since`` (epoch seconds), per conversation."""
        return inbox.tally(
            inbox.read_mails(self.root / "mail" / "Maildir"),
            inbox.read_slack(self.root / "slack-calls.jsonl"),
            since,
        )

    # ------------------------------------------------------------ faults the bridge alone sees
    def canary(self) -> dict[str, Any]:
        """The bridge's ``/health`` ``canary`` part ({} when the bridge does not answer)."""
        url = f"http://127.0.0.1:{self.p.bridge}/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 503: a channel is failing; the body still says
            body = json.loads(exc.read() or b"{}")
        except (OSError, ValueError):
            return {}
        canary: dict[str, Any] = body.get("canary") or {}
        return canary

    def own_alerts(self, resolved: bool = False) -> tuple[int, int]:
        """(mails, Slack messages) that carry the bridge's own alert so far; with ``resolved``,
        the mails of its recovery only."""
        import email
        from email import policy

        texts = []
        for f in sorted((self.root / "mail" / "Maildir" / "new").glob("*")):
            msg = email.message_from_bytes(f.read_bytes(), policy=policy.default)
            body = msg.get_body(("plain",))
            texts.append(f"{msg['Subject']}\n{body.get_content() if body else ''}")
        mails = sum(
            1 for t in texts if "alert path broken" in t and (not resolved or "Resolved" in t)
        )
        calls = self.root / "slack-calls.jsonl"
        slack = sum(
            1
            for line in (calls.read_text().splitlines() if calls.exists() else ())
            if "alert path broken" in line
        )
        return mails, slack

    def bridge_fault_plan(self, name: str) -> tuple[Callable[[], None], Callable[[], None]]:
        """How to break (and repair) what only the canary sees: Zabbix itself."""
        if name == "zabbix-down":
            nodes = self.zabbix_nodes()

            def stop_all() -> None:
                for node in nodes.values():
                    pid = read_pid(node.workdir / "zabbix_server.pid")
                    if pid is not None:
                        stop_pid(pid, "zabbix_server")

            def start_all() -> None:
                for node in nodes.values():
                    self.start_zabbix_node(node)

            return stop_all, start_all
        if name == "database-down":
            pools = (self.pool_a, self.pool_b)

            def stop_pools() -> None:
                for pool in pools:
                    pool.stop()

            def start_pools() -> None:
                for pool in pools:
                    pool.start(discard_status=True)
                self.heal_pools()
                for node in self.zabbix_nodes().values():  # a node that gave up restarts
                    self.start_zabbix_node(node)

            return stop_pools, start_pools
        if name == "alert-path-broken":
            from kyoten.alerting.canary import ACTION as CANARY_ACTION

            def set_actions(status: int) -> None:
                api = self.api()
                for action in api.action.get(
                    filter={"name": [ACTION, CANARY_ACTION]}, output=["actionid"]
                ):
                    api.action.update(actionid=action["actionid"], status=status)

            return lambda: set_actions(1), lambda: set_actions(0)
        raise LabError(f"unknown fault {name!r}; choose one of {', '.join(BRIDGE_FAULTS)}")

    def bridge_fault(
        self, name: str, timeout: float, recover: bool, screenshots: Path | None = None
    ) -> None:
        """Break Zabbix's own alert path and show the bridge's own alert arrive, then leave."""
        inject, repair = self.bridge_fault_plan(name)
        if self.canary().get("state") != "ok":
            raise LabError(f"the alert path is not calm before the fault: {self.canary()}")
        mails0, slack0 = self.own_alerts()
        since = time.time()
        interval = float(self.canary()["interval_s"])
        print(f"kyoten demo fault {name}: injecting (canary every {interval:g} s)")
        start = time.monotonic()
        inject()
        wait_for(
            lambda: self.canary().get("state") == "broken",
            "the bridge to declare the alert path broken",
            timeout=timeout,
            interval=1,
        )
        took = time.monotonic() - start
        print(f"  alert path broken after {took:.0f} s ({took / interval:.1f} canary intervals):")
        print(f"    {self.canary().get('reason')}")
        wait_for(
            lambda: all(n > n0 for n, n0 in zip(self.own_alerts(), (mails0, slack0), strict=True)),
            "the bridge's own alert in the mailbox and in Slack",
            timeout=60,
            interval=1,
        )
        print(f"  own alert delivered after {time.monotonic() - start:.0f} s")
        print(f"  tower: {self.tower_state()}")
        print(f"  bridge: {self.deliveries()}")
        if screenshots is not None:  # an unreachable database: its error page is what shows
            try:
                self.screenshots(screenshots, name)
            except LabError as exc:
                print(f"  no screenshot: {exc}")
        if not recover:
            print("  left in place (--no-recover)")
            return
        print("  repairing")
        resolved0 = self.own_alerts(resolved=True)[0]
        start = time.monotonic()
        repair()
        wait_for(
            lambda: self.canary().get("state") == "ok",
            "canaries to come back through Zabbix",
            timeout=timeout,
            interval=1,
        )
        wait_for(
            lambda: self.own_alerts(resolved=True)[0] > resolved0,
            "the own alert's recovery in the mailbox",
            timeout=60,
            interval=1,
        )
        print(f"  alert path ok again after {time.monotonic() - start:.0f} s")
        time.sleep(3)  # the tower's state lane applies within a second or two
        print(f"  tower: {self.tower_state()}")
        print(f"  bridge: {self.deliveries()}")
        print(f"  notifications for this fault: {self.notifications(since)}")

    def fault(
        self, name: str, timeout: float, recover: bool, screenshots: Path | None = None
    ) -> None:
        inject, repair, fragment = self.fault_plan(name)
        before = set(self.problems())
        since = time.time()
        print(f"kyoten demo fault {name}: injecting")
        inject()
        took = self.wait_problem(fragment, True, timeout)
        print(f"  problem in Zabbix after {took:.0f} s; open problems now:")
        for problem in self.problems():
            print(f"    - {problem}")
        if self.frontend_error:
            print(
                f"  site A's frontend reads its database through {self.pool_a.name} and cannot "
                f"reach it ({self.frontend_error!r}): these were read from {self.problems_from}"
            )
        # the channels group a fault's events for 10 s before the first message
        with contextlib.suppress(LabError):
            wait_for(
                lambda: (n := self.notifications(since)).mails > 0 and n.slack_messages > 0,
                "the fault's first mail and Slack message",
                timeout=40,
                interval=1,
            )
        time.sleep(3)  # the tower's state lane applies within a second or two
        print(f"  tower: {self.tower_state()}")
        print(f"  bridge: {self.deliveries()}")
        so_far = self.notifications(since)
        print(f"  notifications so far: {so_far}")
        if screenshots is not None:
            self.screenshots(screenshots, name)
        if not recover:
            print("  left in place (--no-recover)")
            return
        print("  repairing")
        repair()
        start = time.monotonic()
        self.revive_zabbix()
        wait_for(
            # informational events (role or timeline changed) stay open until closed by hand
            lambda: not (set(self.problems(min_severity=2)) - before),
            "the problems of this fault to resolve in Zabbix",
            timeout=timeout,
            interval=2,
        )
        print(f"  resolved in Zabbix after {time.monotonic() - start:.0f} s")
        # the all-clear is grouped too (10 s): a fault that resolves at once is not over before
        with contextlib.suppress(LabError):
            wait_for(
                lambda: (
                    (n := self.notifications(since)).mails > so_far.mails
                    and n.slack_messages > so_far.slack_messages
                ),
                "the fault's all-clear by mail and in Slack",
                timeout=40,
                interval=1,
            )
        time.sleep(5)
        print(f"  tower: {self.tower_state()}")
        print(f"  bridge: {self.deliveries()}")
        print(f"  notifications for this fault: {self.notifications(since)}")

    def screenshots(self, folder: Path, tag: str) -> None:
        """The NOC dashboard (Admin's home page) and the topology map, as a wall screen shows
        them now, into ``folder`` as ``<tag>-dashboard.png`` and ``<tag>-map.png``.

        A frontend that cannot reach its database shows an error page instead of its login
        form, on both pages: that page is what a person sees, and it is what is saved. Then
        site B's frontend (through pool-b) is shot too, as ``<tag>-site-b-*.png``: what the
        NOC still sees when site A's Pgpool is exhausted.
        """
        if not self.screenshot_frontend(self.p.web, folder, tag):
            self.screenshot_frontend(self.p.web_b, folder, f"{tag}-site-b")

    def screenshot_frontend(self, port: int, folder: Path, tag: str) -> bool:
        """One frontend's dashboard and map; False if it showed its error page instead."""
        from kyoten.agent.export import topology
        from kyoten.shell.lab.browser import Browser, FrontendUnavailable
        from kyoten.shell.lab.zabbix import ADMIN_PASSWORD, ADMIN_USER, login

        url = f"http://127.0.0.1:{port}"
        b = Browser(url, "demo", ADMIN_USER, ADMIN_PASSWORD, login=False)
        try:
            try:
                b.login(ADMIN_USER, ADMIN_PASSWORD)
            except FrontendUnavailable as exc:
                shots = [b.shot(folder, f"{tag}-dashboard")]
                b.open("zabbix.php?action=map.view")
                shots.append(b.shot(folder, f"{tag}-map"))
                print(f"  screenshots: {', '.join(str(s) for s in shots)}")
                print(f"  the frontend at {url} shows its error page instead: {exc}")
                return False
            api = login(port)
            (found,) = api.map.get(filter={"name": topology.MAP_NAME}, output=["sysmapid"])
            time.sleep(6)  # the dashboard's widgets fetch their data after the page
            shots = [b.shot(folder, f"{tag}-dashboard")]
            errors = b.errors()
            b.driver.set_window_size(1600, 1000)
            b.open(f"zabbix.php?action=map.view&sysmapid={found['sysmapid']}")
            b.wait(lambda _: b.map_texts(), "the map to be drawn")
            time.sleep(2)
            shots.append(b.shot(folder, f"{tag}-map"))
            errors += b.errors()
        finally:
            b.quit()
        print(f"  screenshots: {', '.join(str(s) for s in shots)}")
        print(f"  errors on the pages: {errors}" if errors else "  no error on the pages")
        return True

    def ack(self, timeout: float) -> None:
        """Press *Acknowledge* in Slack as the NOC operator, on the newest message that still
        offers it, and show the acknowledgement arrive in Zabbix, the thread and the tower."""
        calls = inbox.read_slack(self.root / "slack-calls.jsonl")
        buttons = inbox.open_ack_buttons(calls)
        if not buttons:
            raise LabError("no Slack message offers Acknowledge: inject a fault with --no-recover")
        ts, value = buttons[0]
        ids = [v for v in value.split(",") if v]
        api = self.api()
        names = {e["eventid"]: e["name"] for e in api.event.get(eventids=ids, output=["name"])}
        print(f"kyoten demo ack: Slack user {OPERATOR_SLACK} presses Acknowledge on message {ts}")
        for eventid in ids:
            print(f"    - {names.get(eventid, eventid)}")
        print(f"  tower before: {self.tower_state()}")
        since = time.time()
        body = json.dumps({"user": OPERATOR_SLACK, "action_id": inbox.ACK_ACTION, "value": value})
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.p.slack}/_fake/click",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
        if not answer.get("acked"):
            raise LabError(f"the bridge did not take the click over Socket Mode: {answer}")

        def acknowledged() -> list[dict[str, Any]]:
            found = api.event.get(
                eventids=ids, output=["acknowledged"], select_acknowledges="extend"
            )
            return found if found and all(e["acknowledged"] == "1" for e in found) else []

        wait_for(acknowledged, "Zabbix to show the acknowledgement", timeout=timeout, interval=1)
        took = time.time() - since
        seen = collections.Counter(
            (e["acknowledges"][-1]["username"], e["acknowledges"][-1]["message"])
            for e in acknowledged()
        )
        for (user, message), n in seen.items():
            print(f"  {n} event(s) acknowledged in Zabbix by {user} after {took:.1f} s: "
                  f"{message!r}")  # fmt: skip

        def thread_reply() -> bool:
            return any(
                c.method == "chat.postMessage" and c.params.get("thread_ts") == ts
                and "cknowledged" in json.dumps(c.params)
                for c in inbox.read_slack(self.root / "slack-calls.jsonl") if c.at >= since
            )  # fmt: skip

        wait_for(thread_reply, "the acknowledgement in the Slack thread", timeout=timeout,
                 interval=1)  # fmt: skip
        print(f"  Slack thread {ts}: Zabbix's update event replied there")
        wait_for(
            lambda: "blink" not in self.tower_state() and "buzzer=1" not in self.tower_state(),
            "the tower to stop blinking and the buzzer",
            timeout=timeout,
            interval=1,
        )
        print(f"  tower after: {self.tower_state()}")

    def fault_plan(self, name: str) -> tuple[Callable[[], None], Callable[[], None], str]:
        """(inject, repair, the decision table's leading problem as a regular expression)."""
        if name == "zabbix-failover":
            nodes = self.zabbix_nodes()
            active = next(n for n in nodes.values() if self.ha_status(n.ha_node_name) == 3)

            def stop_active() -> None:
                stop_pid(read_pid(active.workdir / "zabbix_server.pid"), "zabbix_server")

            return (
                stop_active,
                lambda: self.start_zabbix_node(active),
                lead_pattern(name).pattern,
            )
        if name not in FAULTS:
            raise LabError(f"unknown fault {name!r}; choose one of {', '.join(FAULTS)}")
        fault = self.lab_faults().plan(name)
        return fault.inject, fault.repair, lead_pattern(name).pattern


def main(argv: list[str]) -> int:
    """``kyoten demo up|status|fault NAME|down``; argv[0] is ``demo``."""
    p = argparse.ArgumentParser(
        prog="kyoten demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"state (default {DEFAULT_DIR})")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="bring the lab up (idempotent)")
    sub.add_parser("status", help="what runs, and the open problems")
    fault = sub.add_parser("fault", help="inject a failure, show it arrive, then recover")
    fault.add_argument("name", choices=FAULTS + BRIDGE_FAULTS)
    fault.add_argument(
        "--timeout",
        type=float,
        default=240,
        help="seconds to wait for the problem, and again for the recovery",
    )
    fault.add_argument("--no-recover", action="store_true", help="leave the failure in place")
    fault.add_argument(
        "--screenshots",
        type=Path,
        metavar="DIR",
        help="while the fault is on: the NOC dashboard and the map, seen in headless Chromium",
    )
    shots = sub.add_parser("screenshots", help="the NOC dashboard and the map as they are now")
    shots.add_argument("folder", type=Path, metavar="DIR")
    ack = sub.add_parser(
        "ack", help="press Acknowledge in (fake) Slack as the NOC operator, on the newest alert"
    )
    ack.add_argument("--timeout", type=float, default=60, help="seconds to wait for each step")
    down = sub.add_parser("down", help="stop everything")
    down.add_argument("--purge", action="store_true", help="also delete the lab's data")
    args = p.parse_args(argv[1:])
    if os.geteuid() != 0:
        print(
            "kyoten demo: run as root (PostgreSQL, Pgpool-II and Zabbix run as their own users)",
            file=sys.stderr,
        )
        return 2
    demo = Demo(args.dir)
    try:
        if args.cmd == "up":
            demo.up()
        elif args.cmd == "status":
            demo.status()
        elif args.cmd == "fault" and args.name in BRIDGE_FAULTS:
            demo.bridge_fault(args.name, args.timeout, not args.no_recover, args.screenshots)
        elif args.cmd == "fault":
            demo.fault(args.name, args.timeout, not args.no_recover, args.screenshots)
        elif args.cmd == "screenshots":
            demo.screenshots(args.folder, "now")
        elif args.cmd == "ack":
            demo.ack(args.timeout)
        else:
            demo.down(args.purge)
    except LabError as exc:
        print(f"kyoten demo: {exc}", file=sys.stderr)
        return 1
    return 0
