"""How a run chooses its execution: every core by default, never more threads than cores."""

from __future__ import annotations

import pytest

from karyobench.evaluation.backends import WORKER_MEMORY_BYTES, resolve

GIB = 1024 ** 3


@pytest.mark.parametrize("cores, jobs, memory, workers, threads", [
    (2, 120, 64 * GIB, 2, 1),        # this project's 2-core machine: both cores busy
    (16, 5, 64 * GIB, 5, 3),         # fewer folds than cores: the rest as TF threads
    (16, 40, 6 * GIB, 3, 5),         # memory for 3 fold processes only
    (8, 40, None, 8, 1),             # the platform does not say: cores decide
])
def test_auto_fills_the_cores_within_folds_and_memory(cores, jobs, memory, workers, threads):
    execution = resolve("auto", None, jobs, cores=cores,
                        available_memory=memory if memory is not None else 0)
    assert (execution.backend, execution.workers, execution.threads) == (
        "loky", workers, threads)
    assert execution.workers * execution.threads <= cores
    assert execution.source == "default: every core"


@pytest.mark.parametrize("cores, jobs, memory", [(1, 50, 8 * GIB), (8, 1, 8 * GIB),
                                                 (8, 50, WORKER_MEMORY_BYTES // 2)])
def test_auto_with_one_worker_runs_in_process_on_every_core(cores, jobs, memory):
    execution = resolve("auto", None, jobs, cores=cores, available_memory=memory)
    assert (execution.backend, execution.workers, execution.threads) == (
        "sequential", 1, None)


def test_an_explicit_execution_is_kept():
    assert resolve("sequential", None, 50, cores=8).describe() == {
        "backend": "sequential", "workers": 1, "tf_threads_per_worker": None,
        "execution_source": "study file"}
    loky = resolve("loky", 3, 50, cores=8, source="command line")
    assert (loky.workers, loky.threads, loky.source) == (3, 2, "command line")
    assert resolve("loky", None, 50, cores=4).workers == 4
    assert resolve("dask", None, 50, cores=4).workers == 1


def test_a_worker_count_without_a_backend_is_honoured():
    three = resolve("auto", 3, 50, cores=8, source="study file")
    assert (three.backend, three.workers, three.threads, three.source) == (
        "loky", 3, 2, "study file")
    assert resolve("auto", 1, 50, cores=8).backend == "sequential"
