"""Estimators with their own canvas: same images and folds, another rendering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from karyobench.errors import ConfigError
from karyobench.evaluation.runner import load_study_dataset, plan_jobs, run_study
from karyobench.study import parse_study
from kb_support import synthetic_dataset, tiny_study


def canvas_study(**estimator_canvas):
    return parse_study(tiny_study(
        synthetic_dataset(canvas={"mode": "native", "size": 16}),
        estimators=[
            {"kind": "rf_pixels", "name": "rf_16px", "params": {"rf__n_estimators": 20}},
            {"kind": "rf_pixels", "name": "rf_24px_fit", "params": {"rf__n_estimators": 20},
             "canvas": {"mode": "fit", "size": 24, **estimator_canvas}},
        ],
        cv={"split": "group", "folds": 2}))


def test_each_estimator_trains_on_its_own_canvas_with_the_same_folds():
    study = canvas_study()
    dataset = load_study_dataset(study)
    assert dataset.images.shape[1:] == (16, 16)
    assert dataset.images_for("fit24").shape == (len(dataset), 24, 24)
    jobs, _, _ = plan_jobs(study, dataset)
    by_name = {}
    for job in jobs:
        by_name.setdefault(job.estimator, []).append(job)
    small, large = by_name["rf_16px"], by_name["rf_24px_fit"]
    assert [j.canvas for j in small] == ["", ""] and [j.canvas for j in large] == ["fit24"] * 2
    for a, b in zip(small, large):  # identical folds, different data fingerprints and keys
        np.testing.assert_array_equal(a.test, b.test)
        assert a.data_fingerprint != b.data_fingerprint and a.key != b.key


def test_run_records_each_canvas_and_reuses_both_on_rerun(tmp_path):
    study = canvas_study()
    first = run_study(study, tmp_path / "out")
    assert first.n_reused == 0 and first.n_jobs == 4
    protocol = json.loads((tmp_path / "out" / "protocol.json").read_text())
    assert protocol["estimator_canvases"]["rf_24px_fit"] == {"mode": "fit", "size": 24}
    assert protocol["estimator_canvases"]["rf_16px"] == {"mode": "native", "size": 16}
    folds = pd.read_parquet(tmp_path / "out" / "folds.parquet")
    assert set(folds["estimator"]) == {"rf_16px", "rf_24px_fit"}
    again = run_study(study, tmp_path / "out")
    assert again.n_reused == 4


def test_too_small_estimator_canvas_names_the_estimator():
    study = parse_study(tiny_study(
        synthetic_dataset(),
        estimators=[{"kind": "resnet", "name": "deep",
                     "params": {"widths": [4, 8, 16, 32, 64]},
                     "canvas": {"mode": "native", "size": 16}}]))
    with pytest.raises(ConfigError, match="estimator 'deep'.*16x16 px canvas is too small"):
        plan_jobs(study, None)


def test_native_channel_stacks_the_native_rendering_behind_the_fit_one(tmp_path):
    study = canvas_study(native_channel=True)
    study.estimators[1] = study.estimators[1].model_copy(update={
        "kind": "resnet", "name": "resnet_fit_native",
        "params": {"widths": [4, 8], "blocks": 1, "epochs": 1, "shape_input": True}})
    dataset = load_study_dataset(study)
    both = dataset.images_for("fit24+native")
    assert both.shape == (len(dataset), 24, 24, 2)
    fit = load_study_dataset(canvas_study()).images_for("fit24")
    native = load_study_dataset(parse_study(tiny_study(
        synthetic_dataset(canvas={"mode": "native", "size": 24})))).images
    np.testing.assert_array_equal(both[..., 0], fit)
    np.testing.assert_array_equal(both[..., 1], native)
    # the native channel keeps relative size: chromosome 1 outgrows 21 there, not on fit
    labels = dataset.labels
    area = (both > 0.1).mean(axis=(1, 2))
    assert area[labels == "1", 1].mean() > 2 * area[labels == "21", 1].mean()
    assert area[labels == "1", 0].mean() < 2 * area[labels == "21", 0].mean()

    summary = run_study(study, tmp_path / "out")
    assert summary.n_jobs == 4
    protocol = json.loads((tmp_path / "out" / "protocol.json").read_text())
    assert protocol["estimator_canvases"]["resnet_fit_native"] == {
        "mode": "fit", "size": 24, "native_channel": True}
    folds = pd.read_parquet(tmp_path / "out" / "folds.parquet")
    assert folds.loc[folds["estimator"] == "resnet_fit_native", "accuracy"].notna().all()


def test_body_channels_beyond_the_canvas_names_the_estimator():
    study = canvas_study()
    study.estimators[1] = study.estimators[1].model_copy(update={
        "kind": "resnet", "name": "wants_two", "params": {"body_channels": 2}})
    with pytest.raises(ConfigError, match="estimator 'wants_two': body_channels=2 but the "
                       "images have 1 channel"):
        plan_jobs(study, load_study_dataset(study))
