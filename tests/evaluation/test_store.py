"""The results folder: atomic writes, the one-writer lock, per-fold persistence."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from karyobench.errors import KaryobenchError
from karyobench.evaluation.fold import FoldJob, FoldResult
from karyobench.evaluation.store import (ResultsStore, atomic_write_bytes,
                                         atomic_write_parquet, atomic_write_text)


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "file.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_atomic_write_failure_keeps_old_content(tmp_path):
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old")
    (tmp_path / "dir_target").mkdir()
    with pytest.raises(KaryobenchError, match="cannot write"):
        atomic_write_bytes(tmp_path / "dir_target", b"x")  # rename onto a folder fails
    assert target.read_text() == "old"
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_write_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(KaryobenchError):
        atomic_write_text(tmp_path / "afile" / "sub" / "x.txt", "y")


def test_atomic_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    atomic_write_parquet(tmp_path / "f.parquet", frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), frame)


def test_lock_refuses_a_second_writer_with_a_clear_message(tmp_path):
    store = ResultsStore(tmp_path / "out")
    with store.lock():
        assert "pid" in (tmp_path / "out" / ".lock").read_text()
        with pytest.raises(KaryobenchError, match=r"is in use by karyobench run \(pid "
                                                  r"\d+\); wait for it to finish or pass "
                                                  r"a different --out"):
            with ResultsStore(tmp_path / "out").lock():
                pass
    with store.lock():  # released on exit
        pass


def test_lock_refuses_another_process(tmp_path):
    out = tmp_path / "out"
    store = ResultsStore(out)
    code = ("import sys\nfrom karyobench.evaluation.store import ResultsStore\n"
            "from karyobench.errors import KaryobenchError\n"
            "try:\n    ResultsStore(sys.argv[1]).lock().__enter__()\n"
            "except KaryobenchError as e:\n    print(e); sys.exit(3)\n")
    with store.lock():
        child = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                               text=True, timeout=60)
    assert child.returncode == 3, child.stderr
    assert f"pid {os.getpid()}" in child.stdout


def test_unwritable_results_folder(tmp_path):
    (tmp_path / "afile").write_text("a regular file, not a folder")
    with pytest.raises(KaryobenchError, match=r"results folder '.*afile/sub' is not "
                                              r"writable \(.*\); choose another with --out"):
        with ResultsStore(tmp_path / "afile" / "sub").lock():
            pass


def _result(fold, test):
    job = FoldJob(split="group", task="t", estimator="e", kind="svm_linear_pixels",
                  params={}, repeat=0, fold=fold, seed=1, classes=("a", "b"),
                  train=np.setdiff1d(np.arange(6), test), test=np.asarray(test))
    proba = np.tile([0.7, 0.3], (len(test), 1))
    return FoldResult(job, {"accuracy": 0.5}, np.array(["a"] * len(test)), proba, 1.0, 0.1)


def test_save_has_load_assemble(tmp_path):
    store = ResultsStore(tmp_path)
    store.prepare()
    paths = np.array([f"img{i}.png" for i in range(6)])
    groups = np.array(["g0", "g0", "g1", "g1", "g2", "g2"])
    labels = np.array(["a", "b"] * 3)
    results = [_result(0, [0, 1]), _result(1, [2, 3]), _result(2, [4, 5])]
    assert not store.has(results[0].job)
    for result in results:
        store.save(result, paths, groups, labels)
    assert all(store.has(r.job) for r in results)
    record, frame = store.load(results[1].job)
    assert record["n_test"] == 2 and record["accuracy"] == 0.5
    assert frame["group"].tolist() == ["g1", "g1"] and frame["p_a"].tolist() == [0.7, 0.7]
    folds, predictions = store.assemble([r.job for r in results])
    assert folds["fold"].tolist() == [0, 1, 2]
    assert sorted(predictions["sample"]) == list(range(6))
    assert (tmp_path / "folds.parquet").is_file() and (tmp_path / "predictions.parquet").is_file()
    json.loads((store.jobs_dir / f"{results[0].job.key}.json").read_text())
