"""Zabbix server native HA (6.0+), read from the ``ha_node`` table of the Zabbix database."""

from __future__ import annotations

from kyoten.agent.catalogue.common import (
    CHANGE_HOLD,
    NODATA,
    SITE_FIELD,
    TARGET_FIELD,
    duration,
)
from kyoten.agent.catalogue.model import (
    Discovery,
    Family,
    Macro,
    Metric,
    Param,
    Severity,
    Trigger,
    ValueMap,
    ValueType,
)

A = "Zabbix HA"
TARGET = Macro(
    "{$KYOTEN.ZBX.TARGET}", "zabbix", "Name of the Zabbix database target in kyoten.toml."
)
LASTACCESS = Macro(
    "{$ZBX.HA.LASTACCESS.MAX.WARN}",
    "60",
    "Seconds a running node may go without updating ha_node.lastaccess (nodes "
    "update it every 5 s).",
)

REMOVED = "4"
"""The status a node's item reads once its row has left ha_node (zabbix_server -R
ha_remove_node, or the old name of a renamed node): set by the template, never stored by Zabbix
(whose own codes are 0-3). Its triggers resolve on it, and the change event says 'Removed'."""
NODE_STATUS = ValueMap(
    "kyoten Zabbix HA node status",
    (
        ("0", "Standby"),
        ("1", "Stopped"),
        ("2", "Unavailable"),
        ("3", "Active"),
        (REMOVED, "Removed"),
    ),
    # ha_node.status is already the code; these are the Zabbix server's names for them
    words=(("standby", "0"), ("stopped", "1"), ("unavailable", "2"), ("active", "3")),
)

NODES = Discovery(
    "nodes",
    "HA node discovery",
    "kyoten.zabbix.ha.nodes",
    "Zabbix server HA nodes registered in ha_node. A node that leaves it (ha_remove_node, "
    "or a rename) stays until the rule's lifetime deletes it, with the status Removed: every "
    "trigger of the node resolves on it.",
    # the name identifies a node (unique in ha_node): kyoten.toml's sites know it, so the map
    # can name a node's own items, and its tag reads the name, not the generated ha_nodeid
    (("{#NODE.NAME}", "name"), ("{#NODE.ID}", "id")),
    metrics=(
        Metric("id", "HA node [{#NODE.NAME}]: Id", ValueType.CHAR, "ha_nodeid.", item=False),
        Metric("name", "HA node [{#NODE.NAME}]: Name", ValueType.CHAR, "HANodeName.", item=False),
        Metric(
            "address",
            "HA node [{#NODE.NAME}]: Address",
            ValueType.CHAR,
            "NodeAddress:port.",
            heartbeat="1d",
        ),
        Metric(
            "status",
            "HA node [{#NODE.NAME}]: Status",
            ValueType.UNSIGNED,
            f"0 standby, 1 stopped, 2 unavailable, 3 active; {REMOVED} removed (set by the "
            "template once the node's row has left ha_node).",
            valuemap=NODE_STATUS.name,
            heartbeat=CHANGE_HOLD.name,
            missing=REMOVED,
            triggers=(
                Trigger(
                    "zbx.node_unavailable",
                    "Zabbix HA node [{#NODE.NAME}] is unavailable",
                    "last(ITEM(status))=2",
                    Severity.AVERAGE,
                    "The node stopped updating ha_node: it cannot take over if the active node "
                    "fails. Fix: start its zabbix_server (its log says why it stopped) and check "
                    "that it reaches the database through its site's Pgpool. Resolves when it "
                    "runs again, or when it is removed from the cluster (ha_remove_node).",
                ),
                Trigger(
                    "zbx.node_changed",
                    "Zabbix HA node [{#NODE.NAME}] changed state",
                    "last(ITEM(status),#1)<>last(ITEM(status),#2)",
                    Severity.INFO,
                    "The node changed state (failover, restart or stop, or Removed: its row "
                    "left ha_node); the event's name has the new state. Every change opens an "
                    "event of its own; each resolves {$KYOTEN.CHANGE.HOLD} after the last change, "
                    "or when closed by hand.",
                    opdata="Now: {ITEM.LASTVALUE1}",
                    manual_close=True,
                    scope="notice",
                    per_change=True,
                    event_name="Zabbix HA node [{#NODE.NAME}] is now {ITEM.VALUE1}",
                ),
            ),
        ),
        Metric(
            "lastaccess_age",
            "HA node [{#NODE.NAME}]: Since last access",
            ValueType.FLOAT,
            "Seconds since the node last updated ha_node (database clock).",
            units="s",
            triggers=(
                Trigger(
                    "zbx.node_stale",
                    "Zabbix HA node [{#NODE.NAME}] silent for over {$ZBX.HA.LASTACCESS.MAX.WARN} s",
                    "min(ITEM(lastaccess_age),2m)>{$ZBX.HA.LASTACCESS.MAX.WARN} and "
                    f"last(ITEM(status))<>1 and last(ITEM(status))<>{REMOVED}",
                    Severity.WARNING,
                    "A running node stopped touching the database. Resolves when it does again, "
                    "or when it is stopped or removed from the cluster.",
                    depends_on=("zbx.node_unavailable",),
                ),
            ),
        ),
    ),
)

FAMILY = Family(
    key="kyoten.zabbix.ha",
    description="Zabbix server HA cluster state from a Zabbix database target, as JSON.",
    template="kyoten Zabbix HA cluster",
    template_description=(
        "Zabbix server native HA (6.0+) read straight from ha_node, so it works whichever node "
        "is active, and even when none is. Set {$KYOTEN.ZBX.TARGET}."
    ),
    params=(Param("target", TARGET),),
    component="zabbix-ha",
    tags=(("class", "software"), ("target", "zabbix")),
    macros=(NODATA, CHANGE_HOLD, LASTACCESS),
    valuemaps=(NODE_STATUS,),
    metrics=(
        TARGET_FIELD,
        SITE_FIELD,
        duration(A, "zbx", "the Zabbix database"),
        Metric("nodes_total", f"{A}: Nodes", ValueType.UNSIGNED, "Rows in ha_node."),
        Metric(
            "nodes_active",
            f"{A}: Active nodes",
            ValueType.UNSIGNED,
            "Nodes with status active (exactly 1 when healthy). No active node is not a "
            "trigger here: only an active node evaluates triggers, so it could never fire; the "
            "alert bridge's canary raises it instead.",
            triggers=(
                Trigger(
                    "zbx.two_active",
                    f"{A}: more than one active node",
                    "last(ITEM(nodes_active))>1",
                    Severity.DISASTER,
                    "More than one active node in one database should be impossible.",
                    opdata="Active: {ITEM.LASTVALUE1}",
                ),
            ),
        ),
        Metric(
            "nodes_standby", f"{A}: Standby nodes", ValueType.UNSIGNED, "Nodes ready to take over."
        ),
        Metric(
            "nodes_unavailable",
            f"{A}: Unavailable nodes",
            ValueType.UNSIGNED,
            "Nodes marked unavailable by the active node.",
        ),
        Metric(
            "active_node",
            f"{A}: Active node",
            ValueType.CHAR,
            "Name of the active node ('' when none).",
            heartbeat=CHANGE_HOLD.name,
            triggers=(
                Trigger(
                    "zbx.failover",
                    f"{A}: failover, another node is active",
                    "last(ITEM(active_node),#1)<>last(ITEM(active_node),#2) and "
                    "length(last(ITEM(active_node)))>0",
                    Severity.WARNING,
                    "Another node became active (it is in the event's name). Fix: find out why "
                    "the previous one stopped (its log; its site's Pgpool and database) and "
                    "start it again, as standby now. Every failover opens an event of its own; "
                    "each resolves {$KYOTEN.CHANGE.HOLD} after the last one, or when closed by "
                    "hand.",
                    opdata="Active: {ITEM.LASTVALUE1}",
                    manual_close=True,
                    scope="notice",
                    per_change=True,
                    event_name=f"{A}: failover to {{ITEM.VALUE1}}",
                ),
            ),
        ),
    ),
    discoveries=(NODES,),
)
