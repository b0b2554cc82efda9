"""external: every fold model scored on whole further datasets, never trained on them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from karyobench.errors import ConfigError
from karyobench.evaluation import external
from karyobench.evaluation.runner import run_study
from karyobench.study import parse_study
from kb_support import tiny_study

SYNTH = {"source": "synthetic", "canvas": {"mode": "fit", "size": 24},
         "synthetic": {"normal_patients": 6, "cells_per_patient": 1, "seed": 5,
                       "abnormalities": {}}}
OTHER_LAB = {"name": "other_lab", "source": "synthetic", "group_column": "patient_id",
             "synthetic": {"normal_patients": 3, "cells_per_patient": 1, "seed": 9,
                           "abnormalities": {}}}
TASK = [{"name": "t", "classes": ["1", "2", "3", "4"]}]
ESTIMATORS = [{"kind": "rf_pixels", "params": {"rf__n_estimators": 10}},
              {"kind": "logreg_pixels"}]


def _study(external=(), **extra):
    return parse_study(tiny_study(
        SYNTH, tasks=TASK, name="ext", estimators=ESTIMATORS,
        ensembles=[{"name": "vote", "members": ["rf_pixels", "logreg_pixels"]}],
        cv={"split": "group", "folds": 2}, external=list(external), **extra))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    cache = root / "cache"
    plain = run_study(_study(), root / "plain", cache_dir=cache)
    scored = run_study(_study([OTHER_LAB]), root / "scored", cache_dir=cache)
    return root, cache, plain, scored


def test_each_fold_model_scores_the_whole_external_task_rows(runs):
    root = runs[0]
    folds = pd.read_parquet(root / "scored" / "external_folds.parquet")
    assert set(folds["estimator"]) == {"rf_pixels", "logreg_pixels", "vote"}
    assert len(folds) == 3 * 2  # every estimator's model of each of the 2 folds
    predictions = pd.read_parquet(root / "scored" / "external_predictions.parquet")
    # 3 patients x 1 cell x 2 homologues x 4 classes (X/Y and other classes not scored)
    assert (folds["n_test"] == 3 * 2 * 4).all()
    assert set(predictions["y_true"]) == {"1", "2", "3", "4"}
    assert predictions["group"].nunique() == 3
    assert not predictions["path"].str.startswith("/").any()  # portable
    vote = predictions[predictions["estimator"] == "vote"]
    members = predictions[predictions["estimator"] != "vote"]
    mean = members.groupby(["fold", "sample"])["p_1"].mean()
    # the committed probabilities keep EXTERNAL_DECIMALS: the vote's and the mean of its
    # members' rounded values agree to that precision
    step = 10.0 ** -external.EXTERNAL_DECIMALS
    assert np.allclose(vote.set_index(["fold", "sample"])["p_1"].sort_index(),
                       mean.sort_index(), atol=step)
    assert np.allclose(predictions["p_1"], predictions["p_1"].round(
        external.EXTERNAL_DECIMALS), atol=1e-6)


def test_external_sets_change_nothing_in_the_cross_validation(runs):
    root = runs[0]
    plain = pd.read_parquet(root / "plain" / "predictions.parquet")
    scored = pd.read_parquet(root / "scored" / "predictions.parquet")
    pd.testing.assert_frame_equal(plain, scored)
    assert (pd.read_csv(root / "plain" / "fold_keys.csv")["key"].tolist()
            == pd.read_csv(root / "scored" / "fold_keys.csv")["key"].tolist())


def test_report_sets_cv_beside_external_with_group_ci(runs):
    root = runs[0]
    table = pd.read_csv(root / "scored" / "external.csv")
    rf = table[table["estimator"] == "rf_pixels"].iloc[0]
    assert rf["external_ci_low"] <= rf["external_accuracy"] <= rf["external_ci_high"]
    assert rf["gap"] == pytest.approx(rf["external_accuracy"] - rf["cv_accuracy"])
    assert rf["n_models"] == 2
    per_class = pd.read_csv(root / "scored" / "external_per_class.csv")
    assert set(per_class["class"].astype(str)) == {"1", "2", "3", "4"}
    protocol = json.loads((root / "scored" / "protocol.json").read_text())
    assert protocol["external"]["other_lab"]["n_groups"] == 3
    assert "models scored" in (root / "scored" / "external.md").read_text()


def test_adding_an_external_set_retrains_and_then_reuses(runs):
    root, cache, _, scored = runs
    assert scored.n_reused == 0  # plain folds live elsewhere; models are not kept
    again = run_study(_study([OTHER_LAB]), root / "scored", cache_dir=cache)
    assert again.n_reused == again.n_jobs


def test_external_relabel_maps_labels_before_the_task(tmp_path):
    renamed = dict(OTHER_LAB, relabel={"1": "2", "2": "1"})
    run_study(_study([renamed]), tmp_path / "out", cache_dir=tmp_path / "cache")
    frame = pd.read_parquet(tmp_path / "out" / "external_predictions.parquet")
    original = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert set(frame["y_true"]) == {"1", "2", "3", "4"} and len(original)
    # class 1's images now carry label 2: their paths are the generator's chr 1 files
    ones = frame[frame["y_true"] == "2"]["path"].str.contains("01|_1_|/1/").mean()
    assert ones > 0.5


@pytest.mark.parametrize("external, message", [
    ([{"name": "a", "source": "manifest"}], "path is required"),
    ([OTHER_LAB, OTHER_LAB], "share a name"),
    ([{"name": "bad name", "source": "synthetic"}], "external.0.name"),
    ([dict(OTHER_LAB, colour="x")], "unknown key 'external.0.colour'"),
])
def test_bad_external_config_is_one_clear_error(external, message):
    with pytest.raises(ConfigError, match=message):
        _study(external)
