"""Where fold jobs run: in-process, in worker processes (joblib/loky), or on dask.

Each backend takes a list of zero-argument calls and yields their results as they
finish, so the caller can persist each fold the moment it ends.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from karyobench.errors import ConfigError

#: resident memory one TensorFlow fold process may reach (a 30-epoch ResNet fold on
#: BioImLab peaks near 1.4 GB): automatic parallelism never starts more workers than the
#: machine's available memory holds at this size each
WORKER_MEMORY_BYTES = 2 * 1024 ** 3


@dataclass(frozen=True)
class Execution:
    """How a run executes its folds: ``backend`` (a key of :data:`BACKENDS`), parallel
    ``workers``, TensorFlow ``threads`` per fold process (None: TensorFlow's default, every
    core) and ``source``, which says who chose: the command line, the study file's
    ``execution`` key or, with neither, the automatic default (every core)."""

    backend: str
    workers: int
    threads: int | None
    source: str

    def describe(self) -> dict:
        """The entries ``environment.json`` records."""
        return {"backend": self.backend, "workers": self.workers,
                "tf_threads_per_worker": self.threads, "execution_source": self.source}


def resolve(backend: str | None, workers: int | None, n_jobs: int, *,
            cores: int | None = None, available_memory: int | None = None,
            source: str = "study file") -> Execution:
    """The execution of a run with ``n_jobs`` folds to train.

    ``backend`` "auto" (a study without an ``execution`` key) uses every core: as many
    loky workers as there are cores, folds to train and memory for
    :data:`WORKER_MEMORY_BYTES` each, and ``cores // workers`` TensorFlow threads in each,
    so workers x threads never exceeds the cores; one worker means this process with every
    core. ``workers`` alone (no backend) means that many loky workers. An explicit backend
    is kept as given (loky without ``workers``: one per core).
    ``cores`` and ``available_memory`` default to this machine's.
    """
    cores = cores or os.cpu_count() or 1
    if backend == "auto" and workers:  # a worker count alone: that many local processes
        backend = "loky" if workers > 1 else "sequential"
    if backend == "auto":
        memory = _available_memory() if available_memory is None else available_memory
        fits = max(1, memory // WORKER_MEMORY_BYTES) if memory else cores
        backend, workers = "loky", max(1, min(cores, n_jobs, fits))
        source = "default: every core"
        if workers == 1:
            backend = "sequential"
    if backend == "loky":
        n = workers or cores
        return Execution("loky", n, max(1, cores // n), source)
    if backend == "dask":
        return Execution("dask", workers or 1, None, source)
    return Execution("sequential", 1, None, source)


def _available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux ``MemAvailable``; None when the
    platform does not say)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def sequential(calls, workers: int = 1, scheduler: str | None = None) -> Iterator:
    for call in calls:
        yield call()


def loky(calls, workers: int = 2, scheduler: str | None = None) -> Iterator:
    from joblib import Parallel, delayed

    with warnings.catch_warnings():
        # loky replaces a worker whose memory grew by 300 MB (a TensorFlow fold does) and
        # then warns that "a worker stopped" although no job is lost; a worker that really
        # dies raises TerminatedWorkerError instead. Fixed upstream in loky PR #641
        # (joblib issue #869). Silenced for this run only.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were "
                                "given", category=UserWarning,
                                module=r"joblib\.externals\.loky\.")
        yield from Parallel(n_jobs=workers, backend="loky",
                            return_as="generator_unordered")(
            delayed(_invoke)(call) for call in calls)


def dask(calls, workers: int = 1, scheduler: str | None = None) -> Iterator:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("execution.backend 'dask' needs dask.distributed: "
                          "pip install 'karyobench[dask]'.") from None
    client = Client(scheduler) if scheduler else Client(n_workers=workers,
                                                        threads_per_worker=1,
                                                        processes=True)
    try:
        futures = [client.submit(_invoke, call, pure=False) for call in calls]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()


def _invoke(call: Callable):
    return call()


BACKENDS = {"sequential": sequential, "loky": loky, "dask": dask}
