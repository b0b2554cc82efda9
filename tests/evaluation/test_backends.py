"""Parallel fold backends give exactly the sequential results (tiny real study, baselines)."""

from __future__ import annotations

import pandas as pd
import pytest

from kb_support import bioimlab_dataset, tiny_study

from karyobench.evaluation.runner import run_study
from karyobench.study import parse_study

#: columns that differ between runs by design (timings)
VOLATILE = ("fit_seconds", "predict_seconds")


@pytest.fixture(scope="module")
def study(bioimlab_manifest_path):
    return parse_study(tiny_study(
        bioimlab_dataset(limit_groups=6, canvas={"mode": "native", "size": 16}),
        name="backends", tasks=[{"name": "t", "classes": ["1", "2", "3", "4"]}],
        estimators=[{"kind": "svm_linear_pixels"},
                    {"kind": "rf_pixels", "params": {"rf__n_estimators": 20}}],
        cv={"split": "group", "folds": 3}))


@pytest.fixture(scope="module")
def bioimlab_manifest_path(bioimlab_manifest):
    return bioimlab_manifest


@pytest.fixture(scope="module")
def sequential_run(study, tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential")
    summary = run_study(study, root / "out", backend="sequential", cache_dir=root / "cache")
    return summary, pd.read_parquet(root / "out" / "predictions.parquet")


def _comparable(folds: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in folds.columns if not any(v in c for v in VOLATILE)]
    ident = ["split", "task", "estimator", "repeat", "fold"]
    return folds[keep].sort_values(ident).reset_index(drop=True)


def _assert_same(run, reference):
    summary, predictions = run
    ref_summary, ref_predictions = reference
    assert summary.n_jobs == ref_summary.n_jobs and summary.n_reused == 0
    pd.testing.assert_frame_equal(_comparable(summary.folds), _comparable(ref_summary.folds))
    order = ["split", "task", "estimator", "repeat", "fold", "sample"]
    a = predictions.sort_values(order).reset_index(drop=True)
    b = ref_predictions.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_loky_gives_the_sequential_results(study, sequential_run, tmp_path):
    summary = run_study(study, tmp_path / "out", backend="loky", workers=2,
                        cache_dir=tmp_path / "cache")
    _assert_same((summary, pd.read_parquet(tmp_path / "out" / "predictions.parquet")),
                 sequential_run)


def test_dask_local_cluster_gives_the_sequential_results(study, sequential_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        summary = run_study(study, tmp_path / "out", backend="dask",
                            scheduler=cluster.scheduler_address,
                            cache_dir=tmp_path / "cache")
    _assert_same((summary, pd.read_parquet(tmp_path / "out" / "predictions.parquet")),
                 sequential_run)


LEAKY_RUN = """
import os, sys, time
from functools import partial
from karyobench.evaluation.backends import loky

def leak(i):
    # keep 350 MB alive in the worker, past loky's 300 MB recycling threshold
    sys.__dict__.setdefault("_kb_kept", []).append(b"\\x01" * 350_000_000)
    time.sleep(1.2)
    return i, os.getpid()

results = list(loky([partial(leak, i) for i in range(6)], workers=2))
print(sorted(i for i, _ in results), len({pid for _, pid in results}))
"""


def test_loky_recycling_a_grown_worker_is_silent_and_loses_nothing():
    """A worker whose memory grew (as a TensorFlow fold's does) is replaced by loky; the
    run keeps every result and the console shows no 'a worker stopped' warning."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LEAKY_RUN], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    indices, n_pids = done.stdout.strip().rsplit("] ", 1)
    assert indices + "]" == str(list(range(6)))
    assert int(n_pids) > 2  # workers really were recycled
    assert "worker stopped" not in done.stderr


def test_a_study_without_execution_uses_every_core(study, sequential_run, tmp_path):
    """No ``execution`` key: the run picks the execution itself (loky over the cores when
    the machine has several), records the choice and gives the sequential results."""
    import json
    import os

    assert "execution" not in study.model_fields_set
    summary = run_study(study, tmp_path / "out", cache_dir=tmp_path / "cache")
    _assert_same((summary, pd.read_parquet(tmp_path / "out" / "predictions.parquet")),
                 sequential_run)
    environment = json.loads((tmp_path / "out" / "environment.json").read_text())
    assert environment["execution_source"] == "default: every core"
    cores = os.cpu_count() or 1
    if cores > 1:
        assert environment["backend"] == "loky" and environment["workers"] > 1
        assert environment["workers"] * environment["tf_threads_per_worker"] <= cores
    else:
        assert environment["backend"] == "sequential"


def test_an_explicit_backend_wins_over_the_default(study, tmp_path):
    import json

    explicit = study.model_copy(update={"execution": type(study.execution)(
        backend="sequential")})
    run_study(explicit, tmp_path / "out", cache_dir=tmp_path / "cache")
    environment = json.loads((tmp_path / "out" / "environment.json").read_text())
    assert (environment["backend"], environment["execution_source"]) == (
        "sequential", "study file")


class _Order:
    """A run's progress sink that records the estimator of each finished fold."""

    def __init__(self):
        self.finished = []

    def start(self, total, reused, running=None):
        self.total = total

    def advance(self, result):
        self.finished.append(result.job.estimator)


def test_network_folds_run_before_the_quick_baselines(bioimlab_manifest_path, tmp_path):
    """Longest first: listed after the baselines, the DCNN's folds still start first, so
    parallel workers end on quick folds; the tables keep the study's order."""
    study = parse_study(tiny_study(
        bioimlab_dataset(limit_groups=4, canvas={"mode": "native", "size": 16}),
        name="order", tasks=[{"name": "t", "classes": ["1", "2"]}],
        estimators=[{"kind": "svm_linear_pixels"},
                    {"kind": "dcnn", "params": {"epochs": 1, "conv_filters": [4],
                                                "dense_units": [8], "padding": "same"}}],
        cv={"split": "group", "folds": 2}))
    order = _Order()
    summary = run_study(study, tmp_path / "out", backend="sequential",
                        cache_dir=tmp_path / "cache", progress=order)
    assert order.finished == ["dcnn", "dcnn", "svm_linear_pixels", "svm_linear_pixels"]
    assert summary.folds.estimator.tolist() == ["svm_linear_pixels"] * 2 + ["dcnn"] * 2
