"""FusedAdam: the same training as Keras' Adam, in one kernel per weight tensor."""

from __future__ import annotations

import numpy as np
import pytest

from karyobench._tf import keras_module
from karyobench.estimators.dcnn import DCNNClassifier
from karyobench.estimators.fused_adam import fused_adam_class


def _model():
    """A small conv + dense model with seeded initial weights."""
    keras = keras_module()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(6, 3, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


def _train(optimizer, amsgrad=False):
    model = _model()
    model.compile(optimizer=optimizer(learning_rate=1e-2, amsgrad=amsgrad),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    X = rng.random((48, 12, 12, 1), dtype=np.float32)
    y = rng.integers(0, 4, 48)
    model.fit(X, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_update_trains_like_keras_adam(amsgrad):
    keras = keras_module()
    reference = _train(keras.optimizers.Adam, amsgrad)
    fused = _train(fused_adam_class(), amsgrad)
    for a, b in zip(reference, fused):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the weights moved: the comparison is not between two untrained models
    initial = _model().get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(reference, initial)) > 1e-2


def test_fit_runs_one_call_per_epoch_and_restores_predict():
    """The fit loop compiles a whole epoch into one call; each epoch still logs its loss
    and validation loss, and predict afterwards runs batch by batch again."""
    rng = np.random.default_rng(1)
    X = rng.random((60, 16, 16), dtype=np.float32)
    y = np.array(["a", "b", "c"] * 20)
    clf = DCNNClassifier(conv_filters=(4, 4, 4), dense_units=(8,), padding="same", epochs=3,
                         batch_size=8, early_stopping=True, patience=5,
                         validation_fraction=0.2, random_state=0).fit(X, y)
    assert len(clf.history_["loss"]) == len(clf.history_["val_loss"]) == 3
    assert clf.model_.steps_per_execution == 1
    assert clf.predict_proba(X[:5]).shape == (5, 3)
