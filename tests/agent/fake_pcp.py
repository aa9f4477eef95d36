"""Stands in for one Pgpool-II release's pcp_* client tools, answering from fixture files.

Run as ``python fake_pcp.py COMMAND ARGS...`` through a wrapper named like the real tool (see
``pgpool_fixtures.fake_pcp_bin``). What it imitates, from ``src/tools/pcp/pcp_frontend_client.c``
of the release branch (V4_1_STABLE ... V4_6_STABLE):

* the option letters each command accepts (``allowed_options``; pcp_node_info's ``-a`` only
  from 4.3, pcp_proc_info's in every release): any other option is a usage error, exit 1;
* a request Pgpool refuses after the connection is made (unknown node, watchdog not enabled)
  prints pcp's error on stderr and exits **0** (``goto DISCONNECT_AND_EXIT`` then
  ``return 0``);
* a command the release does not have is simply not installed (no wrapper is made).

Environment: ``FAKE_PCP_DIR`` (the release's fixture directory), ``FAKE_PCP_RELEASE``
(``4.1``, ``4.2``, ``4.3``, ``4.6``), ``FAKE_PCP_LOG`` (each call's argv is appended, one JSON
list a line), ``FAKE_PCP_FAIL`` (commands, comma-separated, that fail as when pcp_connect()
fails: the error on stderr, exit 1). Only ``-v`` output is stored (of pcp_proc_info:
``-a -v``): a call without them exits 2 so a test notices.
"""

from __future__ import annotations

import getopt
import json
import os
import sys
from pathlib import Path

# allowed_options of each command per release (pcp_frontend_client.c, AllAppTypes[])
OPTIONS = {
    "4.1": {
        "pcp_node_count": "h:p:U:wWvd",
        "pcp_node_info": "n:h:p:U:wWvd",
        "pcp_proc_count": "h:p:U:wWvd",
        "pcp_proc_info": "h:p:P:U:awWvd",
        "pcp_watchdog_info": "n:h:p:U:wWvd",
    },
    "4.2": {
        "pcp_node_count": "h:p:U:wWvd",
        "pcp_node_info": "n:h:p:U:wWvd",
        "pcp_health_check_stats": "n:h:p:U:wWvd",
        "pcp_proc_count": "h:p:U:wWvd",
        "pcp_proc_info": "h:p:P:U:awWvd",
        "pcp_watchdog_info": "n:h:p:U:wWvd",
    },
    "4.3": {
        "pcp_node_count": "h:p:U:wWvd",
        "pcp_node_info": "n:h:p:U:awWvd",
        "pcp_health_check_stats": "n:h:p:U:wWvd",
        "pcp_proc_count": "h:p:U:wWvd",
        "pcp_proc_info": "h:p:P:U:awWvd",
        "pcp_watchdog_info": "n:h:p:U:wWvd",
    },
}
OPTIONS["4.6"] = dict(OPTIONS["4.3"])  # V4_6_STABLE: the same letters for these commands
# pcp_worker.c's errdetail when use_watchdog is off (4.1/4.2 with their typo)
WATCHDOG_OFF = {"4.1": "watcdhog is not enabled", "4.2": "watcdhog is not enabled"}
WATCHDOG_OFF_DEFAULT = "watchdog is not enabled"


def refuse(message: str, detail: str) -> int:
    """What pcp prints when Pgpool answers with an error: stderr, and exit status 0."""
    sys.stderr.write(f"ERROR:  {message}\nDETAIL:  {detail}\n\n")
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    release = os.environ["FAKE_PCP_RELEASE"]
    fixtures = Path(os.environ["FAKE_PCP_DIR"])
    if log := os.environ.get("FAKE_PCP_LOG"):
        with open(log, "a") as fh:
            fh.write(json.dumps([command, *args]) + "\n")
    try:
        opts, rest = getopt.getopt(args, OPTIONS[release][command])
    except getopt.GetoptError as exc:
        sys.stderr.write(f"{command}: {exc.msg}\n")
        sys.stderr.write(f'Try "{command} --help" for more information.\n\n')
        return 1
    flags = dict(opts)
    if command in os.environ.get("FAKE_PCP_FAIL", "").split(","):
        sys.stderr.write('ERROR: authentication failed for user "pcpadmin"\n')
        sys.stderr.write("DETAIL: username and/or password does not match\n")
        return 1
    if not {"-h", "-p", "-U", "-w"} <= set(flags):
        sys.stderr.write("fake pcp: kyoten always passes -h -p -U -w\n")
        return 2
    node = flags.get("-n", rest[0] if rest else None)
    if command in ("pcp_node_info", "pcp_health_check_stats"):
        if node is None:
            sys.stderr.write(f"{command}: missing node-id\n")
            return 1
        if "-v" not in flags:
            sys.stderr.write("fake pcp: only -v output is stored\n")
            return 2
        path = fixtures / f"{command}.{node}.txt"
        if not path.exists():
            if command == "pcp_health_check_stats":
                return refuse("informing health check stats info failed", f"invalid node ID {node}")
            detail = "invalid node ID" if release in ("4.1", "4.2") else f"invalid node ID : {node}"
            return refuse("informing node info failed", detail)
    elif command == "pcp_proc_info":
        if not {"-a", "-v"} <= set(flags):
            sys.stderr.write("fake pcp: only -a -v output is stored\n")
            return 2
        path = fixtures / f"{command}.txt"
    elif command == "pcp_watchdog_info":
        path = fixtures / f"{command}.txt"
        if not path.exists():
            detail = WATCHDOG_OFF.get(release, WATCHDOG_OFF_DEFAULT)
            return refuse("PCP: informing watchdog info failed", detail)
    else:
        path = fixtures / f"{command}.txt"
    sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
