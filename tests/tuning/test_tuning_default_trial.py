"""The default trial, the hold-out inner protocol, Hyperband, progress, the storage as
optuna-dashboard opens it, and search spaces of the stronger networks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from pydantic import ValidationError

from karyobench.errors import ConfigError
from karyobench.study import load_study, parse_study
from karyobench.tuning.nested import (check_tuning, inner_splits, make_context,
                                      reap_running, open_study, search, tune_fold,
                                      tuning_payload)
from karyobench.tuning.outputs import save_fold_record, write_tuning_outputs
from karyobench.search_space import TuningConfig, suggest_params

from .conftest import SVM_TUNING
from .test_tuning_nested import toy_data, toy_job

REPO = Path(__file__).resolve().parents[2]


def _svm_job(tmp_path, tuning: dict, name="d", params=None):
    images, labels, groups = toy_data()
    url = f"sqlite:///{tmp_path}/{name}.db"
    config = TuningConfig.model_validate(tuning)
    job = toy_job(tuning_payload(config, name), groups, url,
                  params=params if params is not None else {"svc__C": 0.05})
    return job, images, labels


def test_default_trial_comes_first_and_the_report_shows_both_scores(tmp_path):
    job, images, labels = _svm_job(tmp_path, dict(SVM_TUNING, pruner="none"))
    lines = []
    result = tune_fold(job, images, labels, log=lines.append)
    summary = result.extra["tuning"]
    study = optuna.load_study(study_name=summary["study_name"], storage=job.storage)
    trials = study.get_trials()
    # trial 0 is the study's own svc__C (not the SVC default 1.0, not a TPE draw)
    assert trials[0].params == {"svc__C": 0.05} and trials[0].user_attrs["default_trial"]
    assert sum(bool(t.user_attrs.get("default_trial")) for t in trials) == 1
    assert summary["default_trial"] == 0
    assert summary["inner_default"] == pytest.approx(trials[0].value)
    assert summary["inner_best"] >= summary["inner_default"]
    # progress: trials done / running / pruned and the best so far, after every trial
    assert any(line.startswith("  4/4 trials done, 0 running, 0 pruned") and
               "best so far" in line for line in lines), lines

    out = tmp_path / "out"
    save_fold_record(out, job, result)
    write_tuning_outputs(out)
    import pandas as pd

    table = pd.read_csv(out / "tuning" / "best_params.csv")
    assert table.inner_default.tolist() == pytest.approx([trials[0].value])
    assert table.inner_best.tolist() == pytest.approx([summary["inner_best"]])
    winner = "default" if summary["best_trial"] == 0 else f"trial {summary['best_trial']}"
    assert table.winner.tolist() == [winner]
    text = (out / "tuning" / "best_params.md").read_text()
    assert "| inner_default | inner_best | winner |" in text
    assert "- est: 2-fold inner CV, pruner none: 2 inner fits per trial, each on 50%" in text
    won = int(summary["best_trial"] == 0)
    assert f"The default won {won} of 1 searches." in text


def test_resumed_search_does_not_enqueue_the_default_twice_but_replaces_a_lost_one(
        tmp_path):
    job, images, labels = _svm_job(tmp_path, dict(SVM_TUNING, pruner="none", n_trials=2))
    ctx = make_context(job, images, labels)
    study = open_study(ctx, job.storage)
    from karyobench.tuning.nested import enqueue_default

    assert enqueue_default(study, ctx, study.get_trials())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "heartbeat ... with Study.optimize"
        lost = study.ask()  # a worker takes the default trial ... and is killed
    assert suggest_params(lost, ctx.config.space) == {"svc__C": 0.05}
    assert reap_running(study) == 1
    trials = search(ctx, job.storage).get_trials()
    defaults = [t for t in trials if t.user_attrs.get("default_trial")]
    assert [t.state for t in defaults] == [TrialState.FAIL, TrialState.COMPLETE]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    more = dict(SVM_TUNING, pruner="none", n_trials=4)
    job4, *_ = _svm_job(tmp_path, more)
    trials = search(make_context(job4, images, labels), job.storage).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert sum(bool(t.user_attrs.get("default_trial")) for t in trials) == 2  # no new one


def test_a_default_outside_the_space_is_a_config_error_before_any_fold():
    raw = {"name": "t", "tasks": [{"name": "n24", "classes": "normal24"}],
           "estimators": [{"kind": "svm_linear_pixels", "params": {"svc__C": 0.5},
                           "tuning": {"space": {"svc__C": {"type": "float", "low": 1.0,
                                                           "high": 10.0}}}}]}
    with pytest.raises(ConfigError, match=r"own svc__C = 0\.5 lies outside "
                                          r"tuning\.space\.svc__C.*default_trial: false"):
        check_tuning(parse_study(raw))
    raw["estimators"][0]["tuning"]["default_trial"] = False
    check_tuning(parse_study(raw))


def _config_of(payload: dict) -> TuningConfig:
    """What a fold job's tuning payload means (as ``make_context`` reads it)."""
    return TuningConfig.from_compat({k: v for k, v in payload.items() if k != "study"})


def test_default_trial_defaults_and_keys():
    tpe = TuningConfig.model_validate(SVM_TUNING)
    assert tpe.default_trial and tuning_payload(tpe, "s")["default_trial"] is True
    off = TuningConfig.model_validate({**SVM_TUNING, "default_trial": False})
    # without a default trial the payload is the earlier one (earlier tuned keys hold)
    assert "default_trial" not in tuning_payload(off, "s")
    assert not _config_of(tuning_payload(off, "s")).default_trial
    assert _config_of(tuning_payload(tpe, "s")).default_trial
    grid = {"sampler": "grid", "n_trials": 2,
            "space": {"svc__C": {"type": "categorical", "choices": [0.1, 1.0]}}}
    assert not TuningConfig.model_validate(grid).default_trial
    with pytest.raises(ValidationError, match="default_trial needs sampler tpe"):
        TuningConfig.model_validate({**grid, "default_trial": True})


# ------------------------------------------------------------------ hold-out ----------

def test_inner_holdout_keeps_groups_apart_and_honours_the_fraction():
    _, y, groups = toy_data(n_groups=20, per=2)
    for fraction in (0.2, 0.25, 0.5):
        (split,) = inner_splits(y, groups, 3, seed=1, holdout=fraction)
        train, valid = split
        assert not set(groups[train]) & set(groups[valid])
        assert len(train) + len(valid) == len(y)
        assert abs(len(valid) / len(y) - fraction) < 0.06
        assert set(y[valid]) == set(y)  # stratified: every class is validated
    (split,) = inner_splits(y, None, 3, seed=1, holdout=0.2)
    assert abs(len(split[1]) / len(y) - 0.2) < 0.06
    with pytest.raises(ConfigError, match=r"tuning.inner_holdout \(10 folds\)"):
        inner_splits(y[:30], groups[:30], 3, seed=1, holdout=0.1)


def test_inner_holdout_and_inner_folds_are_exclusive():
    with pytest.raises(ValidationError, match="inner_folds and inner_holdout are "
                                              "alternative inner protocols"):
        TuningConfig.model_validate({**SVM_TUNING, "inner_holdout": 0.2})
    config = TuningConfig.model_validate({k: v for k, v in SVM_TUNING.items()
                                          if k != "inner_folds"} | {"inner_holdout": 0.2})
    payload = tuning_payload(config, "s")
    assert payload["inner_holdout"] == 0.2 and "inner_folds" not in payload
    assert _config_of(payload).inner_protocol == "hold-out 0.2"


def test_holdout_search_fits_once_per_trial_and_the_report_states_the_cost(tmp_path):
    tuning = {k: v for k, v in SVM_TUNING.items() if k != "inner_folds"}
    tuning.update(inner_holdout=0.25, pruner="none", n_trials=2)
    job, images, labels = _svm_job(tmp_path, tuning, name="h")
    result = tune_fold(job, images, labels)
    summary = result.extra["tuning"]
    assert summary["inner_fits_per_trial"] == 1 and summary["inner_holdout"] == 0.25
    assert summary["inner_train_fraction"] == pytest.approx(0.75, abs=0.1)
    out = tmp_path / "out"
    save_fold_record(out, job, result)
    write_tuning_outputs(out)
    text = (out / "tuning" / "best_params.md").read_text()
    seen = f"{summary['inner_train_fraction']:.0%}"
    assert (f"- est: grouped stratified hold-out of about 25%, pruner none: 1 inner fit "
            f"per trial, each on {seen} of the outer training set.") in text


def test_repeated_holdouts_are_disjoint_grouped_and_validated():
    _, y, groups = toy_data(n_groups=20, per=2)
    (first,) = inner_splits(y, groups, 3, seed=1, holdout=0.25)
    splits = inner_splits(y, groups, 3, seed=1, holdout=0.25, repeats=3)
    assert len(splits) == 3
    assert np.array_equal(splits[0][1], first[1])  # repeats extend the single hold-out
    valids = [set(valid) for _, valid in splits]
    assert not (valids[0] & valids[1]) and not (valids[1] & valids[2])
    for train, valid in splits:
        assert not set(groups[train]) & set(groups[valid])
        assert len(train) + len(valid) == len(y)
    base = {k: v for k, v in SVM_TUNING.items() if k != "inner_folds"}
    with pytest.raises(ValidationError, match="inner_repeats repeats an inner_holdout"):
        TuningConfig.model_validate({**SVM_TUNING, "inner_repeats": 2})
    with pytest.raises(ValidationError, match=r"inner_repeats \(5\) exceeds the 4 "
                                              r"disjoint hold-outs of inner_holdout 0.25"):
        TuningConfig.model_validate({**base, "inner_holdout": 0.25, "inner_repeats": 5})
    single = TuningConfig.model_validate({**base, "inner_holdout": 0.25})
    assert "inner_repeats" not in tuning_payload(single, "s")  # earlier job keys kept
    double = TuningConfig.model_validate({**base, "inner_holdout": 0.25, "inner_repeats": 2})
    payload = tuning_payload(double, "s")
    assert payload["inner_repeats"] == 2
    assert _config_of(payload).inner_protocol == "2 hold-outs of 0.25"


def test_repeated_holdout_search_scores_the_mean_of_its_fits(tmp_path):
    tuning = {k: v for k, v in SVM_TUNING.items() if k != "inner_folds"}
    tuning.update(inner_holdout=0.25, inner_repeats=2, pruner="none", n_trials=2)
    job, images, labels = _svm_job(tmp_path, tuning, name="r")
    result = tune_fold(job, images, labels)
    summary = result.extra["tuning"]
    assert summary["inner_fits_per_trial"] == 2 and summary["inner_repeats"] == 2
    study = optuna.load_study(study_name=summary["study_name"], storage=job.storage)
    for trial in study.get_trials():
        scores = trial.user_attrs["fold_scores"]
        assert len(scores) == 2 and trial.value == pytest.approx(np.mean(scores))
    out = tmp_path / "out"
    save_fold_record(out, job, result)
    write_tuning_outputs(out)
    text = (out / "tuning" / "best_params.md").read_text()
    assert ("- est: 2 disjoint grouped stratified hold-outs of about 25% each (score: their "
            "mean), pruner none: 2 inner fits per trial") in text


# ------------------------------------------------------------------ hyperband ---------

def test_hyperband_needs_its_own_settings():
    with pytest.raises(ValidationError, match="max_resource is a hyperband setting"):
        TuningConfig.model_validate({**SVM_TUNING, "max_resource": 9})
    with pytest.raises(ValidationError, match=r"max_resource \(2\) must be >= "
                                              r"min_resource \(3\)"):
        TuningConfig.model_validate({**SVM_TUNING, "pruner": "hyperband",
                                     "min_resource": 3, "max_resource": 2})


@pytest.mark.slow
def test_hyperband_prunes_keras_trials_on_epochs_but_never_the_default(tmp_path):
    images, labels, groups = toy_data(n_groups=8, per=2)
    url = f"sqlite:///{tmp_path}/hb.db"
    config = TuningConfig.model_validate({
        "n_trials": 8, "inner_holdout": 0.25, "pruner": "hyperband", "min_resource": 1,
        "reduction_factor": 2, "startup_trials": 8, "seed": 0,
        "space": {"learning_rate": {"type": "categorical",
                                    "choices": [1.0e-7, 1.0e-3, 1.0e-2]}}})
    params = {"epochs": 4, "batch_size": 16, "padding": "same", "conv_filters": [4],
              "dense_units": [8]}
    job = toy_job(tuning_payload(config, "hb"), groups, url, kind="dcnn", params=params)
    ctx = make_context(job, images, labels)
    study = search(ctx, url)
    assert isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    trials = study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.params, t.intermediate_values) for t in trials]
    assert all(t.user_attrs["epochs_trained"] < 4 for t in pruned)  # epochs saved
    assert trials[0].user_attrs["default_trial"] and trials[0].state == TrialState.COMPLETE
    assert trials[0].params == {"learning_rate": 1.0e-3}
    assert len(trials[0].intermediate_values) == 4  # reported every epoch, ran them all

    # the report's trials per budget: read from the storage for a record without them
    from karyobench.tuning.outputs import _budget_lines
    from karyobench.tuning.nested import trial_budgets

    budgets = trial_budgets(trials)
    record = {"estimator": "net", "study_name": ctx.study_name}
    lines = _budget_lines([record], url)
    assert lines == _budget_lines([{**record, "trial_budgets": budgets}], None)
    for epochs in sorted({e for e, _ in budgets}):
        done = sum(e == epochs and s == "complete" for e, s in budgets)
        cut = sum(e == epochs and s == "pruned" for e, s in budgets)
        assert f"| net | {epochs} | {done} | {cut} |" in lines
    assert sum(s == "pruned" for _, s in budgets) == len(pruned)


@pytest.mark.slow
def test_the_default_trial_is_never_pruned_even_when_it_trails(tmp_path):
    from karyobench.tuning.nested import evaluate_trial

    images, labels, groups = toy_data(per=2)
    config = TuningConfig.model_validate({
        "n_trials": 2, "inner_folds": 2, "pruner": "median", "pruner_startup_trials": 1,
        "warmup_steps": 0,
        "space": {"learning_rate": {"type": "categorical", "choices": [1.0e-7, 1.0e-3]}}})
    params = {"epochs": 3, "batch_size": 16, "padding": "same", "conv_filters": [4],
              "dense_units": [8], "learning_rate": 1.0e-7}  # a default that cannot learn
    job = toy_job(tuning_payload(config, "floor"), groups, None, kind="dcnn",
                  params=params)
    ctx = make_context(job, images, labels)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=0))
    study.add_trial(optuna.trial.create_trial(
        params={"learning_rate": 1e-3},
        distributions={"learning_rate": optuna.distributions.CategoricalDistribution(
            [1e-7, 1e-3])},
        value=1.0, intermediate_values={s: 1.0 for s in range(6)}))
    study.enqueue_trial(ctx.default_params, user_attrs={"default_trial": True})
    trial = study.ask()
    value = evaluate_trial(trial, ctx)  # a pruned trial would raise TrialPruned
    study.tell(trial, value)
    done = study.trials[-1]
    assert done.params == {"learning_rate": 1e-7} and value < 1.0
    assert done.user_attrs["epochs_trained"] == done.user_attrs["epochs_planned"] == 6
    assert len(done.intermediate_values) == 6  # it still reported every epoch


# ---------------------------------------------------------- storage and dashboard -----

def test_tuning_storage_opens_as_optuna_dashboard_would(tmp_path):
    """``optuna-dashboard sqlite:///...`` loads the studies from the plain URL."""
    job, images, labels = _svm_job(tmp_path, dict(SVM_TUNING, pruner="none", n_trials=2))
    name = search(make_context(job, images, labels), job.storage).study_name
    study = optuna.load_study(study_name=name, storage=job.storage)  # a fresh storage
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    assert study.user_attrs["karyobench"]["estimator"] == "est"
    try:  # optuna-dashboard's own loader, where it is installed (not a dependency)
        from optuna_dashboard._storage_url import get_storage
    except ImportError:
        return
    loaded = optuna.load_study(study_name=name, storage=get_storage(job.storage))
    assert len(loaded.get_trials()) == 2


# ---------------------------------------------------------- stronger networks ---------

RESNET_SPACE = """
name: t
tasks: [{name: n24, classes: normal24}]
estimators:
  - kind: resnet
    params: {widths: [24, 48, 96], epochs: 30, lr_schedule: cosine, rotation: 0.03,
             zoom: 0.1, shift: 0.05, contrast: 0.2, flip: horizontal}
    tuning:
      inner_holdout: 0.2
      pruner: hyperband
      space:
        widths: {type: widths, depth: [2, 4], low: 16, high: 128, step: 8}
        blocks: {type: int, low: 1, high: 3}
        dropout: {type: float, low: 0.0, high: 0.5}
        learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
        lr_schedule: {type: categorical, choices: [constant, cosine]}
        weight_decay: {type: categorical, choices: [0.0, 1.0e-4, 1.0e-3]}
        rotation: {type: float, low: 0.0, high: 0.06}
        zoom: {type: float, low: 0.0, high: 0.2}
        shift: {type: float, low: 0.0, high: 0.1}
        contrast: {type: float, low: 0.0, high: 0.4}
        flip: {type: categorical, choices: [none, horizontal]}
        label_smoothing: {type: float, low: 0.0, high: 0.2}
"""


def test_resnet_space_covers_the_stronger_networks_knobs():
    study = parse_study(yaml.safe_load(RESNET_SPACE))
    check_tuning(study)  # every name is a ResNet parameter; its defaults lie in the space
    from karyobench.estimators import build
    from karyobench.search_space import default_params

    estimator = study.estimators[0]
    space = estimator.tuning.space
    flat = default_params(space, build("resnet", estimator.params).get_params())
    assert flat["widths.depth"] == 3 and [flat[f"widths.{i}"] for i in range(3)] == [24, 48,
                                                                                      96]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    sampled = suggest_params(trial, space)
    built = build("resnet", {**estimator.params, **sampled})  # every draw is a valid net
    assert built.get_params()["label_smoothing"] == sampled["label_smoothing"]


@pytest.mark.parametrize("name", ["tune_dcnn", "tune_resnet"])
def test_committed_tuning_studies_are_valid(name):
    study = load_study(REPO / "studies" / f"{name}.yaml")
    check_tuning(study)
    best = load_study(REPO / "studies" / "bioimlab_best.yaml")
    # the same outer folds as bioimlab_best: data, grouping, folds and seed
    assert (study.seed, study.cv.split, study.cv.folds) == (best.seed, best.cv.split,
                                                            best.cv.folds)
    assert study.dataset.path == best.dataset.path
    assert study.dataset.group_column == best.dataset.group_column
    tuned = [e.tuning for e in study.estimators if e.tuning]
    assert tuned and all(t.default_trial and t.inner_holdout == 0.2
                         and t.pruner == "hyperband" for t in tuned)


def test_one_trial_is_the_default_and_it_runs(tmp_path):
    """n_trials: 1 with the default enqueued: the waiting default is run, not counted as
    done (it was, and the search ended with no completed trial)."""
    import yaml as _yaml

    from kb_support import run_cli

    study = {"name": "one", "seed": 1,
             "dataset": {"source": "synthetic", "canvas": {"mode": "native", "size": 24},
                         "synthetic": {"normal_patients": 6, "cells_per_patient": 1,
                                       "seed": 3, "abnormalities": {}}},
             "tasks": [{"name": "t", "classes": ["1", "2", "3"]}],
             "estimators": [{"kind": "svm_linear_pixels", "tuning": {
                 "n_trials": 1, "inner_folds": 2,
                 "space": {"svc__C": {"type": "float", "low": 0.01, "high": 10,
                                      "log": True}}}}],
             "cv": {"split": "group", "folds": 2}}
    path = tmp_path / "one.yaml"
    path.write_text(_yaml.safe_dump(study))
    result = run_cli("tune", path, "--out", tmp_path / "out", "--lockboxes", tmp_path / "box")
    assert result.returncode == 0, result.stderr
    assert "inner default" in result.stderr and "(1 trials" in result.stderr
