"""Where fold jobs run: in-process, in worker processes (joblib/loky), or on dask.

Each backend takes a list of zero-argument calls and yields their results as they
finish, so the caller can persist each fold the moment it ends.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

from karyobench.errors import ConfigError


def sequential(calls, workers: int = 1, scheduler: str | None = None) -> Iterator:
    for call in calls:
        yield call()


def threads_per_worker(backend: str, workers: int) -> int | None:
    """TensorFlow threads for each fold process: loky's workers share the machine's cores
    (joblib likewise caps their BLAS/OpenMP threads); None leaves the default."""
    if backend == "loky":
        return max(1, (os.cpu_count() or 1) // max(1, workers or 1))
    return None


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
