"""The README's main path: a study on the embedded synthetic data, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from PIL import Image

STUDY = """
name: synth_small
seed: 3
dataset:
  source: synthetic
  synthetic:
    seed: 3
    normal_patients: 3
    cells_per_patient: 2
    abnormalities:
      "del(5)(p14)": {patients: 3, images: 12}
  canvas: {size: 24}
tasks:
  - {name: chr5_vs_del5p14, classes: ["5", "del(5)(p14)"]}
estimators:
  - kind: dcnn
    params: {epochs: 2, conv_filters: [4, 8], dense_units: [16]}
  - kind: svm_linear_pixels
cv: {folds: 3}
"""


def _karyobench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "karyobench.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_run")
    (root / "study.yaml").write_text(textwrap.dedent(STUDY))
    done = _karyobench("run", "study.yaml", "--out", "out", "--cache-dir", "cache", cwd=root)
    return root, done


def test_run_on_synthetic_data_writes_grouped_results(synthetic_run):
    root, done = synthetic_run
    assert done.returncode == 0, done.stderr
    out = root / "out"
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["splits"] == ["group"] and protocol["group_column"] == "patient_id"
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert set(predictions["y_true"]) == {"5", "del(5)(p14)"}
    per_estimator = predictions.groupby("estimator")["sample"]
    assert all(s.is_unique for _, s in per_estimator)  # each image tested exactly once
    assert per_estimator.size().nunique() == 1
    for (estimator, fold), test_rows in predictions.groupby(["estimator", "fold"]):
        others = predictions[(predictions.estimator == estimator) & (predictions.fold != fold)]
        assert not set(test_rows["group"]) & set(others["group"])
    assert "leakage check" in done.stderr


def test_rerun_of_unchanged_study_reuses_every_fold(synthetic_run):
    root, first = synthetic_run
    before = pd.read_parquet(root / "out" / "folds.parquet")
    again = _karyobench("run", "study.yaml", "--out", "out", "--cache-dir", "cache", cwd=root)
    assert again.returncode == 0, again.stderr
    assert "reusing 6 finished fold(s)" in again.stderr
    after = pd.read_parquet(root / "out" / "folds.parquet")
    pd.testing.assert_frame_equal(before, after)


def test_synth_command_writes_a_dataset_the_loader_reads(tmp_path):
    done = _karyobench("synth", "--out", "data", "--patients", "2", "--cells-per-patient", "1",
                       "--abnormal", "inv(9)(p12q13)", "--seed", "5",
                       "--preview", "karyogram.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from karyobench.data import load_dataset

    dataset = load_dataset("manifest", path=tmp_path / "data" / "manifest.csv",
                           canvas_size=32, cache_dir=tmp_path / "cache")
    assert "inv(9)(p12q13)" in set(dataset.labels)
    assert {"patient_id", "cell_id"} <= set(dataset.groups)
    # G-band crops (dark on light) arrive bright-on-dark: the canvas border is background.
    corners = dataset.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    centre = dataset.images[:, 12:20, 12:20]
    assert corners.mean() < 0.05 < centre.mean()
    with Image.open(tmp_path / "karyogram.png") as preview:
        assert min(preview.size) > 300


def test_bad_iscn_string_is_one_clear_error(tmp_path):
    done = _karyobench("synth", "--out", "data", "--abnormal", "del(5)(p99)", cwd=tmp_path)
    assert done.returncode == 2
    assert "p99" in done.stderr and "Traceback" not in done.stderr


def test_rerun_redraws_the_report_only_when_the_tables_change(synthetic_run):
    root, _ = synthetic_run
    out = root / "out"
    summary = out / "summary.md"
    rerun = ("run", "study.yaml", "--out", "out", "--cache-dir", "cache")
    summary.unlink()
    assert _karyobench(*rerun, cwd=root).returncode == 0
    assert not summary.exists()  # nothing changed: the report was not redrawn
    folds = pd.read_parquet(out / "folds.parquet")
    folds["accuracy"] = 0.123456  # a stale table: metrics are recomputed from predictions
    folds.to_parquet(out / "folds.parquet", index=False)
    fixed = _karyobench(*rerun, cwd=root)
    assert fixed.returncode == 0, fixed.stderr
    assert summary.is_file() and "0.123" not in summary.read_text()
    assert (pd.read_parquet(out / "folds.parquet")["accuracy"] != 0.123456).all()
