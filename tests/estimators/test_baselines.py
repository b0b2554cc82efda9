"""Registry, classical baselines on real crops, HOG/pixel features."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone, is_classifier

from karyobench.errors import ConfigError
from karyobench.estimators import available, build
from karyobench.estimators.features import HOGFeatures, PixelFlattener

BASELINES = ["svm_linear_pixels", "svm_rbf_hog", "rf_hog", "rf_pixels", "logreg_pixels"]
FAST = {"rf_hog": {"rf__n_estimators": 20}, "rf_pixels": {"rf__n_estimators": 20}}


def test_registry_lists_dcnn_and_baselines():
    names = available()
    assert set(BASELINES) | {"dcnn"} <= set(names)
    assert all(description for description in names.values())


@pytest.mark.parametrize("kind", BASELINES)
def test_baseline_fits_and_predicts_real_crops(kind, small_bioimlab):
    data = small_bioimlab
    train = data.groups["karyotype_id"] != "8"
    model = build(kind, FAST.get(kind), random_state=0)
    assert is_classifier(model)
    model.fit(data.images[train], data.labels[train])
    predicted = model.predict(data.images[~train])
    assert predicted.shape == ((~train).sum(),)
    assert set(predicted) <= set(data.labels)
    # far better than chance (1/4) on the training crops themselves
    assert (model.predict(data.images[train]) == data.labels[train]).mean() > 0.6


def test_build_applies_params_and_seeds():
    model = build("rf_hog", {"rf__n_estimators": 7}, random_state=3)
    params = model.get_params()
    assert params["rf__n_estimators"] == 7 and params["rf__random_state"] == 3
    # an explicit random_state param wins over the study seed
    model = build("rf_hog", {"rf__random_state": 11}, random_state=3)
    assert model.get_params()["rf__random_state"] == 11
    dcnn = build("dcnn", {"epochs": 1, "conv_filters": [4]}, random_state=5)
    assert dcnn.get_params()["random_state"] == 5 and dcnn.get_params()["epochs"] == 1


def test_build_returns_fresh_estimators():
    a, b = build("svm_linear_pixels"), build("svm_linear_pixels")
    assert a is not b
    a.set_params(svc__C=5)
    assert b.get_params()["svc__C"] == 1.0


@pytest.mark.parametrize("kind, params, pattern", [
    ("svm_linaer_pixels", None,
     r"unknown estimator kind 'svm_linaer_pixels'. Did you mean 'svm_linear_pixels'\?"),
    ("nope", None, r"unknown estimator kind 'nope'\. Available: dcnn, logreg_pixels"),
    ("svm_linear_pixels", {"svc__c": 2}, r"has no parameter 'svc__c'. Did you mean 'svc__C'\?"),
    ("dcnn", {"epoch": 2}, r"'dcnn' has no parameter 'epoch'. Did you mean 'epochs'\?"),
    # a valid name with an invalid value is refused before any fold trains
    ("svm_linear_pixels", {"svc__kernel": "banana"},
     r"invalid parameters for 'svm_linear_pixels': The 'kernel' parameter of SVC"),
    ("rf_hog", {"rf__n_estimators": 0}, r"'n_estimators' parameter of RandomForestClassifier"),
])
def test_unknown_kind_or_parameter(kind, params, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        build(kind, params, where="estimator 'x'")
    assert str(info.value).startswith("estimator 'x': ")


def test_settable_list_hides_internals():
    with pytest.raises(ConfigError) as info:
        build("dcnn", {"bogus_param_xyz": 1})
    message = str(info.value)
    assert "conv_filters" in message and "build_fn" not in message


def test_hog_output_shape():
    X = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    features = HOGFeatures().fit(X).transform(X)
    # (32/8 - 2 + 1)^2 blocks x (2x2 cells x 9 orientations)
    assert features.shape == (3, 9 * 2 * 2 * 9) and features.dtype == np.float32
    coarse = HOGFeatures(orientations=6, pixels_per_cell=(16, 16), cells_per_block=(1, 1))
    assert coarse.fit_transform(X).shape == (3, 4 * 6)
    assert HOGFeatures().fit_transform(X[..., np.newaxis]).shape == (3, 324)  # (n, h, w, 1)


def test_hog_memory_cache_gives_identical_features(tmp_path):
    X = np.random.default_rng(1).random((2, 16, 16)).astype(np.float32)
    plain = HOGFeatures().fit_transform(X)
    cached = HOGFeatures(memory=str(tmp_path))
    np.testing.assert_array_equal(cached.fit_transform(X), plain)
    np.testing.assert_array_equal(cached.transform(X), plain)
    assert any(tmp_path.rglob("*.pkl")) or any(tmp_path.iterdir())
    assert clone(cached).get_params()["memory"] == str(tmp_path)


def test_pixel_flattener():
    X = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    flat = PixelFlattener().fit(X)
    assert flat.n_features_in_ == 12
    np.testing.assert_array_equal(flat.transform(X), X.reshape(2, 12))
    with pytest.raises(ValueError, match=r"stack of grey images \(n, h, w\)"):
        PixelFlattener().fit(np.zeros((2, 12)))


@pytest.mark.parametrize("params", [{"epochs": "ten"}, {"conv_filters": 4},
                                    {"padding": "full"}, {"learning_rate": "fast"}])
def test_dcnn_parameter_values_checked_early(params):
    with pytest.raises(ConfigError, match="invalid parameters for 'dcnn'"):
        build("dcnn", params)
