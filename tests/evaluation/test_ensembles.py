"""Soft-voting ensembles: the weighted mean of members' fold probabilities, no retraining."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from karyobench.errors import ConfigError
from karyobench.evaluation.runner import run_study
from karyobench.study import parse_study
from kb_support import synthetic_dataset, tiny_study

MEMBERS = [
    {"kind": "rf_pixels", "name": "rf", "params": {"rf__n_estimators": 20}},
    {"kind": "logreg_pixels", "name": "logreg"},
    {"kind": "rf_pixels", "name": "rf_fit", "params": {"rf__n_estimators": 20},
     "canvas": {"mode": "fit", "size": 16}},
]


def ensemble_study(ensembles, **extra):
    return parse_study(tiny_study(
        synthetic_dataset(canvas={"mode": "native", "size": 16}),
        estimators=MEMBERS, ensembles=ensembles, cv={"split": "group", "folds": 2}, **extra))


def oof_proba(predictions, estimator):
    frame = predictions[predictions["estimator"] == estimator].sort_values(["fold", "sample"])
    return frame, frame[[c for c in frame if c.startswith("p_")]].to_numpy(dtype=float)


def test_ensemble_is_the_weighted_mean_of_its_members_on_the_same_rows(tmp_path):
    study = ensemble_study([{"name": "vote", "members": ["rf", "logreg", "rf_fit"],
                             "weights": [2, 1, 1]}])
    summary = run_study(study, tmp_path / "out")
    assert summary.n_jobs == 6  # the ensemble trains nothing
    predictions = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    vote, p_vote = oof_proba(predictions, "vote")
    parts = [oof_proba(predictions, name) for name in ("rf", "logreg", "rf_fit")]
    for frame, _ in parts:
        np.testing.assert_array_equal(frame["sample"].to_numpy(), vote["sample"].to_numpy())
    expected = (2 * parts[0][1] + parts[1][1] + parts[2][1]) / 4
    np.testing.assert_allclose(p_vote, expected, atol=2e-6)
    classes = [c[2:] for c in vote if c.startswith("p_")]
    assert list(vote["y_pred"]) == [classes[i] for i in p_vote.argmax(axis=1)]
    # the members disagree somewhere, so the vote is not a copy of one member
    assert any((vote["y_pred"].to_numpy() != f["y_pred"].to_numpy()).any() for f, _ in parts)

    folds = pd.read_parquet(tmp_path / "out" / "folds.parquet").set_index(
        ["estimator", "fold"])
    for fold in (0, 1):
        members_fit = sum(folds.loc[(name, fold), "fit_seconds"]
                          for name in ("rf", "logreg", "rf_fit"))
        assert folds.loc[("vote", fold), "fit_seconds"] == pytest.approx(members_fit)
        accuracy = (vote["y_true"] == vote["y_pred"])[vote["fold"] == fold].mean()
        assert folds.loc[("vote", fold), "accuracy"] == pytest.approx(accuracy)
    protocol = json.loads((tmp_path / "out" / "protocol.json").read_text())
    assert protocol["ensembles"]["vote"]["members"] == ["rf", "logreg", "rf_fit"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "vote: soft vote" in summary and "sum of its members'" in summary


def test_changing_weights_recombines_without_retraining(tmp_path):
    run_study(ensemble_study([{"name": "vote", "members": ["rf", "logreg"]}]), tmp_path / "o")
    equal = pd.read_parquet(tmp_path / "o" / "predictions.parquet")
    again = run_study(ensemble_study([{"name": "vote", "members": ["rf", "logreg"],
                                       "weights": [1, 9]}]), tmp_path / "o")
    assert again.n_reused == again.n_jobs == 6
    reweighted = pd.read_parquet(tmp_path / "o" / "predictions.parquet")
    _, p_equal = oof_proba(equal, "vote")
    _, p_heavy = oof_proba(reweighted, "vote")
    _, p_logreg = oof_proba(reweighted, "logreg")
    assert not np.allclose(p_equal, p_heavy)
    assert np.abs(p_heavy - p_logreg).mean() < np.abs(p_equal - p_logreg).mean()


@pytest.mark.parametrize("ensemble, message", [
    ({"name": "vote", "members": ["rf", "svm"]}, "members ['svm'] are not estimators"),
    ({"name": "rf", "members": ["rf", "logreg"]}, "name already used"),
    ({"name": "vote", "members": ["rf", "rf"]}, "listed twice"),
    ({"name": "vote", "members": ["rf", "logreg"], "weights": [1]}, "1 weights for 2"),
    ({"name": "vote", "members": ["rf", "logreg"], "weights": [1, 0]}, "must be positive"),
    ({"name": "vote", "members": ["rf"]}, "at least 2"),
])
def test_bad_ensembles_name_the_entry(ensemble, message):
    with pytest.raises(ConfigError, match="ensembles") as err:
        ensemble_study([ensemble])
    assert message in str(err.value)


def test_declaring_a_primary_later_rebuilds_the_report_without_retraining(tmp_path):
    ensembles = [{"name": "vote", "members": ["rf", "logreg"]}]
    run_study(ensemble_study(ensembles), tmp_path / "out")
    assert "declared primary" not in (tmp_path / "out" / "summary.md").read_text()
    again = run_study(ensemble_study(ensembles, primary="vote"), tmp_path / "out")
    assert again.n_reused == again.n_jobs  # only the protocol changed
    protocol = json.loads((tmp_path / "out" / "protocol.json").read_text())
    assert protocol["primary"] == "vote"
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "vote: the study's declared primary result" in summary
    assert "declared primary" not in (tmp_path / "out" / "ranking.md").read_text()


@pytest.mark.parametrize("primary", ["svm", "Vote"])
def test_primary_must_name_an_estimator_or_ensemble(primary):
    with pytest.raises(ConfigError, match=rf"primary: '{primary}' is not an estimator or "
                       r"ensemble of this study; choose from \['logreg', 'rf', 'rf_fit', "
                       r"'vote'\]"):
        ensemble_study([{"name": "vote", "members": ["rf", "logreg"]}], primary=primary)
