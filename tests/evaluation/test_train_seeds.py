"""cv.train_seeds: every estimator x fold under several initialisation seeds, the noise
floor in the report, and seed 0 keeping the keys of a one-seed study."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from karyobench.evaluation.runner import load_study_dataset, plan_jobs, run_study
from karyobench.study import parse_study
from kb_support import tiny_study

SYNTH = {"source": "synthetic", "canvas": {"mode": "native", "size": 24},
         "synthetic": {"normal_patients": 6, "cells_per_patient": 1, "seed": 5,
                       "abnormalities": {}}}
TASK = [{"name": "t", "classes": ["1", "2", "3", "4"]}]


def _study(**cv):
    return parse_study(tiny_study(
        SYNTH, tasks=TASK, name="seeds",
        estimators=[{"kind": "rf_pixels", "params": {"rf__n_estimators": 10}},
                    {"kind": "logreg_pixels"}],
        ensembles=[{"name": "vote", "members": ["rf_pixels", "logreg_pixels"]}],
        cv={"split": "group", "folds": 2, **cv}))


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "out"
    cache = tmp_path_factory.mktemp("cache")
    summary = run_study(_study(train_seeds=3), out, cache_dir=cache)
    return out, cache, summary


def test_seed_zero_keeps_the_keys_of_a_one_seed_study(tmp_path):
    one, three = _study(), _study(train_seeds=3)
    dataset = load_study_dataset(one, tmp_path)
    keys_one = {j.key for j in plan_jobs(one, dataset)[0]}
    jobs_three = plan_jobs(three, dataset)[0]
    assert {j.key for j in jobs_three if j.train_seed == 0} == keys_one
    assert not keys_one & {j.key for j in jobs_three if j.train_seed > 0 and j.kind == "rf_pixels"}


def test_seed_k_is_the_study_seed_plus_k_as_a_plain_parameter(tmp_path):
    """Seed k of a job is random_state = study seed + k: the key of a study that set it by
    hand, so such folds are recovered instead of retrained."""
    three = _study(train_seeds=3)
    by_hand = parse_study(tiny_study(
        SYNTH, tasks=TASK, name="by_hand",
        estimators=[{"kind": "rf_pixels", "params": {"rf__n_estimators": 10,
                                                     "rf__random_state": 3}}],
        cv={"split": "group", "folds": 2}))
    dataset = load_study_dataset(three, tmp_path)
    seed_two = {j.key for j in plan_jobs(three, dataset)[0]
                if j.kind == "rf_pixels" and j.train_seed == 2}
    assert seed_two == {j.key for j in plan_jobs(by_hand, dataset)[0]}


def test_every_fold_is_trained_under_each_seed(seeded_run):
    out, _, summary = seeded_run
    folds = pd.read_parquet(out / "folds.parquet")
    counts = folds.groupby(["estimator", "fold"])["train_seed"].nunique()
    assert (counts == 3).all() and set(counts.index.get_level_values(0)) == {
        "rf_pixels", "logreg_pixels", "vote"}
    rf = folds[folds["estimator"] == "rf_pixels"].pivot(index="fold", columns="train_seed",
                                                        values="accuracy")
    assert rf.nunique(axis=1).max() > 1  # a random forest does move with its seed
    # logistic regression (lbfgs) declares a random_state, so it is trained per seed,
    # but it has no seed noise
    logreg = folds[folds["estimator"] == "logreg_pixels"].pivot(
        index="fold", columns="train_seed", values="accuracy")
    assert logreg.nunique(axis=1).max() == 1
    environment = json.loads((out / "environment.json").read_text())
    assert environment["folds_computed"] == 2 * 2 * 3


def test_report_gives_the_floor_and_marks_comparisons(seeded_run):
    out = seeded_run[0]
    floors = pd.read_csv(out / "noise_floor.csv")
    rf = floors[floors["estimator"] == "rf_pixels"].iloc[0]
    assert rf["n_seeds"] == 3 and rf["seed_sd"] > 0 and 0 < rf["changed"] < 1
    logreg = floors[floors["estimator"] == "logreg_pixels"].iloc[0]
    assert logreg["seed_sd"] == 0 and logreg["changed"] == 0
    ttests = pd.read_csv(out / "ttests.csv")
    assert ttests["noise_floor"].notna().all()
    row = ttests[(ttests["estimator_a"] == "rf_pixels")
                 & (ttests["estimator_b"] == "logreg_pixels")].iloc[0]
    assert row["under_floor"] == (abs(row["mean_diff"]) < row["noise_floor"])
    # the comparison uses seed-averaged fold scores
    folds = pd.read_parquet(out / "folds.parquet")
    seed_mean = folds[folds["estimator"] == "rf_pixels"].groupby("fold")["accuracy"].mean()
    assert row["accuracy_a"] == pytest.approx(seed_mean.mean())
    assert "under floor" in (out / "ttests.md").read_text() or \
        "exceeds" in (out / "ttests.md").read_text()


def test_rerun_reuses_every_seed(seeded_run):
    out, cache, _ = seeded_run
    summary = run_study(_study(train_seeds=3), out, cache_dir=cache)
    assert summary.n_reused == summary.n_jobs


def test_one_seed_study_has_no_seed_column_nor_floor(tmp_path):
    out = tmp_path / "out"
    run_study(_study(), out, cache_dir=tmp_path / "cache")
    assert "train_seed" not in pd.read_parquet(out / "folds.parquet").columns
    assert not (out / "noise_floor.md").exists()
    assert "not measured" in (out / "ttests.md").read_text()


def test_a_numerics_version_changes_the_key_and_zero_keeps_it(tmp_path, monkeypatch):
    from karyobench.estimators import registry

    study = _study()
    dataset = load_study_dataset(study, tmp_path)
    before = {j.key for j in plan_jobs(study, dataset)[0] if j.kind == "rf_pixels"}
    monkeypatch.setitem(registry._NUMERICS_VERSION, "rf_pixels", 0)
    assert {j.key for j in plan_jobs(study, dataset)[0] if j.kind == "rf_pixels"} == before
    monkeypatch.setitem(registry._NUMERICS_VERSION, "rf_pixels", 1)
    after = {j.key for j in plan_jobs(study, dataset)[0] if j.kind == "rf_pixels"}
    assert after and not after & before
