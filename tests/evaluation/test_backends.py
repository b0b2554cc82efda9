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
