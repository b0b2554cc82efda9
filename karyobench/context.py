"""The run context: what a run hands down to the code it calls (cache folder, threads).

A run used to publish these by editing ``os.environ`` (``KARYOBENCH_CACHE``,
``KARYOBENCH_TF_THREADS``), which outlived the run and leaked into the caller's process
and into later runs. Instead the run loop activates a :class:`RunContext` for its own
duration (:func:`using`) and sends it along with every fold call (:func:`call_in`), so a
worker process (loky, dask) sees the same settings without inheriting an environment.
The environment variables are still read, as defaults, when no context is active.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunContext:
    """``cache_dir``: decoded images and HOG features (None: ``KARYOBENCH_CACHE`` or
    ``~/.cache/karyobench``); ``threads``: TensorFlow threads per fold process (None:
    ``KARYOBENCH_TF_THREADS`` or TensorFlow's default); ``progress_dir``: where running
    folds say how far they are (``<key>.progress``, read by the CLI's progress bar; None:
    nowhere); ``progress_file``: the running fold's own file (set by the fold core)."""

    cache_dir: Path | None = None
    threads: int | None = None
    progress_dir: Path | None = None
    progress_file: Path | None = None


_ACTIVE: ContextVar[RunContext] = ContextVar("karyobench_run_context", default=RunContext())


def current() -> RunContext:
    """The active run context (an empty one outside a run)."""
    return _ACTIVE.get()


@contextmanager
def using(context: RunContext):
    """Make ``context`` the active one for the duration of the block."""
    token = _ACTIVE.set(context)
    try:
        yield context
    finally:
        _ACTIVE.reset(token)


def call_in(context: RunContext, call):
    """``call()`` with ``context`` active: what a fold call runs in a worker process."""
    with using(context):
        return call()
