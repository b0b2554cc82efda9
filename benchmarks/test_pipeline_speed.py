"""Everything around the network: decode/cache, HOG, one fold, re-runs, parallel folds.

All on a BioImLab subset (a seeded sample of karyotypes, read through the manifest).
"""

from __future__ import annotations

import functools
import itertools
import time

import numpy as np
import pytest

from conftest import BIOIMLAB_MANIFEST, FIGURES, best_of, note, require_bioimlab

from karyobench.data import load_dataset
from karyobench.estimators.features import HOGFeatures
from karyobench.evaluation import backends
from karyobench.evaluation.fold import run_fold
from karyobench.evaluation.runner import load_study_dataset, plan_jobs, run_study
from karyobench.report import write_report as _write_report
from karyobench.study import parse_study
from karyobench import tasks as task_selection

_fresh = itertools.count()
AUTOSOMES_X = [str(i) for i in range(1, 23)] + ["X"]  # Y is too rare in small subsets


def subset(n_groups: int, size: int = 64) -> dict:
    return dict(source="manifest", path=str(BIOIMLAB_MANIFEST), group_column="karyotype_id",
                limit_groups=n_groups, canvas={"mode": "native", "size": size})


def study(name: str, n_groups: int, size: int, estimators: list[str], folds: int = 3):
    return parse_study(dict(name=name, seed=1, dataset=subset(n_groups, size),
                            tasks=[{"name": "autosomes_x", "classes": AUTOSOMES_X}],
                            estimators=[{"kind": k} for k in estimators],
                            cv={"split": "group", "folds": folds}))


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """A private karyobench cache (canvases and HOG features) for this benchmark."""
    require_bioimlab()
    monkeypatch.setenv("KARYOBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _load(cache_dir):
    return load_dataset("manifest", path=BIOIMLAB_MANIFEST, canvas_size=64,
                        limit_groups=5, group_column="karyotype_id", cache_dir=cache_dir)


def test_load_dataset_cold_vs_warm(benchmark, cache_root):
    """Decode + polarity + canvas (cold) vs reading the cached canvases (warm)."""
    cold = best_of(lambda: _load(cache_root / f"cold{next(_fresh)}"), rounds=2)
    warm_dir = cache_root / "warm"
    dataset = _load(warm_dir)
    benchmark.pedantic(lambda: _load(warm_dir), rounds=5, iterations=1)
    warm = benchmark.stats.stats.min
    note(benchmark, images=len(dataset), cold_s=cold, warm_s=warm,
         cold_images_per_second=len(dataset) / cold, warm_over_cold=warm / cold)
    assert warm < cold


@pytest.fixture(scope="module")
def hog_images():
    require_bioimlab()
    return _load(None).images


def test_hog_extraction(benchmark, hog_images):
    """HOG images/s at 64 px (no cache)."""
    hog = HOGFeatures().fit(hog_images)
    benchmark.pedantic(hog.transform, args=(hog_images,), rounds=2, iterations=1)
    ips = len(hog_images) / benchmark.stats.stats.min
    FIGURES["hog_cold_s"] = benchmark.stats.stats.min
    note(benchmark, images=len(hog_images), images_per_second=ips)


def test_hog_cache_cold_vs_warm(benchmark, hog_images, tmp_path):
    """joblib.Memory HOG cache: first transform computes, the next ones read the disk."""
    cold = best_of(lambda: HOGFeatures(memory=tmp_path / f"c{next(_fresh)}")
                   .fit(hog_images).transform(hog_images), rounds=2)
    warm_hog = HOGFeatures(memory=tmp_path / "warm").fit(hog_images)
    reference = warm_hog.transform(hog_images)
    result = benchmark.pedantic(warm_hog.transform, args=(hog_images,), rounds=5,
                                iterations=1)
    assert np.array_equal(result, reference)
    warm = benchmark.stats.stats.min
    note(benchmark, images=len(hog_images), cold_s=cold, warm_s=warm,
         warm_over_cold=warm / cold, speedup=cold / warm)
    assert warm < cold


def _jobs(the_study, cache_dir):
    dataset = load_study_dataset(the_study, cache_dir)
    jobs, _, _ = plan_jobs(the_study, dataset)
    task = the_study.tasks[0]
    return jobs, dataset.images, task_selection.relabel(task, dataset.labels)


def test_one_fold_rf_hog(benchmark, cache_root):
    """One grouped fold of rf_hog (cold HOG cache): fit + predict + metrics."""
    jobs, images, labels = _jobs(study("fold", 10, 64, ["rf_hog"]), cache_root / "cache")
    job = jobs[0]
    result = benchmark.pedantic(run_fold, args=(job, images, labels), rounds=1,
                                iterations=1)
    note(benchmark, train_images=len(job.train), test_images=len(job.test),
         fit_s=result.fit_seconds, predict_s=result.predict_seconds,
         accuracy=result.metrics.get("accuracy", float("nan")))


def test_rerun_unchanged_study(benchmark, cache_root):
    """A re-run of an unchanged study reuses every fold (target: <= 5% of the first)."""
    the_study = study("rerun", 8, 32, ["svm_rbf_hog", "rf_pixels"])
    out, cache = cache_root / "out", cache_root / "cache"
    start = time.perf_counter()
    first = run_study(the_study, out, cache_dir=cache)
    first_s = time.perf_counter() - start
    again = benchmark.pedantic(run_study, args=(the_study, out), kwargs={"cache_dir": cache},
                               rounds=2, iterations=1)
    assert again.n_reused == again.n_jobs == first.n_jobs
    rerun_s = benchmark.stats.stats.min
    report_s = best_of(lambda: _write_report(out), rounds=1)
    note(benchmark, folds=first.n_jobs, first_run_s=first_s, rerun_s=rerun_s,
         rerun_over_first=rerun_s / first_s, report_render_s=report_s,
         rerun_without_report_over_first=max(rerun_s - report_s, 0) / first_s)
    assert rerun_s < first_s


def test_two_folds_loky_vs_sequential(benchmark, cache_root):
    """Two rf_pixels folds: loky with 2 workers vs one after the other (target <= 0.6x)."""
    jobs, images, labels = _jobs(study("par", 10, 32, ["rf_pixels"]), cache_root / "cache")
    calls = [functools.partial(run_fold, job, images, labels) for job in jobs[:2]]
    # The first loky run pays each worker's imports (TensorFlow via the registry): timed
    # apart as the cold start; the measured run reuses joblib's warm worker pool.
    cold_parallel = best_of(lambda: list(backends.loky(calls, workers=2)), rounds=1)
    sequential = best_of(lambda: list(backends.sequential(calls)), rounds=1)
    parallel = []

    def run_parallel():
        start = time.perf_counter()
        results = list(backends.loky(calls, workers=2))
        parallel.append(time.perf_counter() - start)
        return results

    results = benchmark.pedantic(run_parallel, rounds=1, iterations=1)
    sequential = min(sequential, best_of(lambda: list(backends.sequential(calls)), 1))
    by_key = {r.job.key: r for r in backends.sequential(calls[:1])}
    for result in results:
        if result.job.key in by_key:
            assert np.array_equal(result.proba, by_key[result.job.key].proba)
    note(benchmark, folds=2, sequential_s=sequential, loky_s=min(parallel),
         loky_cold_start_s=cold_parallel, loky_over_sequential=min(parallel) / sequential,
         loky_cold_over_sequential=cold_parallel / sequential)
    # Target <= 0.6x on an idle 2-core machine; under foreign load the share of the
    # cores both workers get shrinks, so only a clearly broken backend fails here.
    assert min(parallel) / sequential < 1.5, "two loky workers are slower than one"
