"""Every parameter of the classical baselines is honoured (scikit-learn) or refused when
the estimator is built; a pipeline's steps are the kind's, not parameters (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from karyobench.errors import ConfigError, ParameterError
from karyobench.estimators import build
from karyobench.estimators.features import HOGFeatures

BASELINES = ["svm_linear_pixels", "svm_rbf_hog", "rf_hog", "rf_pixels", "logreg_pixels"]


def _owner(estimator, key):
    """The estimator (pipeline or step) that owns parameter ``key``, and its own name."""
    path, _, leaf = key.rpartition("__")
    return (estimator.get_params(deep=True)[path] if path else estimator), leaf


@pytest.mark.parametrize("kind", BASELINES)
def test_every_baseline_parameter_has_a_rule_or_is_a_refused_component(kind):
    estimator = build(kind)
    for key, value in estimator.get_params(deep=True).items():
        if isinstance(value, BaseEstimator) or key.split("__")[-1] == "steps":
            with pytest.raises(ConfigError, match=rf"'{key}' is a component of '{kind}'"):
                build(kind, {key: "passthrough"})
            continue
        owner, leaf = _owner(estimator, key)
        assert leaf in getattr(owner, "_parameter_constraints", {}), \
            f"{kind}: '{key}' of {type(owner).__name__} has no rule"


@pytest.mark.parametrize("kind, params, name", [
    ("svm_rbf_hog", {"hog__pixels_per_cell": [8]}, "pixels_per_cell"),
    ("rf_hog", {"hog__cells_per_block": [2, 0]}, "cells_per_block"),
    ("rf_hog", {"hog__orientations": 0}, "orientations"),
    ("svm_rbf_hog", {"hog__memory": 3}, "memory"),
    ("rf_pixels", {"memory": 5}, "memory"),
    ("logreg_pixels", {"verbose": "loud"}, "verbose"),
])
def test_bad_values_are_refused_at_build_naming_the_parameter(kind, params, name):
    with pytest.raises(ConfigError, match=rf"'{name}' parameter of \w+"):
        build(kind, params)


def test_component_refusal_points_at_the_component_parameters():
    with pytest.raises(ConfigError, match=r"Set the component's parameters instead "
                                          r"\(e\.g\. 'svc__C'\)"):
        build("svm_linear_pixels", {"svc": "passthrough"})
    with pytest.raises(ConfigError) as info:
        build("rf_pixels", {"no_such": 1})
    settable = str(info.value).split("Settable: ")[1]
    assert "rf__n_estimators" in settable and "steps" not in settable \
        and "pixels," not in settable


def test_hog_cell_parameters_are_honoured_and_checked_at_fit():
    X = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    model = build("svm_rbf_hog", {"hog__pixels_per_cell": [4, 4], "hog__cells_per_block": [1, 1],
                                  "hog__orientations": 6, "hog__memory": None})
    assert model.named_steps["hog"].fit_transform(X).shape == (2, 4 * 4 * 6)
    with pytest.raises(ParameterError, match="'pixels_per_cell' parameter of HOGFeatures") as e:
        HOGFeatures(pixels_per_cell=(4, 4, 4)).fit(X)
    assert isinstance(e.value, ValueError)  # scikit-learn's contract for fit
