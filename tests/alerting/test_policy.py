"""Pipeline policies: full-jitter backoff, the token bucket, and the rate limit in the app."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from kyoten.alerting.app import create_app
from kyoten.alerting.config import RetryPolicy
from kyoten.alerting.pipeline import TokenBucket, backoff
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, FakeSlack, bridge_config, eventually, payload, settings_of


@given(attempt=st.integers(1, 60), r=st.floats(0, 1, exclude_max=True))
def test_full_jitter_stays_within_the_exponential_cap(attempt: int, r: float) -> None:
    policy = RetryPolicy(base=2.0, cap=300.0)
    delay = backoff(attempt, policy, lambda: r)
    assert 0 <= delay <= min(300.0, 2.0 * 2 ** (attempt - 1))
    assert backoff(attempt, policy, lambda: 0.999999) >= 0.99 * min(300.0, 2.0 * 2 ** (attempt - 1))


def test_token_bucket_allows_a_burst_then_paces() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=1.0, burst=3, clock=lambda: now[0])
    assert [bucket.delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.delay() == 1.0  # the 4th waits a second
    now[0] += 10
    assert bucket.delay() == 0.0  # refilled (up to the burst)
    assert TokenBucket(0, 1, lambda: 0.0).delay() == 0.0  # unlimited


async def test_slack_channel_is_paced_by_its_rate(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, slack)
    doc["channels"]["slack"].update(rate=5, burst=1)
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    for i in range(4):
        await client.post("/v1/events", json=payload(str(60 + i)), headers=AUTH)
    await eventually(lambda: len(slack.posts()) == 4)
    at = [c.at for c in slack.posts()]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert min(gaps) >= 0.18  # 5 per second


async def test_incoming_webhook_fallback_posts_each_event(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, None)
    doc["channels"] = {"hook": {"type": "slack-webhook", "webhook_url": slack.webhook_url}}
    doc["routes"] = [{"channels": ["hook"]}]
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    for kind in ("problem", "recovery"):
        await client.post("/v1/events", json=payload("70", kind), headers=AUTH)
    await eventually(lambda: len(slack.webhook_posts) == 2)
    problem, recovery = slack.webhook_posts
    assert problem["attachments"][0]["color"] == "#E97659"
    assert recovery["attachments"][0]["color"] == "#009900"
    assert recovery["text"].startswith("[Resolved]")
