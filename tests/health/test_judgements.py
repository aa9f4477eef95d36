"""The health verdicts as pure functions of snapshots: what counts as a failure, and its words."""

from __future__ import annotations

from kyoten.agent.health import (
    Check,
    Report,
    judge_api,
    judge_pgpool,
    judge_postgres,
    stale,
)
from kyoten.common.redact import redact_url

PRIMARY = {"in_recovery": 0, "timeline": 3, "standbys_connected": 1}
STANDBY = {"in_recovery": 1, "timeline": 3, "receiver_state": 1}
POOL_OK = {"via_pcp": 0, "primary_backend": "10.1.0.11:5432", "backends_up": 2, "backends_total": 2}


def test_api_needs_a_version_not_just_an_answer() -> None:
    assert judge_api(200, b'{"jsonrpc":"2.0","result":"6.0.14","id":1}') == (
        True,
        "Zabbix API 6.0.14",
    )
    err = b'{"jsonrpc":"2.0","error":{"code":1,"message":"Database error","data":"SELECT"},"id":1}'
    assert judge_api(200, err) == (False, "API error: Database error")
    assert judge_api(502, b"<html>Bad gateway</html>") == (False, "HTTP 502, not a JSON-RPC answer")


def test_pgpool_counts_only_sql_answers_with_a_primary() -> None:
    ok, detail = judge_pgpool([("pool-a", POOL_OK, "")])
    assert ok and detail == "pool-a: primary 10.1.0.11:5432, 2/2 backends up"
    assert not judge_pgpool([("pool-a", {**POOL_OK, "via_pcp": 1}, "")])[0]
    assert judge_pgpool([("pool-a", {**POOL_OK, "primary_backend": ""}, "")]) == (
        False,
        "pool-a: no primary backend up (2/2 backends up)",
    )
    # a watchdog pair at one site: one Pgpool that works is enough
    assert judge_pgpool([("pool-a1", None, "refused"), ("pool-a2", POOL_OK, "")])[0]


def test_postgres_split_brain_and_what_is_not_this_sites_business() -> None:
    ok, detail = judge_postgres([("a", PRIMARY, "")], [("b", {**PRIMARY, "timeline": 4}, "")])
    assert not ok and detail.startswith("two primaries: a (timeline 3), b (timeline 4)")
    # a local standby is sane even if two remote servers disagree (their sites' checks say so)
    assert judge_postgres([("b", STANDBY, "")], [("a", PRIMARY, ""), ("c", PRIMARY, "")])[0]
    ok, detail = judge_postgres([("a", PRIMARY, "")], [("b", None, "timeout")])
    assert ok and detail.endswith("not compared with unreachable b")
    assert judge_postgres([("a", None, "refused")], [("b", STANDBY, "")]) == (False, "a: refused")


def test_a_stuck_checker_turns_the_last_report_into_a_failure() -> None:
    report = Report("site-a", (Check("postgres", True, "fine"),), at=1000.0)
    assert stale(report, max_age=20, now=1010.0) is report
    old = stale(report, max_age=20, now=1100.0)
    assert not old.healthy
    assert old.line() == "FAIL site-a: checker: last round finished 100 s ago (limit 20 s)"


def test_urls_lose_their_credentials() -> None:
    assert redact_url("http://u:secret@zbx/api_jsonrpc.php") == "http://***@zbx/api_jsonrpc.php"
    assert redact_url("http://zbx/api_jsonrpc.php") == "http://zbx/api_jsonrpc.php"
