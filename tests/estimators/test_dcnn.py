"""The tiny DCNN on real crops through the scikit-learn toolchain."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import (GridSearchCV, StratifiedKFold, check_cv,
                                     cross_val_score)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from karyobench.estimators.dcnn import DCNNClassifier, as_image_batch


def tiny(**overrides):
    params = dict(conv_filters=(4,), dense_units=(8,), padding="same", epochs=2,
                  batch_size=16, random_state=0)
    params.update(overrides)
    return DCNNClassifier(**params)


def sorted_by_label(data):
    order = np.argsort(data.labels, kind="stable")
    return data.images[order], data.labels[order]


def test_as_image_batch_shapes():
    assert as_image_batch(np.zeros((2, 5, 6))).shape == (2, 5, 6, 1)
    assert as_image_batch(np.zeros((2, 5, 6, 1))).shape == (2, 5, 6, 1)
    assert as_image_batch(np.zeros((2, 30)), image_shape=(5, 6)).shape == (2, 5, 6, 1)
    assert as_image_batch(np.zeros((2, 30))).shape == (2, 1, 30, 1)
    with pytest.raises(ValueError, match="2-D, 3-D or 4-D"):
        as_image_batch(np.zeros(3))


def test_cross_val_score_is_stratified_on_sorted_labels(small_bioimlab):
    X, y = sorted_by_label(small_bioimlab)
    model = tiny()
    assert is_classifier(model)
    cv = check_cv(5, y, classifier=is_classifier(model))
    assert isinstance(cv, StratifiedKFold)
    # with plain KFold on sorted labels, every test fold would hold classes never trained on
    for _, test in check_cv(3, y, classifier=True).split(X, y):
        assert set(y[test]) == set(y)
    scores = cross_val_score(model, X, y, cv=3, error_score="raise")
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


def test_fit_predict_and_classes(small_bioimlab):
    X, y = small_bioimlab.images, small_bioimlab.labels
    model = tiny().fit(X, y)
    assert list(model.classes_) == sorted(set(y))
    proba = model.predict_proba(X[:5])
    assert proba.shape == (5, len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(model.predict(X[:5])) <= set(y)
    assert len(model.history_["loss"]) == 2


def test_clone_keeps_params_drops_fit(small_bioimlab):
    model = tiny(conv_filters=(3,)).fit(small_bioimlab.images, small_bioimlab.labels)
    copy = clone(model)
    assert copy.get_params()["conv_filters"] == (3,)
    assert copy.get_params()["epochs"] == 2
    assert not hasattr(copy, "model_")


def _double(X):
    return np.asarray(X) * 2.0


def test_inside_pipeline(small_bioimlab):
    pipe = Pipeline([("scale", FunctionTransformer(_double)), ("dcnn", tiny(epochs=1))])
    assert is_classifier(pipe)
    pipe.set_params(dcnn__dense_units=(6,))
    pipe.fit(small_bioimlab.images, small_bioimlab.labels)
    assert pipe.predict(small_bioimlab.images[:3]).shape == (3,)


def test_grid_search_over_conv_filters(small_bioimlab):
    search = GridSearchCV(tiny(epochs=1), {"conv_filters": [(2,), (4,)]}, cv=2,
                          error_score="raise")
    search.fit(small_bioimlab.images, small_bioimlab.labels)
    assert search.best_params_["conv_filters"] in [(2,), (4,)]
    assert len(search.cv_results_["params"]) == 2


def test_pickle_round_trip_gives_identical_probabilities(small_bioimlab):
    X, y = small_bioimlab.images, small_bioimlab.labels
    model = tiny(epochs=1).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(model.predict_proba(X), restored.predict_proba(X))
    assert restored.get_params()["conv_filters"] == (4,)


def test_same_random_state_same_probabilities(small_bioimlab):
    X, y = small_bioimlab.images, small_bioimlab.labels
    a = tiny(random_state=7).fit(X, y).predict_proba(X)
    b = tiny(random_state=7).fit(X, y).predict_proba(X)
    c = tiny(random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_early_stopping_validates_on_training_data_only(small_bioimlab):
    X, y = small_bioimlab.images, small_bioimlab.labels
    model = tiny(epochs=3, early_stopping=True, patience=1, validation_fraction=0.25)
    model.fit(X, y)
    assert "val_loss" in model.history_
    assert 1 <= len(model.history_["val_loss"]) <= 3
    # the carved validation set is a stratified part of what fit() was given
    Xt, yt, (Xv, yv) = model._carve_validation(X, model.target_encoder_.transform(y), 0)
    assert len(Xt) + len(Xv) == len(X)
    assert len(Xv) == round(0.25 * len(X))
    assert set(np.unique(yv)) == set(np.unique(yt))


def test_early_stopping_refuses_singleton_classes():
    X = np.random.default_rng(0).random((5, 8, 8)).astype(np.float32)
    y = np.array(["a", "a", "a", "a", "b"])
    with pytest.raises(ValueError, match="at least 2 training images per class"):
        tiny(epochs=1, early_stopping=True).fit(X, y)


def test_valid_padding_needs_large_enough_input():
    """The seed's 'valid' padding on 16 px with three conv/pool blocks is too deep."""
    X = np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    y = np.array(list("aabbcc"))
    model = tiny(conv_filters=(2, 2, 2), padding="valid", epochs=1)
    with pytest.raises(ValueError):
        model.fit(X, y)
    tiny(conv_filters=(2, 2, 2), padding="same", epochs=1).fit(X, y)


def test_too_small_canvas_is_named_before_training():
    seed = DCNNClassifier()
    seed.check_input_shape((22, 22))  # the smallest canvas the seed stack survives
    with pytest.raises(ValueError, match=r"16x16 px canvas is too small .*needs >= 22 px"):
        seed.check_input_shape((16, 16))
    DCNNClassifier(padding="same").check_input_shape((8, 8))
