"""The lockbox: never trained or scored on by run or tune, the same for every study on the
same data, registered so an undeclaring study is refused, opened once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from karyobench.errors import ConfigError
from karyobench.evaluation import lockbox
from karyobench.evaluation.runner import group_column_of, load_study_dataset, plan_jobs, run_study
from karyobench.study import parse_study
from kb_support import TINY_DCNN, run_cli, tiny_study

SYNTH = {"source": "synthetic", "canvas": {"mode": "native", "size": 24},
         "synthetic": {"normal_patients": 10, "cells_per_patient": 1, "seed": 5,
                       "abnormalities": {}},
         "lockbox": {"fraction": 0.2, "seed": 3}}
TASK = [{"name": "t", "classes": ["1", "2", "3", "4"]}]


def _raw(name="boxed", dataset=None, estimators=None, **extra):
    return tiny_study(dataset or SYNTH, tasks=TASK, name=name,
                      estimators=estimators or [{"kind": "logreg_pixels"}],
                      cv={"split": "group", "folds": 2}, **extra)


def _locked_groups(study, cache):
    dataset = load_study_dataset(study, cache)
    column = group_column_of(study, dataset)
    rows = lockbox.study_lockbox(study, dataset, column)
    return dataset, set(dataset.groups[column][rows])


def test_lockbox_is_whole_groups_of_about_the_fraction_and_stratified(tmp_path):
    study = parse_study(_raw())
    dataset, locked = _locked_groups(study, tmp_path)
    groups = dataset.groups["patient_id"]
    assert len(locked) == 2  # 20% of 10 patients, whole
    rows = np.flatnonzero(np.isin(groups, list(locked)))
    assert set(dataset.labels[rows]) >= {"1", "2", "3", "4"}


def test_run_and_tune_never_train_or_score_on_the_lockbox(tmp_path):
    study = parse_study(_raw(estimators=[{
        "kind": "dcnn", "params": TINY_DCNN,
        "tuning": {"n_trials": 1, "inner_folds": 2, "pruner": "none",
                   "space": {"dropout": {"type": "float", "low": 0.0, "high": 0.5}}}}]))
    dataset, locked = _locked_groups(study, tmp_path / "cache")
    groups = dataset.groups["patient_id"]
    from karyobench.tuning.nested import attach_tuning

    jobs = attach_tuning(plan_jobs(study, dataset)[0], study, groups, "sqlite://")
    for job in jobs:  # tune plans exactly these; its inner folds split job.train
        assert job.tuning is not None
        assert not set(groups[job.train]) & locked
        assert not set(job.train_groups) & locked
        assert not set(groups[job.test]) & locked
    plain = parse_study(_raw())
    out = tmp_path / "out"
    run_study(plain, out, cache_dir=tmp_path / "cache", lockbox_registry=tmp_path / "box")
    scored = set(pd.read_parquet(out / "predictions.parquet")["group"])
    assert scored and not scored & locked
    assert len(scored) == 10 - len(locked)


def test_a_renamed_study_gets_the_same_lockbox_and_one_without_it_is_refused(tmp_path):
    registry = tmp_path / "box"
    run_study(parse_study(_raw("first")), tmp_path / "a", cache_dir=tmp_path / "c",
              lockbox_registry=registry)
    records = list(registry.glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["declared_by"] == "first"
    _, first = _locked_groups(parse_study(_raw("first")), tmp_path / "c")
    _, second = _locked_groups(parse_study(_raw("renamed")), tmp_path / "c")
    assert first == second
    run_study(parse_study(_raw("renamed")), tmp_path / "b", cache_dir=tmp_path / "c",
              lockbox_registry=registry)
    unboxed = dict(SYNTH)
    unboxed.pop("lockbox")
    with pytest.raises(ConfigError, match="this dataset has a lockbox.*add `dataset.lockbox"):
        run_study(parse_study(_raw("sneaky", dataset=unboxed)), tmp_path / "s",
                  cache_dir=tmp_path / "c", lockbox_registry=registry)
    assert not (tmp_path / "s" / "predictions.parquet").exists()
    other = dict(SYNTH, lockbox={"fraction": 0.3, "seed": 3})
    with pytest.raises(ConfigError, match="already has a lockbox"):
        run_study(parse_study(_raw("other", dataset=other)), tmp_path / "o",
                  cache_dir=tmp_path / "c", lockbox_registry=registry)


def test_lockbox_opens_once_and_reopening_is_stated(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(_raw(primary="logreg_pixels")))
    out, box = tmp_path / "results", tmp_path / "box"
    args = ("--out", out, "--lockboxes", box, "--cache-dir", tmp_path / "c")
    assert run_cli("run", study, *args).returncode == 0
    first = run_cli("lockbox", study, *args)
    assert first.returncode == 0, first.stderr
    openings = json.loads((out / "lockbox" / "openings.json").read_text())
    assert len(openings) == 1 and openings[0]["model"] == "logreg_pixels"
    predictions = pd.read_parquet(out / "lockbox" / "predictions.parquet")
    cv_groups = set(pd.read_parquet(out / "predictions.parquet")["group"])
    assert set(predictions["group"]) and not set(predictions["group"]) & cv_groups
    assert openings[0]["tasks"]["t"]["accuracy"] == pytest.approx(
        (predictions["y_true"] == predictions["y_pred"]).mean())
    assert "opened once" in (out / "summary.md").read_text()
    second = run_cli("lockbox", study, *args)
    assert second.returncode == 2
    assert "was opened on" in second.stderr and "--reopen" in second.stderr
    assert "Traceback" not in second.stderr
    assert len(json.loads((out / "lockbox" / "openings.json").read_text())) == 1
    again = run_cli("lockbox", study, *args, "--reopen")
    assert again.returncode == 0
    assert "2 times (reopened)" in (out / "summary.md").read_text()


@pytest.mark.parametrize("change, message", [
    ({"primary": None}, "declares no `primary`"),
    ({"dataset": {k: v for k, v in SYNTH.items() if k != "lockbox"},
      "primary": "logreg_pixels"}, "has no `dataset.lockbox`"),
])
def test_lockbox_command_needs_a_lockbox_and_a_primary(tmp_path, change, message):
    raw = {**_raw(), **change}
    if raw.get("primary") is None:
        raw.pop("primary", None)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(raw))
    result = run_cli("lockbox", study, "--out", tmp_path / "r", "--lockboxes",
                     tmp_path / "box", "--cache-dir", tmp_path / "c")
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value, message", [
    ({"fraction": 0.9, "seed": 1}, "dataset.lockbox.fraction"),
    ({"fraction": 0.2, "sead": 1}, "unknown key 'dataset.lockbox.sead'"),
])
def test_bad_lockbox_config_is_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_study(_raw(dataset=dict(SYNTH, lockbox=value)))


def test_a_lockbox_is_not_scored_as_another_studys_external_set(tmp_path):
    registry = tmp_path / "box"
    boxed = parse_study(_raw("owner"))
    run_study(boxed, tmp_path / "owner", cache_dir=tmp_path / "c", lockbox_registry=registry)
    _, locked = _locked_groups(boxed, tmp_path / "c")
    other_data = dict(SYNTH, synthetic=dict(SYNTH["synthetic"], seed=11))
    other_data.pop("lockbox")
    external = {"name": "owners_data", "source": "synthetic", "group_column": "patient_id",
                "synthetic": SYNTH["synthetic"]}
    out = tmp_path / "other"
    run_study(parse_study(_raw("other", dataset=other_data, external=[external])), out,
              cache_dir=tmp_path / "c", lockbox_registry=registry)
    scored = set(pd.read_parquet(out / "external_predictions.parquet")["group"])
    assert len(scored) == 10 - len(locked) and not scored & locked
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["external"]["owners_data"]["n_lockbox_left_out"] > 0


def test_the_protocol_counts_what_the_cv_used_and_the_lockbox_apart(tmp_path):
    study = parse_study(_raw("counted"))
    out = tmp_path / "out"
    run_study(study, out, cache_dir=tmp_path / "c", lockbox_registry=tmp_path / "box")
    dataset, locked = _locked_groups(study, tmp_path / "c")
    rows = np.isin(dataset.groups["patient_id"], list(locked))
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["n_images"] == len(dataset) - rows.sum()
    assert protocol["n_groups"] == 10 - len(locked)
    assert protocol["lockbox"]["n_images"] == rows.sum()
    assert protocol["lockbox"]["n_groups"] == len(locked)
    summary = (out / "summary.md").read_text()
    assert (f"{len(dataset) - rows.sum()} images, {10 - len(locked)} groups (a lockbox of "
            f"{rows.sum()} images, {len(locked)} groups set aside)") in summary
