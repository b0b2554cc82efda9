"""Committed results stand in for the uncommitted fold cache: a fresh clone retrains nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import yaml

from karyobench.evaluation.restore import KEYS_FILE
from karyobench.evaluation.runner import run_study
from karyobench.study import parse_study
from kb_support import error_line, run_cli, synthetic_dataset, tiny_study

RF = {"kind": "rf_pixels", "name": "rf", "params": {"rf__n_estimators": 15}}
LOGREG = {"kind": "logreg_pixels", "name": "logreg"}
VOTE = [{"name": "vote", "members": ["rf", "logreg"]}]


def study_with(estimators, ensembles=VOTE, name="restore"):
    return tiny_study(synthetic_dataset(canvas={"mode": "native", "size": 16}),
                      name=name, estimators=estimators, ensembles=ensembles,
                      cv={"split": "group", "folds": 2})


def committed_copy(results, clone):
    """What a clone of the repository holds: the results folder without jobs/."""
    shutil.copytree(results, clone, ignore=shutil.ignore_patterns("jobs", ".lock"))
    return clone


def test_fresh_clone_recovers_every_fold_and_keeps_the_exact_metrics(tmp_path):
    first = run_study(parse_study(study_with([RF, LOGREG])), tmp_path / "run")
    assert first.n_reused == 0 and not first.restored
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")

    again = run_study(parse_study(study_with([RF, LOGREG])), clone, reuse=[clone])

    assert again.n_reused == again.n_jobs == 4
    assert again.restored == {str(clone): 6}  # 4 fitted folds + 2 ensemble folds
    before = pd.read_parquet(tmp_path / "run" / "folds.parquet")
    after = pd.read_parquet(clone / "folds.parquet")
    # fold metrics are the full-precision run's, not recomputed from rounded probabilities
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / "predictions.parquet"),
                                  pd.read_parquet(clone / "predictions.parquet"))
    assert (clone / "summary.md").read_text() == (tmp_path / "run" / "summary.md").read_text()
    environment = json.loads((clone / "environment.json").read_text())
    assert environment["folds_restored"] == {str(clone): 6}
    assert environment["folds_computed"] == 0


def test_without_reuse_a_fresh_clone_trains_every_fold(tmp_path):
    run_study(parse_study(study_with([RF, LOGREG])), tmp_path / "run")
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")

    again = run_study(parse_study(study_with([RF, LOGREG])), clone)

    assert again.n_reused == 0 and not again.restored


def test_a_changed_estimator_is_trained_not_recovered(tmp_path):
    run_study(parse_study(study_with([RF, LOGREG])), tmp_path / "run")
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")
    changed = dict(RF, params={"rf__n_estimators": 7})

    again = run_study(parse_study(study_with([changed, LOGREG])), clone, reuse=[clone])

    # logreg's 2 folds are recovered; rf and the vote over it are recomputed
    assert again.restored == {str(clone): 2}
    assert again.n_reused == 2
    keys = pd.read_csv(clone / KEYS_FILE)
    assert len(keys) == 6 and keys["key"].is_unique


def test_reuse_takes_folds_from_another_study_by_job_key(tmp_path):
    run_study(parse_study(study_with([RF, LOGREG], name="base")), tmp_path / "base")
    base = committed_copy(tmp_path / "base", tmp_path / "base_clone")
    renamed = dict(RF, name="forest")  # a name is a label; the key is what was computed
    extra = {"kind": "logreg_pixels", "name": "logreg_c", "params": {"logreg__C": 0.1}}
    bigger = parse_study(study_with([renamed, LOGREG, extra],
                                    ensembles=[{"name": "all", "members":
                                                ["forest", "logreg", "logreg_c"]}],
                                    name="bigger"))

    summary = run_study(bigger, tmp_path / "bigger", reuse=[base])

    assert summary.restored == {str(base): 4}  # forest and logreg; logreg_c is new
    assert summary.n_reused == 4 and summary.n_jobs == 6
    old = pd.read_parquet(base / "predictions.parquet").query("estimator == 'rf'")
    new = pd.read_parquet(tmp_path / "bigger" / "predictions.parquet") \
        .query("estimator == 'forest'")
    np.testing.assert_array_equal(old["y_pred"].to_numpy(), new["y_pred"].to_numpy())


def test_results_from_before_fold_keys_are_recovered_through_their_config(tmp_path):
    run_study(parse_study(study_with([RF, LOGREG])), tmp_path / "run")
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")
    (clone / KEYS_FILE).unlink()

    again = run_study(parse_study(study_with([RF, LOGREG])), clone, reuse=[clone])

    assert again.restored == {str(clone): 6}
    assert (clone / KEYS_FILE).is_file()


def test_a_config_that_did_not_produce_the_folds_recovers_nothing(tmp_path):
    run_study(parse_study(study_with([RF, LOGREG])), tmp_path / "run")
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")
    (clone / KEYS_FILE).unlink()
    config = yaml.safe_load((clone / "config.yaml").read_text())
    config["estimators"] = config["estimators"][:1]  # no longer the folds' study
    config["ensembles"] = []
    (clone / "config.yaml").write_text(yaml.safe_dump(config))

    again = run_study(parse_study(study_with([RF, LOGREG])), clone, reuse=[clone])

    assert not again.restored and again.n_reused == 0


def test_recovered_rows_must_be_the_jobs_test_rows(tmp_path):
    run_study(parse_study(study_with([RF, LOGREG])), tmp_path / "run")
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")
    predictions = pd.read_parquet(clone / "predictions.parquet")
    predictions.loc[(predictions["estimator"] == "logreg") & (predictions["fold"] == 0),
                    "sample"] += 100_000
    predictions.to_parquet(clone / "predictions.parquet")

    again = run_study(parse_study(study_with([RF, LOGREG])), clone, reuse=[clone])

    assert again.restored == {str(clone): 5}  # logreg fold 0 was retrained instead


def test_cli_reports_recovered_folds(tmp_path, write_study):
    study = write_study(study_with([RF, LOGREG]))
    first = run_cli("run", study, "--out", tmp_path / "run")
    assert first.returncode == 0, first.stdout + first.stderr
    clone = committed_copy(tmp_path / "run", tmp_path / "clone")

    result = run_cli("run", study, "--out", tmp_path / "other", "--reuse", clone)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"recovered 6 finished fold(s) from the committed results in {clone}" in output
    assert "4 folds (4 reused)" in output


def test_reuse_of_a_folder_without_results_is_one_clear_error(tmp_path, write_study):
    (tmp_path / "empty").mkdir()
    study = write_study(study_with([RF, LOGREG]))
    for missing in (tmp_path / "empty", tmp_path / "nowhere"):
        result = run_cli("run", study, "--out", tmp_path / "out", "--reuse", missing)
        assert error_line(result) == (
            f"error: --reuse '{missing}': not a finished results folder (no folds.parquet); "
            "give a results/<study> folder written by 'karyobench run'.")
    assert not (tmp_path / "out" / "folds.parquet").exists()  # nothing trained
