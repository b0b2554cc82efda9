"""Progress inside a running fold: the Keras loop records each epoch in the fold's
progress file, the fold core names the fold and removes the file, the CLI bar shows it."""

from __future__ import annotations

import json
import threading

import numpy as np

from karyobench import progress
from karyobench.context import RunContext, using
from karyobench.estimators import build
from karyobench.evaluation.fold import FoldJob, run_fold
from kb_support import TINY_DCNN


def _data(n=24, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size)).astype(np.float32)
    labels = np.array(["1", "2"] * (n // 2))
    return images, labels


def test_keras_training_records_every_epoch_and_trains_the_same(tmp_path):
    images, labels = _data()
    params = dict(TINY_DCNN, epochs=3)
    plain = build("dcnn", params, random_state=1).fit(images, labels)
    report = tmp_path / "job.progress"
    progress.started(report, "t · dcnn · group fold 0")
    with using(RunContext(progress_file=report)):
        watched = build("dcnn", params, random_state=1).fit(images, labels)
    assert json.loads(report.read_text()) == {"label": "t · dcnn · group fold 0",
                                              "epoch": 3, "epochs": 3}
    # recording progress reads nothing of the model: the same weights, bit for bit
    np.testing.assert_array_equal(plain.predict_proba(images), watched.predict_proba(images))


def test_the_fold_core_names_the_running_fold_and_removes_its_file(tmp_path):
    images, labels = _data()
    job = FoldJob(split="group", task="t", estimator="dcnn_tiny", kind="dcnn",
                  params=dict(TINY_DCNN, epochs=4), repeat=0, fold=2, seed=1,
                  classes=("1", "2"), train=np.arange(16), test=np.arange(16, 24),
                  data_fingerprint="synthetic")
    seen, done = set(), threading.Event()

    def watch():
        while not done.is_set():
            seen.update(progress.running(tmp_path))
            done.wait(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with using(RunContext(progress_dir=tmp_path)):
            run_fold(job, images, labels)
    finally:
        done.set()
        watcher.join()
    assert "t · dcnn_tiny · group fold 2" in {line.split(" epoch")[0] for line in seen}
    assert not list(tmp_path.glob(f"*{progress.SUFFIX}"))  # gone when the fold ends


def test_the_bar_lists_running_folds_and_a_new_run_clears_stale_ones(tmp_path):
    from karyobench.cli import _RunningFolds

    progress.started(tmp_path / "b.progress", "t · resnet · group fold 1")
    progress.epoch_done(tmp_path / "b.progress", 7, 30)
    progress.started(tmp_path / "a.progress", "t · svm · group fold 0")
    (tmp_path / "c.progress").write_text("{not json")  # half-written: passed over
    assert progress.running(tmp_path) == ["t · svm · group fold 0",
                                          "t · resnet · group fold 1 epoch 7/30"]
    column = _RunningFolds()
    assert column.render(None).plain == ""
    column.folder = tmp_path
    assert column.render(None).plain == ("running: t · svm · group fold 0; "
                                         "t · resnet · group fold 1 epoch 7/30")
    progress.clear(tmp_path)
    assert progress.running(tmp_path) == [] and not list(tmp_path.iterdir())
