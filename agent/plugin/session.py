"""The plugin side of one agent connection: a state machine over typed messages.

The agent runs the plugin twice. The registration run (``initial``) sees Register, then
Validate, then Terminate; the operational run sees Configure, possibly Start, then any number
of Exports and finally Terminate. The session answers whatever arrives rather than insisting
on that order: a plugin that rejects an unexpected frame gains nothing, while one that dies
on it takes the whole agent down (6.0 exits, 7.0 panics).

So the loop has one exit, :meth:`Session.run` returning a reason (Terminate, the agent
closing the socket, or a broken byte stream), and every other problem is logged to the agent
through Log frames and, for an export, answered as an error. Writes from the reader, the
workers and the deadline thread go through one lock, one ``sendall`` per frame.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kyoten.common.redact import Redactor

from . import protocol as p
from .dispatch import Dispatcher, Flight, Handler
from .options import OptionsError, PluginOptions, parse_options

log = logging.getLogger("kyoten.agent.plugin")
#: Where the session's Log-frame handler hangs: the whole ``kyoten`` tree, so a warning from
#: the collector reaches the agent log too.
KYOTEN_LOG = logging.getLogger("kyoten")

#: What :meth:`Session.run` returns after a Terminate frame (the one orderly end).
TERMINATED = "terminated by the agent"
#: Export budget when neither the request (7.0) nor the configuration gives one: the agent's
#: own default Timeout.
DEFAULT_TIMEOUT_S = 3
#: How long an export may hold up reading before the standby thread takes over.
HANDOVER_S = 0.05
#: After this long without exports the standby stops looking every HANDOVER_S.
QUIET_S = 10.0


@dataclass(frozen=True)
class PluginSpec:
    """What the session serves; kyoten's is built in :mod:`.main`, tests build their own.

    :param metrics: the flat RegisterResponse list, computed only in the registration run.
    :param make_handler: builds the handler for the operational run (may raise: exports are
        then answered with that error and the next one tries again).
    :param check: extra validation for the registration run, raising with the reason the
        agent should print (e.g. the configured kyoten config does not load).
    :param expected: exception types whose text is a finished message for the operator;
        anything else is a bug and is logged with its traceback.
    :param secrets: values to mask in everything sent to the agent, from the loaded config.
    """

    name: str
    metrics: Callable[[], tuple[str, ...]]
    make_handler: Callable[[PluginOptions], Handler]
    check: Callable[[PluginOptions], None] = lambda options: None
    expected: tuple[type[BaseException], ...] = ()
    secrets: Callable[[Handler], list[str]] = lambda handler: []
    interfaces: int = p.Interface.EXPORTER | p.Interface.CONFIGURATOR


class FrameWriter:
    """Serialises frames onto the socket: one lock, one ``sendall`` per frame."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.closed = False
        self.frames = 0

    def send(self, msg: p.Response) -> None:
        """Write ``msg``; raises OSError once the agent is gone (callers decide if it matters)."""
        frame = p.encode(msg)
        with self._lock:
            if self.closed:
                raise BrokenPipeError("the agent connection is closed")
            try:
                self._sock.sendall(frame)
            except OSError:
                self.closed = True
                raise
            self.frames += 1


_SEVERITY = (
    (logging.CRITICAL, p.Severity.CRIT),
    (logging.ERROR, p.Severity.ERR),
    (logging.WARNING, p.Severity.WARNING),
    (logging.INFO, p.Severity.INFO),
)


class AgentLogHandler(logging.Handler):
    """Python logging to the agent log as Log frames, secrets masked.

    The plugin's stdout and stderr are discarded by 6.0 and only shown at trace level when it
    exits by 7.0, so Log frames are the only place an operator sees what went wrong.
    """

    def __init__(self, writer: FrameWriter, redact: Redactor, level: int) -> None:
        super().__init__(level)
        self._writer = writer
        self._redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text += f": {type(exc).__name__}: {exc}"
                if self.level <= logging.DEBUG:
                    text += "\n" + logging.Formatter().formatException(record.exc_info)
            severity = next((s for lvl, s in _SEVERITY if record.levelno >= lvl), p.Severity.DEBUG)
            self._writer.send(p.LogMessage(severity, self._redact(text)))
        except Exception:  # logging must never raise into the code that logs
            pass


@dataclass
class _State:
    options: PluginOptions = field(default_factory=PluginOptions)
    options_error: str | None = None
    agent_timeout: int | None = None
    handler: Handler | None = None
    handler_error: str | None = None
    started: bool = False


class Session:
    """Serve one connected agent socket until Terminate or until the agent goes away."""

    def __init__(
        self,
        sock: socket.socket,
        spec: PluginSpec,
        *,
        initial: bool,
        log_level: int = logging.INFO,
        max_pending: int = 1024,
    ) -> None:
        self._sock = sock
        self._spec = spec
        self._initial = initial
        self._max_pending = max_pending
        self.writer = FrameWriter(sock)
        self.redact = Redactor()
        self._decoder = p.FrameDecoder()
        self._state = _State()
        self._handler_lock = threading.Lock()
        self.dispatcher: Dispatcher | None = None
        # Leader/followers: the thread that owns reading computes an export itself when the
        # other one stands by, so the request does not wait for a worker to wake. It keeps
        # ownership meanwhile: handing reading over at once would wake the other thread in
        # the middle of every request (measured: 70-90 us of a 0.9 ms Pgpool poll, from the
        # wake-up and the GIL changing hands). The standby takes over only when a computation
        # has run for HANDOVER_S, so a slow target delays the next request by that much at
        # most; to notice, it looks every HANDOVER_S while exports keep coming (see _patience).
        self._turn = threading.Condition()
        self._reader: int | None = None  # thread ident of the owner of reading
        self._computing_since: float | None = None  # the owner runs an export since then
        self._last_export = -QUIET_S
        self._standby = 0  # threads waiting for a turn (read without the lock: a hint)
        self._inbox: collections.deque[bytes] = collections.deque()
        self._gone: str | None = None  # why the byte stream ended, once read to its end
        self._inline: Flight | None = None
        self._ended: str | None = None
        self._done = threading.Event()
        # 6.0.14 prints Log frames of the registration run to stdout (its log is not open
        # yet): there, only what stops the agent is worth saying.
        level = logging.ERROR if initial else log_level
        self._log_handler = AgentLogHandler(self.writer, self.redact, level)

    # --------------------------------------------------------------------- loop

    def run(self) -> str:
        """Read and answer frames; returns why the session ended. Never raises."""
        KYOTEN_LOG.addHandler(self._log_handler)
        if KYOTEN_LOG.level == logging.NOTSET or KYOTEN_LOG.level > self._log_handler.level:
            KYOTEN_LOG.setLevel(self._log_handler.level)
        # Two threads take turns reading; this one only waits for the end, so that the
        # session ends (and the process can exit) even while an export still runs.
        for n in range(2):
            threading.Thread(target=self._follow, name=f"kyoten-reader-{n}", daemon=True).start()
        try:
            self._done.wait()
            return self._ended or "internal error: ended without a reason"
        finally:
            KYOTEN_LOG.removeHandler(self._log_handler)
            self._shutdown()

    def _follow(self) -> None:
        try:
            self._turns()
        except BaseException as exc:  # last resort: the session still ends cleanly
            self._ended = self._ended or f"internal error: {type(exc).__name__}: {exc}"
        self._done.set()

    def _turns(self) -> str:
        """Wait for a turn; read and compute until another thread took reading over; repeat."""
        me = threading.get_ident()
        while True:
            with self._turn:
                self._standby += 1
                try:
                    while self._ended is None and not self._may_take_over():
                        self._turn.wait(self._patience())
                finally:
                    self._standby -= 1
                if self._ended is not None:
                    return self._ended
                self._reader, self._computing_since = me, None
            while True:
                flight = self._read()
                if flight is None:
                    assert self._ended is not None
                    with self._turn:
                        self._turn.notify_all()
                    return self._ended
                with self._turn:
                    now = time.monotonic()
                    if now - self._last_export >= QUIET_S:
                        self._turn.notify()  # a standby asleep for good: start looking
                    self._last_export = self._computing_since = now
                assert self.dispatcher is not None
                self.dispatcher.run(flight, self._settle)
                with self._turn:
                    if self._reader != me:
                        break  # taken over while this export ran: stand by
                    self._computing_since = None

    def _may_take_over(self) -> bool:
        """Nobody reads, or the owner has been computing one export for HANDOVER_S."""
        if self._reader is None:
            return True
        since = self._computing_since
        return since is not None and time.monotonic() - since >= HANDOVER_S

    def _patience(self) -> float | None:
        """How long a standby sleeps: HANDOVER_S while exports keep coming, else until
        woken (the next export after a quiet spell wakes it once)."""
        return HANDOVER_S if time.monotonic() - self._last_export < QUIET_S else None

    def _read(self) -> Flight | None:
        """Handle frames until one needs computing here (returned) or the session ends."""
        while True:
            while self._inbox:
                if self._on_body(self._inbox.popleft()):
                    self._ended = TERMINATED
                    return None
                flight, self._inline = self._inline, None
                if flight is not None:
                    return flight
            if self._gone is None:
                self._take_in(wait=True)
            if self._gone is not None and not self._inbox:
                self._ended = self._gone
                return None

    def _take_in(self, *, wait: bool) -> None:
        """Read what the agent sent into the inbox (without ``wait``, only what is there
        already); the end of the byte stream is noted in ``_gone``."""
        try:
            data = self._sock.recv(1 << 16, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError as exc:
            self._gone = f"socket error: {exc}"
            return
        if not data:
            self._gone = "the agent closed the connection"
            return
        try:
            self._inbox.extend(self._decoder.feed(data))
        except p.FramingError as exc:
            log.error("kyoten plugin: broken frame stream, giving up: %s", exc)
            self._gone = f"protocol error: {exc}"

    def _settle(self) -> None:
        """Just before the reader answers the export it computed: requests for the same key
        that arrived meanwhile join that computation, as they would have if a standby had
        been reading (it takes over only after HANDOVER_S)."""
        dispatcher = self.dispatcher
        with self._turn:
            if self._reader != threading.get_ident() or dispatcher is None:
                return  # taken over: the new reader has been joining them all along
            if self._gone is None:
                self._take_in(wait=False)
            while self._inbox:
                try:
                    msg = p.parse_body(self._inbox[0])
                except p.ProtocolError:
                    return  # _read answers it, in order
                if not isinstance(msg, p.ExportRequest) or not dispatcher.computing(
                    msg.key, msg.params
                ):
                    return
                # never inline: should that computation end meanwhile, this request starts
                # a new one on a worker instead of waiting for this thread's next turn
                self._on_body(self._inbox.popleft(), inline=False)

    def _on_body(self, body: bytes, *, inline: bool = True) -> bool:
        """Handle one frame body; True once the agent asked us to terminate."""
        try:
            msg = p.parse_body(body)
        except p.ProtocolError as exc:
            req_id = p.request_id(body)
            log.warning("kyoten plugin: ignoring a malformed request: %s", exc)
            if req_id is not None:
                self._answer(req_id, None, f"malformed export request: {exc}")
            return False
        try:
            return self._on_message(msg, inline)
        except Exception as exc:
            log.exception("kyoten plugin: failed to handle %s", type(msg).__name__)
            if isinstance(msg, p.ExportRequest):
                self._answer(msg.id, None, self._describe(exc))
            return False

    def _on_message(self, msg: p.Request, inline: bool = True) -> bool:
        if isinstance(msg, p.ExportRequest):
            self._export(msg, inline)
        elif isinstance(msg, p.TerminateRequest):
            return True
        elif isinstance(msg, p.RegisterRequest):
            self._register(msg)
        elif isinstance(msg, p.ValidateRequest):
            self._validate(msg)
        elif isinstance(msg, p.ConfigureRequest):
            self._configure(msg)
        elif isinstance(msg, p.StartRequest):
            self._state.started = True
        else:
            log.debug("kyoten plugin: ignoring message type %d", msg.type)
        return False

    # --------------------------------------------------------------------- handshake

    def _register(self, msg: p.RegisterRequest) -> None:
        # The agent never checks versions; the SDK-side check only exists to protect Go
        # plugins from struct changes. Accept every version (6.0.13, 6.4.0, ...).
        try:
            metrics = self._spec.metrics()
        except Exception as exc:
            reply = p.RegisterResponse(msg.id, self._spec.name, error=self._describe(exc))
        else:
            reply = p.RegisterResponse(msg.id, self._spec.name, metrics, self._spec.interfaces)
        self.writer.send(reply)

    def _validate(self, msg: p.ValidateRequest) -> None:
        error: str | None = None
        try:
            self._spec.check(parse_options(msg.private_options))
        except Exception as exc:
            error = f"kyoten plugin: {self._describe(exc)}"
        self.writer.send(p.ValidateResponse(msg.id, error))

    def _configure(self, msg: p.ConfigureRequest) -> None:
        state = self._state
        state.agent_timeout = msg.timeout
        try:
            state.options = parse_options(msg.private_options)
            state.options_error = None
        except OptionsError as exc:
            state.options_error = str(exc)
            log.error("kyoten plugin: %s", exc)
        log.info(
            "kyoten plugin configured: agent Timeout %s, export timeout %s s, %d workers",
            msg.timeout,
            self.budget(None),
            state.options.workers,
        )

    # --------------------------------------------------------------------- exports

    def budget(self, request_timeout: int | None) -> float:
        """Seconds the agent waits for this export: the request's own timeout (7.0), else
        ``Plugins.Kyoten.Timeout``, else the agent's Timeout from Configure."""
        for value in (request_timeout, self._state.options.timeout_s, self._state.agent_timeout):
            if value is not None and value > 0:
                return float(value)
        return float(DEFAULT_TIMEOUT_S)

    def _export(self, msg: p.ExportRequest, inline: bool = True) -> None:
        if self._state.options_error is not None:
            self._answer(msg.id, None, f"kyoten plugin: {self._state.options_error}")
            return
        if self.dispatcher is None:
            self.dispatcher = Dispatcher(
                self._handler,
                self._answer,
                self._describe,
                workers=self._state.options.workers,
                max_pending=self._max_pending,
            )
        self._inline = self.dispatcher.submit(
            msg.id,
            msg.key,
            msg.params,
            self.budget(msg.timeout),
            inline=inline and self._standby > 0,
        )

    def _handler(self) -> Handler:
        """The handler, built on first use; a failure is retried by the next export."""
        with self._handler_lock:
            state = self._state
            if state.handler is not None:
                return state.handler
            try:
                handler = self._spec.make_handler(state.options)
            except Exception as exc:
                text = self._describe(exc)
                if text != state.handler_error:
                    log.error("kyoten plugin: cannot start collecting: %s", text)
                    state.handler_error = text
                raise
            self.redact.add(self._spec.secrets(handler))
            state.handler, state.handler_error = handler, None
            return handler

    def _answer(self, req_id: int, value: str | None, error: str | None) -> None:
        if error is not None:
            reply = p.ExportResponse(req_id, error=self.redact(error) or "unknown error")
        else:
            reply = p.ExportResponse(req_id, value="" if value is None else value)
        self.writer.send(reply)

    def _describe(self, exc: BaseException) -> str:
        """Error text for the agent: the message of an expected error, else type and text
        (and the traceback to the agent log, since that is a bug to report)."""
        if isinstance(exc, (self._spec.expected, OptionsError)):
            return self.redact(str(exc) or type(exc).__name__)
        log.warning("kyoten plugin: unexpected %s", type(exc).__name__, exc_info=exc)
        return self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    # --------------------------------------------------------------------- exit

    def _shutdown(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
        handler = self._state.handler
        close = getattr(handler, "close", None)
        if callable(close):
            # Closing target connections politely is worth a moment, not a hang: the agent
            # (7.0) kills a plugin that does not exit within its plugin timeout.
            closer = threading.Thread(target=_quietly, args=(close,), daemon=True)
            closer.start()
            closer.join(1.0)


def _quietly(fn: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        fn()
