"""kyoten.toml as ``kyoten get`` reads it: checked once, then reused while nothing it was made
from has changed.

Every poll in UserParameter mode is a new process that reads the same kyoten.toml. Parsing it
takes ``tomllib``, whose import (with ``typing``, ``re``, ``datetime`` it loads) cost a poll
about as much CPU as everything else it does, and then the validator. So the first call keeps
the checked :class:`~kyoten.agent.config.Config` in a cache file and later calls load it with
:mod:`marshal`, after checking that it was made from exactly what they would read now:

* the config file itself and every secret file it names (``password_file``, ...), by their
  status, the path it was read from and the working directory (relative ``*_file`` paths are
  read from there);
* the code that parsed it (size and mtime of the modules that declare and check the file).

The file is read on every call, as before: its errors (missing, unreadable to this user) stay
the same, and a removed read permission is seen at once. Anything unusual (a cache that does
not load, a changed input) means the usual parse, whose result replaces the cache entry; an
invalid config is never cached, so its problems are reported on every call.

The cache holds no secret. A password read from a file (``password_file``, ...) is stored as
a reference to that file and read from it again on every call; a config with a password written
inline is never cached (README: prefer ``password_file``). Changes are seen by the files' status
(size, modification and change times, inode), which the kernel updates on every write, not by
keeping their content; an input changed within the last :data:`SETTLED_NS` is not cached yet,
as two writes that close together can leave the same times.

The cache is still kept private: one directory per user, ``/tmp/kyoten-<uid>``
(``KYOTEN_CACHE_DIR`` names another; its parent must exist), created mode 0700, and used only
while it is a directory owned by this user that no one else may enter; the entries are mode
0600, written to a temporary file and renamed into place, opened without
following symbolic links and used only if owned by this user. Where any of that fails, nothing
is cached and every call parses, as it did before.
"""

from __future__ import annotations

import marshal
import os
import stat
import time

from kyoten.agent import config as _config
from kyoten.agent.config import Config, read_config, read_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CACHE_DIR_VAR = "KYOTEN_CACHE_DIR"
#: inputs changed more recently than this are not cached: a file's times have the kernel's
#: coarse clock, so two writes close together can leave the same times (git's "racily clean")
SETTLED_NS = 2_000_000_000
_FORMAT = 2
#: the records a Config is built of, by name: how an entry stores them
_RECORDS = {
    cls.__name__: cls
    for cls in (
        Config,
        _config.Endpoint,
        _config.PgTarget,
        _config.PcpSettings,
        _config.PgpoolTarget,
        _config.ZabbixTarget,
    )
}


def cache_dir() -> str:
    return os.environ.get(CACHE_DIR_VAR) or f"/tmp/kyoten-{os.geteuid()}"


def load_config_cached(path: str | None = None) -> Config:
    """:func:`kyoten.agent.config.load_config`, through the cache: the same Config, the same
    errors."""
    p = _config.config_path(path)
    read_text(p)  # every call: the same errors as without a cache
    directory = _private_dir(cache_dir())
    entry_path = None if directory is None else os.path.join(directory, _entry_name(p))
    if entry_path is not None:
        found = _cached(entry_path, p)
        if found is not None:
            return found
    config, files = read_config(p)
    if entry_path is not None:
        _store(entry_path, p, files, config)
    return config


def _entry_name(path: str) -> str:
    """The cache file of a config path: the absolute path, escaped into one file name."""
    return os.path.abspath(path).replace("%", "%25").replace("/", "%2F") + ".cache"


def _private_dir(directory: str) -> str | None:
    """``directory``, made if missing, when only this user may use it; else None."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return directory


def _signature(path: str) -> tuple[int, ...]:
    """What changes whenever the file's content does: size, mtime, ctime (which no one can set
    back), inode and device. OSError when it cannot be read."""
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _inputs(path: str, files: list[str]) -> tuple[Any, ...] | None:
    """Everything a parse of ``path`` depends on, or None when some of it cannot be read."""
    try:
        here = os.path.dirname(_config.__file__)
        code = []
        for module in ("config.py", "config_schema.py", "keytable.py", "../common/schema.py"):
            st = os.stat(os.path.join(here, module))
            code.append((st.st_size, st.st_mtime_ns))
        return (
            _FORMAT,
            path,
            os.getcwd(),
            _signature(path),
            tuple((name, _signature(name)) for name in files),
            tuple(code),
        )
    except OSError:
        return None


def _secret_of(name: str) -> str:
    """The secret a ``*_file`` holds, as the config's schema reads it (``Secret(first_line=
    True)``: the first line); :func:`_store` checks that this gives the value the parse gave,
    so a change of that rule means no cache, never a wrong password."""
    with open(name, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    return lines[0] if lines else ""


def _cached(entry_path: str, path: str) -> Config | None:
    """The Config of the entry, if it was made from what ``path`` and its files hold now."""
    try:
        fd = os.open(entry_path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            inputs, plain = marshal.loads(fh.read())
        if inputs[1:3] != (path, os.getcwd()):  # cheap checks before the files
            return None
        files = [name for name, _ in inputs[4]]
        if inputs != _inputs(path, files):
            return None
        secrets = [_secret_of(name) for name in files]
        config = _restore(plain, secrets)
        return config if isinstance(config, Config) else None
    except Exception:  # an entry of another format, damaged, ...: parse instead
        return None
    finally:
        os.close(fd)


def _store(entry_path: str, path: str, files: list[str], config: Config) -> None:
    inputs = _inputs(path, files)
    if inputs is None:
        return
    newest = max(max(sig[1], sig[2]) for sig in (inputs[3], *(f[1] for f in inputs[4])))
    if time.time_ns() - newest < SETTLED_NS:  # the next poll stores it
        return
    temporary = f"{entry_path}.{os.getpid()}.tmp"
    try:
        secrets = [_secret_of(name) for name in files]
        plain = _plain(config, secrets)
        if _restore(plain, secrets) != config:  # a secret not from a file, or read otherwise
            return
        blob = marshal.dumps((inputs, plain))
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)
        os.replace(temporary, entry_path)
    except Exception:  # an inline password, not writable, full, ...: no cache, same answers
        try:
            os.unlink(temporary)
        except OSError:
            return


class _InlineSecret(Exception):
    """A password that no secret file gave: the config is not cached."""


#: the field of a record that holds a secret
_SECRET_FIELD = "password"


def _plain(value: Any, secrets: list[str]) -> Any:
    """A Config as what marshal stores, without its secrets: each record a tuple starting with
    its class name as bytes (a config holds no bytes of its own), each password the index of
    the secret file that gave it (an int in a 1-tuple). _InlineSecret when one came from no
    file."""
    if isinstance(value, tuple):
        if not hasattr(value, "_fields"):
            return tuple(_plain(v, secrets) for v in value)
        items = []
        for field, v in zip(value._fields, value, strict=True):
            if field == _SECRET_FIELD and v is not None:
                if v not in secrets:
                    raise _InlineSecret
                items.append((secrets.index(v),))
            else:
                items.append(_plain(v, secrets))
        return (type(value).__name__.encode(), *items)
    if isinstance(value, dict):
        return {k: _plain(v, secrets) for k, v in value.items()}
    return value


def _restore(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, tuple):
        if value and isinstance(value[0], bytes):
            cls = _RECORDS[value[0].decode()]
            items: list[Any] = [
                secrets[v[0]] if field == _SECRET_FIELD and isinstance(v, tuple) else
                _restore(v, secrets)
                for field, v in zip(cls._fields, value[1:], strict=True)
            ]  # fmt: skip
            return cls(*items)
        return tuple(_restore(v, secrets) for v in value)
    if isinstance(value, dict):
        return {k: _restore(v, secrets) for k, v in value.items()}
    return value
