"""libpq through ctypes for ``kyoten get``: one connection, one pass, no psycopg import.

In UserParameter mode every poll is a fresh Python process, and importing psycopg costs it
more CPU (about 90 ms here) than everything else the call does. This module binds the few
libpq calls a query pass needs and uses them non-blocking, so the caller's deadline holds
without a timer thread: PQconnectStartParams/PQconnectPoll (the connect_timeout is enforced
here: libpq leaves it to the application in this mode), PQsendQuery/PQgetResult keeping the
last result set as PQexec does, and a cancel request when the deadline passes. Everything
libpq itself does is kept: conninfo keywords, passfile, sslmode, multiple hosts, SCRAM.

Which libpq: the system's ``libpq.so.5`` (what psql uses), else the one bundled with
psycopg-binary; ``KYOTEN_LIBPQ`` names another file, or ``psycopg`` to use psycopg instead.
The agent 2 plugin keeps psycopg (kept connections, concurrent passes).
"""

from __future__ import annotations

import ctypes
import os
import select
import sys
import time

from kyoten.agent.errors import QueryError

TYPE_CHECKING = False  # kyoten get imports no typing (see kyoten.agent.records)
if TYPE_CHECKING:
    from collections.abc import Sequence

    from kyoten.agent.snapshot import Rows

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_SIGNATURES: dict[str, tuple[type | None, list[type]]] = {
    "PQconnectStartParams": (_P, [ctypes.POINTER(_S), ctypes.POINTER(_S), _I]),
    "PQconnectPoll": (_I, [_P]),
    "PQstatus": (_I, [_P]),
    "PQsocket": (_I, [_P]),
    "PQerrorMessage": (_S, [_P]),
    "PQserverVersion": (_I, [_P]),
    "PQsendQuery": (_I, [_P, _S]),
    "PQconsumeInput": (_I, [_P]),
    "PQisBusy": (_I, [_P]),
    "PQgetResult": (_P, [_P]),
    "PQresultStatus": (_I, [_P]),
    "PQresultErrorMessage": (_S, [_P]),
    "PQresultErrorField": (_S, [_P, _I]),
    "PQntuples": (_I, [_P]),
    "PQnfields": (_I, [_P]),
    "PQfname": (_S, [_P, _I]),
    "PQgetvalue": (_S, [_P, _I, _I]),
    "PQclear": (None, [_P]),
    "PQfinish": (None, [_P]),
    "PQgetCancel": (_P, [_P]),
    "PQcancel": (_I, [_P, _S, _I]),
    "PQfreeCancel": (None, [_P]),
    "PQsetNoticeProcessor": (_P, [_P, _P, _P]),
}
_CONNECTION_BAD = 1
_POLLING_FAILED, _POLLING_READING, _POLLING_WRITING, _POLLING_OK = 0, 1, 2, 3
_COMMAND_OK, _TUPLES_OK = 1, 2
_DIAG_SQLSTATE = ord("C")

_lib: ctypes.CDLL | None = None
_tried = False
# libpq's default notice processor prints a server's NOTICE/WARNING on stderr, which the agent
# would store as the item's value (Pgpool sends some while authenticating): drop them
_NOTICE = ctypes.CFUNCTYPE(None, _P, _S)(lambda arg, message: None)


def _candidates() -> list[str]:
    chosen = os.environ.get("KYOTEN_LIBPQ", "")
    if chosen == "psycopg":
        return []
    if chosen:
        return [chosen]
    found = ["libpq.so.5"]  # the system's, by soname (Debian: libpq5, as psql uses)
    for entry in sys.path:  # psycopg-binary's own copy, found without importing it
        libs = os.path.join(entry or ".", "psycopg_binary.libs")
        if os.path.isdir(libs):
            names = sorted(n for n in os.listdir(libs) if n.startswith("libpq"))
            found += [os.path.join(libs, n) for n in names]
    return found


def library() -> ctypes.CDLL | None:
    """libpq with its signatures declared, or None (then the caller uses psycopg)."""
    global _lib, _tried
    if not _tried:
        _tried = True
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _lib = lib
            break
    return _lib


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def _wait(fd: int, write: bool, until: float) -> bool:
    """Wait for ``fd`` to be readable (or writable); False when ``until`` passed first."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(left * 1000):
            return True


class PqConnection:
    """One libpq connection; every wait is bounded by a deadline (``time.monotonic``)."""

    def __init__(self, lib: ctypes.CDLL, handle: int) -> None:
        self._lib = lib
        self._handle: int | None = handle

    @classmethod
    def connect(cls, params: dict[str, str], until: float) -> PqConnection:
        """Connect with conninfo keywords; QueryError with libpq's message on failure,
        'timeout expired' when ``until`` passes first."""
        lib = library()
        if lib is None:
            raise QueryError("libpq could not be loaded")
        keys = (_S * (len(params) + 1))(*(k.encode() for k in params), None)
        values = (_S * (len(params) + 1))(*(v.encode() for v in params.values()), None)
        handle = lib.PQconnectStartParams(keys, values, 0)
        if not handle:
            raise QueryError("libpq: out of memory")
        conn = cls(lib, handle)
        try:
            lib.PQsetNoticeProcessor(handle, ctypes.cast(_NOTICE, _P), None)
            if lib.PQstatus(handle) == _CONNECTION_BAD:
                raise QueryError(conn.error_message())
            state = _POLLING_WRITING  # as libpq's documentation says to start
            while state != _POLLING_OK:
                if state == _POLLING_FAILED:
                    raise QueryError(conn.error_message())
                if not _wait(lib.PQsocket(handle), state == _POLLING_WRITING, until):
                    raise QueryError("timeout expired")
                state = lib.PQconnectPoll(handle)
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def server_version(self) -> int:
        return int(self._lib.PQserverVersion(self._handle))

    def error_message(self) -> str:
        return _text(self._lib.PQerrorMessage(self._handle)).strip()

    def query(self, command: str, until: float, columns: Sequence[str] | None = None) -> Rows:
        """One simple-protocol query; the last result set, as PQexec returns it. Past
        ``until`` a cancel request is sent and QueryError 57014 raised."""
        lib, handle = self._lib, self._handle
        if not lib.PQsendQuery(handle, command.encode()):
            raise QueryError(self.error_message())
        last = None
        try:
            while True:
                while lib.PQisBusy(handle):
                    if not _wait(lib.PQsocket(handle), False, until):
                        self.cancel()
                        raise QueryError("no answer within the deadline", "57014")
                    if not lib.PQconsumeInput(handle):
                        raise QueryError(self.error_message())
                res = lib.PQgetResult(handle)
                if not res:
                    break
                if last:
                    lib.PQclear(last)
                last = res
            if not last:
                raise QueryError(self.error_message() or "no result")
            return self._rows(last, columns)
        finally:
            if last:
                lib.PQclear(last)

    def _rows(self, res: int, columns: Sequence[str] | None) -> Rows:
        lib = self._lib
        status = lib.PQresultStatus(res)
        if status == _TUPLES_OK:
            names = [_text(lib.PQfname(res, i)) for i in range(lib.PQnfields(res))]
            wanted = [(c, n) for c, n in enumerate(names) if columns is None or n in columns]
            return tuple(
                {n: _text(lib.PQgetvalue(res, r, c)) for c, n in wanted}
                for r in range(lib.PQntuples(res))
            )
        if status == _COMMAND_OK:
            return ()
        message = _text(lib.PQresultErrorMessage(res)).strip()
        sqlstate = _text(lib.PQresultErrorField(res, _DIAG_SQLSTATE))
        raise QueryError(message or f"query failed (status {status})", sqlstate)

    def cancel(self) -> None:
        """Ask the server to cancel the running query (best effort)."""
        lib = self._lib
        token = lib.PQgetCancel(self._handle)
        if token:
            lib.PQcancel(token, ctypes.create_string_buffer(256), 256)
            lib.PQfreeCancel(token)

    def close(self) -> None:
        if self._handle is not None:
            self._lib.PQfinish(self._handle)
            self._handle = None


class PqSession:
    """A :class:`~kyoten.agent.sources.session.Session` over a PqConnection, every query
    bounded by the pass's deadline."""

    def __init__(self, conn: PqConnection, until: float) -> None:
        self.conn = conn
        self.until = until

    @property
    def server_version(self) -> int:
        return self.conn.server_version

    @property
    def raw(self) -> object:
        return self.conn

    def query(
        self, command: str, columns: Sequence[str] | None = None, *, prepare: bool = False
    ) -> Rows:
        return self.conn.query(command, self.until, columns)  # one shot: nothing to prepare
