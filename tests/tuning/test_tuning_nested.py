"""Nested CV: inner splits, job keys, seeded search, pruning, the tune command."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from karyobench.errors import ConfigError
from karyobench.evaluation.fold import FoldJob
from karyobench.tuning.nested import (evaluate_trial, inner_splits, make_context, search,
                                      tuning_payload)
from karyobench.search_space import TuningConfig

from .conftest import SVM_TUNING, write_study


def toy_data(n_groups=6, per=4, size=12, seed=0):
    """Three classes of bars, ``per`` images per class and group."""
    rng = np.random.default_rng(seed)
    images, labels, groups = [], [], []
    for g in range(n_groups):
        for c, label in enumerate("abc"):
            for _ in range(per):
                img = rng.random((size, size)).astype(np.float32) * 0.2
                img[:, 4 * c:4 * c + 3] += 0.8
                images.append(img)
                labels.append(label)
                groups.append(f"g{g}")
    return np.stack(images), np.array(labels), np.array(groups)


def toy_job(tuning: dict | None, groups, storage, kind="svm_linear_pixels", params=None,
            n=None, fold=0):
    test = np.flatnonzero(np.isin(groups, ["g0", "g1"]))
    train = np.flatnonzero(~np.isin(groups, ["g0", "g1"]))
    return FoldJob(split="group", task="toy", estimator="est", kind=kind,
                   params=params or {}, repeat=0, fold=fold, seed=1,
                   classes=("a", "b", "c"), train=train, test=test,
                   data_fingerprint="toy", tuning=tuning,
                   train_groups=groups[train] if tuning else None,
                   storage=storage if tuning else None)


def test_inner_splits_are_grouped_and_cover_the_training_set():
    _, y, groups = toy_data()
    splits = inner_splits(y, groups, 3, seed=1)
    assert len(splits) == 3
    covered = np.sort(np.concatenate([valid for _, valid in splits]))
    assert np.array_equal(covered, np.arange(len(y)))
    for train, valid in splits:
        assert not set(groups[train]) & set(groups[valid])
    with pytest.raises(ConfigError, match="inner_folds"):
        inner_splits(y, groups, 7, seed=1)


def test_untuned_keys_unchanged_and_tuned_keys_cover_the_search(tmp_path):
    _, _, groups = toy_data()
    plain = toy_job(None, groups, None)
    legacy = FoldJob(**{f.name: getattr(plain, f.name) for f in dataclasses.fields(FoldJob)
                        if f.name not in ("tuning", "train_groups", "storage")})
    assert plain.key == legacy.key
    url = f"sqlite:///{tmp_path}/t.db"
    config = TuningConfig.model_validate(SVM_TUNING)
    tuned = toy_job(tuning_payload(config, "s"), groups, url)
    more = toy_job(tuning_payload(config, "s", n_trials=9), groups, url)
    other_storage = dataclasses.replace(tuned, storage=f"sqlite:///{tmp_path}/u.db")
    shuffled = dataclasses.replace(tuned, train_groups=tuned.train_groups[::-1])
    keys = {plain.key, tuned.key, more.key, shuffled.key}
    assert len(keys) == 4
    # where the search is recorded is no input: another storage (a moved checkout, a
    # PostgreSQL server) keeps the key
    assert other_storage.key == tuned.key


def _params_sequence(tmp_path, name, seed):
    images, labels, groups = toy_data()
    config = dict(SVM_TUNING, n_trials=5, pruner="none", seed=seed, startup_trials=2)
    job = toy_job(tuning_payload(TuningConfig.model_validate(config), "seeded"), groups,
                  f"sqlite:///{tmp_path}/{name}.db")
    study = search(make_context(job, images, labels), job.storage)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(5))
    return [t.params["svc__C"] for t in trials]


def test_same_study_and_seed_give_the_same_trial_sequence(tmp_path):
    first = _params_sequence(tmp_path, "a", seed=3)
    assert _params_sequence(tmp_path, "b", seed=3) == first
    assert _params_sequence(tmp_path, "c", seed=4) != first


def test_resume_runs_only_missing_trials(tmp_path):
    images, labels, groups = toy_data()
    url = f"sqlite:///{tmp_path}/r.db"
    config = TuningConfig.model_validate(dict(SVM_TUNING, pruner="none"))
    job = toy_job(tuning_payload(config, "resume", n_trials=3), groups, url)
    study = search(make_context(job, images, labels), url)
    first = [(t.number, t.params) for t in study.get_trials()]
    assert len(first) == 3
    again = toy_job(tuning_payload(config, "resume", n_trials=5), groups, url)
    ctx = make_context(again, images, labels)
    assert ctx.study_name == make_context(job, images, labels).study_name
    trials = search(ctx, url).get_trials()
    assert len(trials) == 5 and [(t.number, t.params) for t in trials[:3]] == first
    assert len(search(ctx, url).get_trials()) == 5  # nothing left to do


@pytest.mark.slow
def test_keras_callback_prunes_a_bad_trial_and_counts_epochs(tmp_path):
    images, labels, groups = toy_data(per=2)
    config = TuningConfig.model_validate({
        "n_trials": 1, "inner_folds": 2, "pruner": "median", "pruner_startup_trials": 1,
        "warmup_steps": 0, "default_trial": False,
        "space": {"learning_rate": {"type": "categorical", "choices": [1.0e-7]}}})
    params = {"epochs": 3, "batch_size": 16, "padding": "same", "conv_filters": [4],
              "dense_units": [8]}
    job = toy_job(tuning_payload(config, "prune"), groups, None, kind="dcnn",
                  params=params)
    ctx = make_context(job, images, labels)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=0))
    study.add_trial(optuna.trial.create_trial(
        params={"learning_rate": 1e-7},
        distributions={"learning_rate": optuna.distributions.CategoricalDistribution(
            [1e-7])},
        value=1.0, intermediate_values={s: 1.0 for s in range(6)}))
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        evaluate_trial(trial, ctx)
    attrs = study.trials[-1].user_attrs
    assert attrs["epochs_trained"] == 1 and attrs["epochs_planned"] == 6


def test_tune_command_end_to_end_and_reuse(tmp_path, tiny_manifest, cache_env, capsys,
                                          caplog):
    from karyobench.tuning.command import tune_command

    study = write_study(tmp_path, tiny_manifest, [
        {"kind": "svm_linear_pixels", "name": "svm"},
        {"kind": "svm_linear_pixels", "name": "svm_tuned", "tuning": SVM_TUNING}])
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        tune_command(study, storage=None, n_trials=None, timeout=None, workers=1, out=out,
                     lockboxes=None)
    # the Optuna plots are written without a warning (a NameError here once hid itself)
    assert not [r for r in caplog.records if "optimisation history" in r.getMessage()]
    folds = pd.read_parquet(out / "folds.parquet")
    assert set(folds.estimator) == {"svm", "svm_tuned"} and len(folds) == 4
    table = pd.read_csv(out / "tuning" / "best_params.csv")
    assert list(table.fold) == [0, 1] and (table.n_trials == 4).all()
    assert {"inner_best", "outer", "gap", "svc__C", "n_pruned"} <= set(table.columns)
    tuned = folds[folds.estimator == "svm_tuned"].sort_values("fold")
    assert np.allclose(tuned.accuracy.to_numpy(), table.outer.to_numpy())
    assert "Inner fits only" not in (out / "tuning" / "best_params.md").read_text()
    assert list((out / "tuning").glob("*.history.png"))
    records = [json.loads(p.read_text()) for p in (out / "tuning" / "folds").glob("*.json")]
    assert all(r["n_trials"] == 4 and r["best_params"]["svc__C"] > 0 for r in records)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'tuning.sqlite3'}")
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert len(names) == 2 and all(n.startswith("tiny.three.svm_tuned.group.") for n in names)
    err = capsys.readouterr().err
    # progress after every trial, then default / best / outer per fold
    assert "  4/4 trials done, 0 running" in err and "best so far" in err
    assert "three · svm_tuned · group fold 0: inner default " in err
    assert "(4 trials, " in err and "2-fold inner)" in err
    tune_command(study, storage=None, n_trials=None, timeout=None, workers=1, out=out,
                 lockboxes=None)
    assert "4 folds (4 reused)" in capsys.readouterr().err
    for name in names:
        trials = optuna.load_study(study_name=name, storage=storage).get_trials()
        assert len(trials) == 4
        assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)


def test_tune_shares_the_run_loop_ensembles_fold_keys_and_reuse(tmp_path, tiny_manifest,
                                                                cache_env, capsys):
    """``tune`` is ``run`` plus search workers: ensembles, fold_keys.csv and --reuse."""
    import shutil

    from karyobench.evaluation.restore import KEYS_FILE
    from karyobench.tuning.command import tune_command

    raw = yaml.safe_load(write_study(tmp_path, tiny_manifest, [
        {"kind": "svm_linear_pixels", "name": "svm"},
        {"kind": "logreg_pixels", "name": "logreg"},
        {"kind": "svm_linear_pixels", "name": "svm_tuned",
         "tuning": {**SVM_TUNING, "n_trials": 2}}]).read_text())
    raw["ensembles"] = [{"name": "vote", "members": ["svm", "logreg"]}]
    study = tmp_path / "tiny.yaml"
    study.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "out"
    tune_command(study, storage=None, n_trials=None, timeout=None, workers=1, out=out,
                 lockboxes=None)
    folds = pd.read_parquet(out / "folds.parquet")
    assert set(folds.estimator) == {"svm", "logreg", "svm_tuned", "vote"}
    keys = pd.read_csv(out / KEYS_FILE, dtype={"key": str})
    assert len(keys) == len(folds) == 8 and keys.key.is_unique
    environment = json.loads((out / "environment.json").read_text())
    assert environment["backend"] == "tune (1 worker(s))"
    assert environment["tuning_storage"].endswith("tuning.sqlite3")
    # a clone holds the committed files, not jobs/: the untuned folds and their ensemble
    # come back from them; the tuned folds resume their committed Optuna studies
    clone = tmp_path / "clone"
    shutil.copytree(out, clone, ignore=shutil.ignore_patterns("jobs", ".lock"))
    capsys.readouterr()
    tune_command(study, storage=None, n_trials=None, timeout=None, workers=1, out=clone,
                 lockboxes=None, reuse=[clone])
    err = capsys.readouterr().err
    assert f"recovered 6 finished fold(s) from the committed results in {clone}" in err
    again = pd.read_parquet(clone / "folds.parquet")
    untuned = folds.estimator != "svm_tuned"
    pd.testing.assert_frame_equal(folds[untuned].reset_index(drop=True),
                                  again[again.estimator != "svm_tuned"].reset_index(drop=True))
    storage = optuna.storages.RDBStorage(f"sqlite:///{clone / 'tuning.sqlite3'}")
    for summary in optuna.get_all_study_summaries(storage):
        assert summary.n_trials == 2  # resumed, not searched again


def test_run_fits_tuned_folds_in_loky_workers_with_the_same_keys_as_tune(
        tmp_path, tiny_manifest, cache_env):
    """``karyobench run`` gives tuned jobs to a NestedSearch (pickled into loky workers);
    the folds, keys and tuning outputs are those ``tune`` writes."""
    from kb_support import run_cli

    study = write_study(tmp_path, tiny_manifest, [
        {"kind": "svm_linear_pixels", "name": "svm"},
        {"kind": "svm_linear_pixels", "name": "svm_tuned",
         "tuning": {**SVM_TUNING, "n_trials": 2}}])
    out = tmp_path / "out"
    done = run_cli("run", study, "--out", out, "--backend", "loky", "--workers", "2",
                   "--lockboxes", tmp_path / "box")
    assert done.returncode == 0, done.stderr
    folds = pd.read_parquet(out / "folds.parquet")
    assert set(folds.estimator) == {"svm", "svm_tuned"}
    assert (pd.read_csv(out / "tuning" / "best_params.csv").n_trials == 2).all()
    keys = pd.read_csv(out / "fold_keys.csv", dtype={"key": str})
    # tune plans the same jobs (same storage, same keys): every fold is reused
    again = run_cli("tune", study, "--out", out, "--lockboxes", tmp_path / "box")
    assert again.returncode == 0, again.stderr
    assert "4 folds (4 reused)" in again.stderr
    pd.testing.assert_frame_equal(keys, pd.read_csv(out / "fold_keys.csv", dtype={"key": str}))


def test_grid_sampler_tries_every_combination_once(tmp_path):
    images, labels, groups = toy_data()
    url = f"sqlite:///{tmp_path}/grid.db"
    config = TuningConfig.model_validate({
        "sampler": "grid", "n_trials": 4, "inner_folds": 2, "pruner": "none",
        "space": {"svc__C": {"type": "categorical", "choices": [0.001, 0.01, 0.1, 1.0]}}})
    job = toy_job(tuning_payload(config, "grid"), groups, url)
    trials = search(make_context(job, images, labels), url).get_trials()
    assert sorted(t.params["svc__C"] for t in trials) == [0.001, 0.01, 0.1, 1.0]
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_default_sampler_keeps_tuned_job_keys_and_grid_overrides_are_checked():
    tpe = TuningConfig.model_validate(SVM_TUNING)
    assert tpe.sampler == "tpe" and "sampler" not in tuning_payload(tpe, "s")
    grid = TuningConfig.model_validate({
        "sampler": "grid", "n_trials": 2,
        "space": {"svc__C": {"type": "categorical", "choices": [0.1, 1.0]}}})
    assert tuning_payload(grid, "s")["sampler"] == "grid"
    with pytest.raises(ConfigError, match=r"--n-trials 3 exceeds the grid's 2 combinations"):
        tuning_payload(grid, "s", n_trials=3)


@pytest.mark.slow
def test_inner_params_apply_to_inner_fits_only(tmp_path):
    from karyobench.tuning.nested import tune_fold

    images, labels, groups = toy_data(per=2)
    url = f"sqlite:///{tmp_path}/inner.db"
    config = TuningConfig.model_validate({
        "sampler": "grid", "n_trials": 2, "inner_folds": 2, "pruner": "none",
        "inner_params": {"epochs": 1},
        "space": {"learning_rate": {"type": "categorical", "choices": [1.0e-3, 1.0e-2]}}})
    params = {"epochs": 3, "batch_size": 16, "padding": "same", "conv_filters": [4],
              "dense_units": [8]}
    job = toy_job(tuning_payload(config, "inner"), groups, url, kind="dcnn", params=params)
    result = tune_fold(job, images, labels)
    summary = result.extra["tuning"]
    trials = optuna.load_study(study_name=summary["study_name"], storage=url).get_trials()
    # every inner fit ran the inner budget (1 epoch x 2 inner folds), the refit its own 3
    assert [t.user_attrs["epochs_trained"] for t in trials] == [2, 2]
    # no pruner: no per-epoch validation pass (nothing would read its scores)
    assert all(not t.intermediate_values for t in trials)
    assert summary["refit_epochs"] == 3 and summary["inner_params"] == {"epochs": 1}
    assert summary["epochs_trained"] == 2 + 2 + 3
    # the report says the inner scores came from cheaper fits than the scored refit
    from karyobench.tuning.outputs import save_fold_record, write_tuning_outputs

    save_fold_record(tmp_path / "out", job, result)
    write_tuning_outputs(tmp_path / "out")
    text = (tmp_path / "out" / "tuning" / "best_params.md").read_text()
    assert 'Inner fits only (`inner_params`): est: {"epochs": 1}' in text


def test_inner_params_are_checked_and_absent_ones_keep_keys():
    plain = TuningConfig.model_validate(SVM_TUNING)
    assert "inner_params" not in tuning_payload(plain, "s")
    with_inner = TuningConfig.model_validate({**SVM_TUNING,
                                              "inner_params": {"svc__max_iter": 50}})
    assert tuning_payload(with_inner, "s")["inner_params"] == {"svc__max_iter": 50}
    name = next(iter(SVM_TUNING["space"]))
    with pytest.raises(ValueError, match=rf"inner_params {name} also in space"):
        TuningConfig.model_validate({**SVM_TUNING, "inner_params": {name: 1.0}})
