"""The bridge's aiohttp application: a factory and one cleanup context per resource.

``create_app(settings)`` never parses argv or reads files: the CLI does that, tests pass
settings directly and drive the whole app through aiohttp's test client. Resources come up in
order — outbox, HTTP session, channels, pipeline — and go down in reverse, so the workers stop
before the channels and the outbox they use are closed.

Endpoints:

JSON on the intake path goes through orjson: at thousands of events per second the standard
library's decoder and encoder were a tenth of the request handling (bench/bridge.py).

* ``POST /v1/events`` — bearer token (constant-time compare) → size limit → JSON → event schema
  → commit to the outbox → ``202`` (new) or ``200`` (a retry of a stored event). Every refusal
  is a 4xx with ``{"error": ..., "field": ...}`` and stores nothing.
* ``GET /health`` — per channel: state, queue depth, oldest pending, dead letters, last error
  (a failed tower ``apply`` too, re-asserts included), and for a tower that reads back its
  ``drifts`` (:meth:`kyoten.alerting.pipeline.Pipeline.health`); the canary's and the
  reconciliation's (:mod:`kyoten.alerting.reconcile_loop`) sections when configured.
* ``GET /metrics`` — Prometheus text format (tower drifts as ``kyoten_bridge_drifts_total``).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .canary import canary_token
from .canary_loop import CanaryLoop, CanaryStore
from .channels import load_builder
from .channels.base import Channel, ChannelResources, OpenProblem
from .config import Settings
from .events import Event, InvalidEvent, parse_event
from .outbox import Accepted, Outbox, open_outbox
from .pipeline import Pipeline
from .reconcile_loop import ReconcileLoop
from .templating import Renderer

if TYPE_CHECKING:
    from .slack_actions import SlackActions

log = logging.getLogger("kyoten.alerting.app")

SETTINGS = web.AppKey("settings", Settings)
OUTBOX = web.AppKey("outbox", Outbox)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CHANNELS: web.AppKey[dict[str, Channel]] = web.AppKey("channels")
PIPELINE = web.AppKey("pipeline", Pipeline)
CANARY = web.AppKey("canary", CanaryLoop)
RECONCILE = web.AppKey("reconcile", ReconcileLoop)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
REGISTRY = web.AppKey("registry", CollectorRegistry)
RENDERERS: web.AppKey[dict[str, Renderer]] = web.AppKey("renderers")
SLACK_ACTIONS: web.AppKey[SlackActions] = web.AppKey("slack_actions")


def _refuse(
    status: int, reason: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": reason}
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


async def post_event(request: web.Request) -> web.Response:
    """Intake of one Zabbix event (webhook or ``kyoten bridge send``)."""
    app = request.app
    settings = app[SETTINGS]
    metrics = app[PIPELINE].metrics
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        metrics.rejected.labels("unauthenticated").inc()
        return _refuse(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
        metrics.rejected.labels("unauthenticated").inc()
        return _refuse(
            401,
            "invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if request.content_length is not None and request.content_length > settings.max_body:
        metrics.rejected.labels("too_large").inc()
        return _refuse(
            413,
            f"body of {request.content_length} bytes exceeds the limit of "
            f"{settings.max_body} bytes",
        )
    if request.content_type != "application/json":
        metrics.rejected.labels("content_type").inc()
        return _refuse(415, f"content type must be application/json, got {request.content_type!r}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.rejected.labels("too_large").inc()
        return _refuse(413, f"body exceeds the limit of {settings.max_body} bytes")
    try:
        payload = orjson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        metrics.rejected.labels("malformed").inc()
        return _refuse(400, "body is not UTF-8")
    except orjson.JSONDecodeError as exc:
        metrics.rejected.labels("malformed").inc()
        if "depth limit" in exc.msg:  # orjson stops at 1024 levels of nesting
            return _refuse(400, "body is nested too deeply")
        return _refuse(
            400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
    try:
        event = parse_event(payload)
    except InvalidEvent as exc:
        metrics.rejected.labels("invalid").inc()
        return _refuse(422, exc.reason, exc.field)
    if settings.zabbix_url:  # the bridge's own idea of the frontend wins over {$ZABBIX.URL}
        event = dataclasses.replace(event, zabbix_url=settings.zabbix_url)
    token = canary_token(event)
    if token is not None:  # the alert-path canary's own event: consumed, never delivered
        loop = app.get(CANARY)
        if loop is not None:
            await loop.received(token, event.kind)
        return web.Response(
            body=orjson.dumps({"status": "canary", "dedup_key": event.dedup_key}),
            status=200,
            content_type="application/json",
        )
    try:
        accepted = await app[PIPELINE].accept(event)
    except Exception as exc:  # the store is down: not stored, so Zabbix must retry
        metrics.rejected.labels("store_unavailable").inc()
        log.error(
            "cannot store event %s: %s",
            event.dedup_key,
            app[PIPELINE].redact(f"{type(exc).__name__}: {exc}"),
        )
        return _refuse(
            503, "event store unavailable; not stored, retry later", headers={"Retry-After": "5"}
        )
    return web.Response(
        body=orjson.dumps(
            {
                "status": "accepted" if accepted.new else "duplicate",
                "dedup_key": event.dedup_key,
                "channels": list(accepted.channels),
            }
        ),
        status=202 if accepted.new else 200,
        content_type="application/json",
    )


async def get_health(request: web.Request) -> web.Response:
    """Per-channel health; 503 when a channel is failing or paused."""
    body = await request.app[PIPELINE].health()
    for name, renderer in request.app.get(RENDERERS, {}).items():
        if renderer.spec and name in body["channels"]:  # a failing template: the default text
            body["channels"][name]["templates"] = renderer.health.as_dict()  # went out instead
    actions = request.app.get(SLACK_ACTIONS)
    if actions is not None:  # clicks in Slack: shown, not a 503 (alerts flow without them)
        body["slack_actions"] = actions.health.as_dict()
    loop = request.app.get(CANARY)
    if loop is not None:  # the alert path is Zabbix's, not this bridge's: shown, not a 503
        body["canary"] = loop.health()
    reconciler = request.app.get(RECONCILE)
    if reconciler is not None:  # Zabbix's API down costs only the reconciliation: not a 503
        body["reconcile"] = reconciler.health()
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of this app's registry."""
    await request.app[PIPELINE].refresh_gauges()
    return web.Response(
        body=generate_latest(request.app[REGISTRY]), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """The durable store: opened first, closed last."""
    s = app[SETTINGS]
    outbox = open_outbox(
        s.outbox.backend,
        path=s.outbox.path,
        synchronous=s.outbox.synchronous,
        conninfo=s.outbox.conninfo,
        node=s.node,
    )
    await outbox.open()
    app[OUTBOX] = outbox
    yield
    await outbox.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session shared by every HTTP-speaking channel."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        app[HTTP] = session
        yield


async def channels_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build every configured channel through the registry; close them at shutdown."""
    built: dict[str, Channel] = {}
    for cfg in app[SETTINGS].channels:
        resources = ChannelResources(
            app[HTTP], logging.getLogger(f"kyoten.alerting.channel.{cfg.name}")
        )
        built[cfg.name] = load_builder(cfg.type)(cfg.name, cfg.settings, resources)
    renderers: dict[str, Renderer] = {}
    for cfg in app[SETTINGS].channels:
        channel = built[cfg.name]
        if isinstance(getattr(channel, "renderer", None), Renderer):
            # the channel's templates (or the action's message); render-time failures of
            # its templates show in /health
            renderer = Renderer(cfg.name, cfg.templates, clock=app[CLOCK])
            channel.renderer = renderer  # type: ignore[union-attr]
            renderers[cfg.name] = renderer
    app[RENDERERS] = renderers
    app[CHANNELS] = built
    yield
    for ch in built.values():
        try:
            await ch.aclose()
        except Exception as exc:
            log.warning("closing %s: %s", ch.name, type(exc).__name__)


async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the lanes after everything they use exists; stop them first."""
    channels: dict[str, Channel] = app[CHANNELS]
    pipeline = Pipeline(
        app[SETTINGS], app[OUTBOX], channels, clock=app[CLOCK], registry=app[REGISTRY]
    )
    app[PIPELINE] = pipeline
    await pipeline.start()
    yield
    await pipeline.stop()


async def canary_ctx(app: web.Application) -> AsyncIterator[None]:
    """The alert-path canary, when configured: started after the pipeline it alerts through."""
    cfg = app[SETTINGS].canary
    if cfg is None:
        yield
        return
    spools: list[tuple[Pipeline, Any]] = []

    async def spool() -> Any:
        """The own alert's fallback when the outbox refuses it: a local SQLite outbox with a
        pipeline of its own over the same channels, opened on first use."""
        box = open_outbox("sqlite", path=cfg.spool, synchronous="FULL")
        await box.open()
        channels: dict[str, Channel] = app[CHANNELS]
        pipe = Pipeline(app[SETTINGS], box, channels, clock=app[CLOCK])
        await pipe.start()
        spools.append((pipe, box))
        return pipe.accept

    loop = CanaryLoop(
        cfg, app[PIPELINE].accept, node=app[SETTINGS].node, clock=app[CLOCK],
        registry=app[REGISTRY], redact=app[PIPELINE].redact,
        spool=spool if app[SETTINGS].outbox.backend != "sqlite" else None,
        # bridges sharing a PostgreSQL outbox share canary receipts and the own alert; a
        # SQLite outbox is one bridge's own, which needs neither
        store=outbox if isinstance(outbox := app[OUTBOX], CanaryStore) else None,
    )  # fmt: skip
    app[CANARY] = loop
    await loop.start()
    yield
    await loop.stop()
    for pipe, box in spools:
        await pipe.stop()
        await box.close()


async def reconcile_ctx(app: web.Application) -> AsyncIterator[None]:
    """Closing problems Zabbix no longer has open, when configured: started after the
    pipeline its synthetic recoveries go through, stopped before it."""
    cfg = app[SETTINGS].reconcile
    if cfg is None:
        yield
        return
    pipeline, outbox = app[PIPELINE], app[OUTBOX]
    names = [c.name for c in app[SETTINGS].channels]

    async def open_problems() -> list[OpenProblem]:
        return [p for name in names for p in await outbox.open_problems(name)]

    async def accept(event: Event) -> Accepted:
        return await pipeline.accept(event, reroute=False)  # only where its problem went

    loop = ReconcileLoop(
        cfg, accept, open_problems, clock=app[CLOCK], registry=app[REGISTRY],
        redact=pipeline.redact,
    )  # fmt: skip
    app[RECONCILE] = loop
    await loop.start()
    yield
    await loop.stop()


async def slack_actions_ctx(app: web.Application) -> AsyncIterator[None]:
    """Acknowledge/Close from Slack (Socket Mode), when configured; it connects in the
    background, so the bridge starts (and delivers) whatever Slack does."""
    cfg = app[SETTINGS].slack_actions
    if cfg is None:
        yield
        return
    from .slack_actions import SlackActions

    actions = SlackActions(cfg, app[HTTP], clock=app[CLOCK])
    app[SLACK_ACTIONS] = actions
    await actions.start()
    yield
    await actions.stop()


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The bridge application for ``settings`` (nothing is opened until it starts)."""
    app = web.Application(client_max_size=settings.max_body)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[REGISTRY] = CollectorRegistry()
    app.cleanup_ctx.extend(
        [outbox_ctx, http_ctx, channels_ctx, pipeline_ctx, canary_ctx, reconcile_ctx,
         slack_actions_ctx]
    )  # fmt: skip
    app.router.add_post("/v1/events", post_event)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app
