"""Optuna storage: a URL, so one process, K workers or many machines is a setting.

* default: ``sqlite:///<results>/tuning.sqlite3`` (resumable; many writers contend);
* any SQLAlchemy URL Optuna accepts, e.g. ``postgresql://user@host/karyobench``.

Exact trial budgets across concurrent workers: a worker takes a new trial only while
holding a *claim lock* (a PostgreSQL advisory lock, or a file lock beside a SQLite file),
after counting the trials already finished or running. So N requested trials are exactly
N trials whatever the number of workers. A heartbeat thread marks a worker's trial alive;
trials of crashed workers become FAIL after the grace period and are replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path

import optuna

from karyobench.errors import ConfigError

DEFAULT_DB = "tuning.sqlite3"
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 60

_ENGINES: dict[str, object] = {}
_STORAGES: dict[tuple, optuna.storages.BaseStorage] = {}


def default_storage_url(out_dir: Path) -> str:
    return f"sqlite:///{(Path(out_dir) / DEFAULT_DB).resolve()}"


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def normalize_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; the ``postgres`` extra
    installs psycopg2-binary, so pick ``+psycopg2`` when only that one is importable.
    """
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            import importlib.util

            if importlib.util.find_spec("psycopg") is None and \
                    importlib.util.find_spec("psycopg2") is not None:
                return "postgresql+psycopg2://" + url[len(bare):]
            return "postgresql://" + url[len(bare):]
    return url


@contextlib.contextmanager
def optuna_warnings_only():
    """Optuna's INFO lines (one per trial and study) off for the block, then restored:
    the caller's own logging setup is not ours to change for good."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def get_storage(url: str, heartbeat: bool = True) -> optuna.storages.BaseStorage:
    """An RDB storage (cached per process) with heartbeats so dead workers' trials fail."""
    url = normalize_url(url)
    key = (url, heartbeat)
    if key in _STORAGES:
        return _STORAGES[key]
    path = sqlite_path(url)
    engine_kwargs = {}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several worker processes on one file: wait for the write lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 120}}
    try:
        # Workers starting together on an empty database would race creating the schema.
        with claim_lock(url, "karyobench:schema"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_INTERVAL if heartbeat else None,
                grace_period=GRACE_PERIOD if heartbeat else None)
    except ImportError as err:
        raise ConfigError(f"storage '{redact(url)}' needs a database driver ({err}); for "
                          "PostgreSQL: pip install 'karyobench[postgres]'.") from None
    except Exception as err:  # sqlalchemy.exc.*: bad URL, server down, auth
        raise ConfigError(f"cannot open Optuna storage '{redact(url)}': "
                          f"{type(err).__name__}: {str(err).splitlines()[0]}") from None
    _STORAGES[key] = storage
    return storage


def portable(url: str) -> str:
    """The URL as results record it: a SQLite file relative to the working directory, any
    other storage by its dialect only (no host names, users or passwords in results)."""
    path = sqlite_path(url)
    if path is not None:
        try:
            return f"sqlite:///{os.path.relpath(path)}"
        except ValueError:  # another drive (Windows)
            return f"sqlite:///{path.name}"
    return url.split("://", 1)[0] + "://<server>" if "://" in url else "<storage>"


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


@contextlib.contextmanager
def claim_lock(url: str, study_name: str):
    """Mutual exclusion between workers while they count trials and create one."""
    path = sqlite_path(url)
    if path is not None:
        lock_file = path.with_name(path.name + ".claim.lock")
        with open(lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if url.startswith(("postgresql", "postgres")):
        import sqlalchemy

        url = normalize_url(url)
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = sqlalchemy.create_engine(
                url, poolclass=sqlalchemy.pool.NullPool)
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big",
                             signed=True)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": key})
        return
    logging.getLogger(__name__).warning(
        "no claim lock for storage %s: concurrent workers may overshoot n_trials",
        redact(url))
    yield


class Heartbeat:
    """Record a running trial's heartbeat every few seconds (what ``optimize`` would do)."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        interval = storage.get_heartbeat_interval() if hasattr(
            storage, "get_heartbeat_interval") else None
        self.thread = None
        if interval:
            self.storage.record_heartbeat(trial_id)
            self.thread = threading.Thread(target=self._beat, args=(interval,), daemon=True)

    def _beat(self, interval):
        while not self.stop.wait(interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a missed beat is not worth killing the trial
                pass

    def __enter__(self):
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread:
            self.thread.join(timeout=5)
