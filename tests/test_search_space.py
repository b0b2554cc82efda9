"""Search spaces in the study YAML: parsing, errors, sampling and its inverse."""

from __future__ import annotations

import optuna
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from karyobench.errors import ConfigError
from karyobench.study import parse_study
from karyobench.tuning.nested import check_tuning
from karyobench.search_space import (TuningConfig, WidthsSpace, params_from_optuna,
                                     suggest_params)

EXAMPLE = """
name: t
tasks: [{name: n24, classes: normal24}]
estimators:
  - kind: dcnn
    name: dcnn_tuned
    params: {epochs: 20}
    tuning:
      n_trials: 20
      inner_folds: 3
      metric: accuracy
      pruner: median        # median | successive_halving | none
      space:
        conv_filters: {type: widths, depth: [2, 3], low: 8, high: 128, log: true}
        dense_units: {type: widths, depth: [1, 4], low: 32, high: 1024, log: true}
        learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
        dropout: {type: float, low: 0.0, high: 0.5}
        batch_size: {type: categorical, choices: [32, 64]}
        epochs: {type: int, low: 5, high: 40, step: 5}
  - kind: svm_rbf_hog
    tuning:
      space:
        svc__C: {type: float, low: 0.01, high: 100, log: true}
        svc__gamma: {type: categorical, choices: [scale, 0.001, 0.01]}
        hog__pixels_per_cell: {type: categorical, choices: [[4, 4], [8, 8]]}
  - kind: rf_hog
    params: {rf__max_depth: 16}   # the default trial must lie in the space
    tuning:
      pruner: successive_halving
      space:
        rf__max_depth: {type: int, low: 2, high: 32, log: true}
        rf__n_estimators: {type: int, low: 50, high: 500, step: 50}
"""


def test_example_yaml_parses_and_names_real_params():
    study = parse_study(yaml.safe_load(EXAMPLE))
    tuning = study.estimators[0].tuning
    assert tuning.n_trials == 20 and tuning.pruner == "median"
    assert isinstance(tuning.space["conv_filters"], WidthsSpace)
    assert tuning.space["conv_filters"].depth_range == (2, 3)
    assert study.estimators[1].tuning.n_trials == 20  # default
    check_tuning(study)  # every searched name is a real parameter


@pytest.mark.parametrize("bad, fragment", [
    ({"space": {"x": {"type": "float", "low": 0, "high": 1, "log": True}}}, "log"),
    ({"space": {"x": {"type": "int", "low": 5, "high": 1}}}, "high"),
    ({"space": {"x": {"type": "widths", "depth": [3, 2], "low": 8, "high": 9}}}, "depth"),
    ({"space": {"x": {"type": "floaty", "low": 0, "high": 1}}}, "floaty"),
    ({"space": {"x": {"type": "int", "low": 0, "high": 1, "lo": 3}}}, "lo"),
    ({"space": {}}, "space"),
    ({"space": {"x": {"type": "categorical", "choices": [1, 1]}}}, "distinct"),
    ({"pruner": "asha", "space": {"x": {"type": "int", "low": 0, "high": 1}}},
     "pruner"),
    ({"sampler": "grid", "n_trials": 2, "space": {"x": {"type": "float", "low": 0,
                                                         "high": 1}}},
     "sampler 'grid' needs categorical or int spaces; x is not one"),
    ({"sampler": "grid", "n_trials": 7, "space": {
        "x": {"type": "categorical", "choices": [0.0, 0.1]},
        "y": {"type": "int", "low": 1, "high": 3}}},
     "n_trials = 7 exceeds the grid's 6 combinations; set n_trials to 6 or fewer"),
    ({"sampler": "random", "space": {"x": {"type": "int", "low": 0, "high": 1}}},
     "sampler"),
])
def test_invalid_spaces_are_rejected(bad, fragment):
    with pytest.raises(ValidationError, match=fragment):
        TuningConfig.model_validate(bad)


def test_study_error_names_the_field():
    raw = yaml.safe_load(EXAMPLE)
    raw["estimators"][0]["tuning"]["n_trails"] = 3
    with pytest.raises(ConfigError, match="n_trails"):
        parse_study(raw)


def test_unknown_parameter_in_space_is_a_config_error():
    raw = yaml.safe_load(EXAMPLE)
    raw["estimators"][1]["tuning"]["space"] = {"svc__CC": {"type": "float", "low": 1,
                                                           "high": 2}}
    with pytest.raises(ConfigError, match="did you mean 'svc__C'"):
        check_tuning(parse_study(raw))


def test_bad_inner_params_are_config_errors_before_any_fold():
    raw = yaml.safe_load(EXAMPLE)
    raw["estimators"][1]["tuning"]["inner_params"] = {"svc__max_itr": 10}
    with pytest.raises(ConfigError, match=r"\(tuning.inner_params\): 'svm_rbf_hog' has no "
                                          r"parameter 'svc__max_itr'\. Did you mean "
                                          r"'svc__max_iter'"):
        check_tuning(parse_study(raw))
    raw["estimators"][1]["tuning"]["inner_params"] = {"svc__max_iter": "many"}
    with pytest.raises(ConfigError, match=r"estimator 'svm_rbf_hog' \(tuning.inner_params\)"
                                          r": invalid parameters"):
        check_tuning(parse_study(raw))


def test_categorical_lists_round_trip_through_optuna():
    config = TuningConfig.model_validate(
        {"space": {"hog__pixels_per_cell": {"type": "categorical",
                                            "choices": [[4, 4], [8, 8]]},
                   "svc__gamma": {"type": "categorical", "choices": ["scale", 0.01]}}})
    study = optuna.create_study()
    for _ in range(6):
        trial = study.ask()
        params = suggest_params(trial, config.space)
        assert params["hog__pixels_per_cell"] in ([4, 4], [8, 8])
        assert params_from_optuna(trial.params, config.space) == params
        study.tell(trial, 0.0)


@settings(max_examples=30, deadline=None)
@given(depth_low=st.integers(1, 3), extra=st.integers(0, 2), low=st.integers(1, 64),
       span=st.integers(0, 512), log=st.booleans(), seed=st.integers(0, 1000))
def test_widths_sampling_is_invertible(depth_low, extra, low, span, log, seed):
    config = TuningConfig.model_validate({"space": {"dense_units": {
        "type": "widths", "depth": [depth_low, depth_low + extra], "low": low,
        "high": low + span, "log": log}}})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    params = suggest_params(trial, config.space)
    widths = params["dense_units"]
    assert depth_low <= len(widths) <= depth_low + extra
    assert all(low <= w <= low + span for w in widths)
    assert params_from_optuna(trial.params, config.space) == params
