"""Every parameter of the Keras estimators is honoured or refused when the estimator is
built (issue 18, item 5): real training on a few tiny images, one epoch, no mocks."""

from __future__ import annotations

import numpy as np
import pytest
from test_keras_image import bars

from karyobench.errors import ConfigError, ParameterError
from karyobench.estimators import build
from karyobench.estimators.dcnn import DCNNClassifier
from karyobench.estimators.keras_image import ImageKerasClassifier
from karyobench.estimators.registry import uses_tensorflow

KERAS_KINDS = ["dcnn", "resnet", "vgg"]
#: parameters checked by ImageKerasClassifier.check_params outside _parameter_constraints
CHECKED_BY_HAND = {"model", "build_fn", "loss", "optimizer"}


def tiny(**params):
    base = dict(conv_filters=(4,), dense_units=(8,), epochs=1, padding="same",
                batch_size=8, learning_rate=1e-2, random_state=0)
    return DCNNClassifier(**{**base, **params})


@pytest.fixture(scope="module")
def data():
    return bars(32)


def test_every_keras_kind_is_registered_as_tensorflow():
    assert all(uses_tensorflow(kind) for kind in KERAS_KINDS)


@pytest.mark.parametrize("kind", KERAS_KINDS)
def test_every_parameter_has_a_rule(kind):
    """No parameter can be set without being validated: a parameter added later (or by
    a new scikeras) without a constraint fails here instead of being silently ignored."""
    estimator = build(kind)
    assert isinstance(estimator, ImageKerasClassifier)
    unruled = set(estimator.get_params()) - set(estimator._parameter_constraints) \
        - CHECKED_BY_HAND
    assert not unruled, f"{kind}: parameters without a rule: {sorted(unruled)}"


@pytest.mark.parametrize("params, name", [
    ({"optimizer": "bogus"}, "optimizer"),
    ({"optimizer": "Adam"}, "optimizer"),
    ({"loss": "mse"}, "loss"),
    ({"loss": "categorical_crossentropy", "label_smoothing": 0.1}, "loss"),
    ({"metrics": ["no_such_metric"]}, "metrics"),
    ({"metrics": "accuracy"}, "metrics"),
    ({"class_weight": {"a": -1.0}}, "class_weight"),
    ({"class_weight": "inverse"}, "class_weight"),
    ({"shuffle": "batch"}, "shuffle"),
    ({"validation_split": 1.0}, "validation_split"),
    ({"validation_split": 0.2, "early_stopping": True}, "validation_split"),
    ({"validation_batch_size": 0}, "validation_batch_size"),
    ({"model": "my_network"}, "model"),
    ({"build_fn": "my_network"}, "build_fn"),
    ({"warm_start": "yes"}, "warm_start"),
    ({"run_eagerly": 1.5}, "run_eagerly"),
    ({"callbacks": "EarlyStopping"}, "callbacks"),
])
@pytest.mark.parametrize("kind", KERAS_KINDS)
def test_unsupported_values_are_refused_at_build_naming_the_parameter(kind, params, name):
    with pytest.raises(ConfigError, match=rf"'{name}' parameter of \w+Classifier") as err:
        build(kind, params, where="estimators[0]")
    message = str(err.value)
    assert message.startswith("estimators[0]: ") and "\n" not in message


def test_defaults_build_the_fused_adam_and_the_plain_loss(data):
    X, y = data
    model = tiny().fit(X, y)
    assert type(model.model_.optimizer).__name__ == "FusedAdam"
    assert getattr(model.model_.loss, "__name__", None) == "sparse_categorical_crossentropy"
    smoothed = tiny(label_smoothing=0.1).fit(X, y)
    assert type(smoothed.model_.loss).__name__ == "SmoothedSparseCrossentropy"
    assert set(model.history_) == {"loss"}


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("rmsprop", "RMSprop"),
                                       ("adamw", "AdamW")])
def test_optimizer_by_name_is_the_one_that_trains(data, name, cls):
    """``optimizer: sgd`` used to train Adam."""
    X, y = data
    model = build("dcnn", {"optimizer": name, "conv_filters": [4], "dense_units": [8],
                           "padding": "same", "epochs": 1, "learning_rate": 0.05,
                           "batch_size": 8},
                  random_state=0).fit(X, y)
    optimizer = model.model_.optimizer
    assert type(optimizer).__name__ == cls
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.05)
    assert int(np.asarray(optimizer.iterations)) == 4  # 32 images, batch 8, 1 epoch
    assert np.isfinite(model.predict_proba(X)).all()


def test_optimizer_takes_weight_decay_and_the_cosine_schedule(data):
    X, y = data
    model = tiny(optimizer="sgd", weight_decay=1e-3, lr_schedule="cosine", epochs=2).fit(X, y)
    optimizer = model.model_.optimizer
    assert type(optimizer).__name__ == "SGD" and optimizer.weight_decay == pytest.approx(1e-3)
    assert float(np.asarray(optimizer.learning_rate)) < 1e-2  # decayed
    plain = tiny(optimizer="sgd").fit(X, y).model_.optimizer
    assert plain.weight_decay is None  # no decay unless asked


def test_sample_weight_and_class_weight_change_training(data):
    """Weights used to be dropped: any weighting trained the unweighted network."""
    X, y = data
    base = tiny().fit(X, y).predict_proba(X)
    # weights of one (and 'balanced' on balanced classes) are exactly no weights
    np.testing.assert_array_equal(tiny().fit(X, y, sample_weight=np.ones(len(y)))
                                  .predict_proba(X), base)
    np.testing.assert_array_equal(tiny(class_weight="balanced").fit(X, y).predict_proba(X),
                                  base)
    weights = np.where(y == "horizontal", 10.0, 1.0)
    weighted = tiny().fit(X, y, sample_weight=weights).predict_proba(X)
    assert not np.allclose(weighted, base)
    # class weights favour the weighted class
    favour = {}
    for heavy in ("horizontal", "vertical"):
        model = tiny(class_weight={heavy: 10.0, "vertical" if heavy == "horizontal"
                                   else "horizontal": 1.0}).fit(X, y)
        column = list(model.classes_).index("horizontal")
        favour[heavy] = model.predict_proba(X)[:, column].mean()
    assert favour["horizontal"] > favour["vertical"] + 0.2
    # sample_weight ** class_weight multiply (scikeras): horizontal x10 twice is not once
    both = tiny(class_weight={"horizontal": 10.0, "vertical": 1.0}).fit(
        X, y, sample_weight=weights).predict_proba(X)
    assert not np.allclose(both, weighted)


def test_class_weight_and_early_stopping_weight_both_parts(data):
    X, y = data
    model = tiny(epochs=2, early_stopping=True, patience=1, validation_fraction=0.25,
                 class_weight={"horizontal": 5.0, "vertical": 1.0}).fit(X, y)
    plain = tiny(epochs=2, early_stopping=True, patience=1, validation_fraction=0.25).fit(X, y)
    assert "val_loss" in model.history_
    assert model.history_["val_loss"] != plain.history_["val_loss"]


def test_shuffle_false_trains_in_row_order():
    """On blank images only the output bias learns: without shuffling the class of the
    last batch wins; with shuffling (the default) the batches are mixed."""
    X = np.zeros((16, 8, 8), dtype=np.float32)
    labels = np.array(["a"] * 8 + ["b"] * 8)
    winners = {}
    for shuffle in (False, True):
        for order in (slice(None), slice(None, None, -1)):
            model = tiny(shuffle=shuffle, optimizer="sgd", learning_rate=2.0).fit(
                X[order], labels[order])
            winners[shuffle, labels[order][-1]] = model.predict(X[:1])[0]
    assert winners[False, "b"] == "b" and winners[False, "a"] == "a"
    assert winners[True, "b"] != "b" or winners[True, "a"] != "a"


def test_validation_split_holds_out_the_last_rows_and_reports_val_loss(data):
    X, y = data
    split = tiny(validation_split=0.25, epochs=2).fit(X, y)
    assert len(split.history_["val_loss"]) == 2
    # the same as training on the first 24 rows: the last 8 only validate
    first = tiny(epochs=2).fit(X[:24], y[:24])
    np.testing.assert_array_equal(split.predict_proba(X), first.predict_proba(X))
    assert split.history_["loss"] == first.history_["loss"]
    # validation_batch_size batches that pass only (same loss up to rounding)
    batched = tiny(validation_split=0.25, epochs=2, validation_batch_size=2).fit(X, y)
    np.testing.assert_allclose(batched.history_["val_loss"], split.history_["val_loss"],
                               rtol=1e-5)
    with pytest.raises(ParameterError, match="validation_split=0.99 of 32 training images"):
        tiny(validation_split=0.99).fit(X, y)


def test_metrics_are_reported_and_change_nothing(data):
    X, y = data
    base = tiny().fit(X, y)
    measured = tiny(metrics=["accuracy"]).fit(X, y)
    assert set(measured.history_) == {"loss", "accuracy"}
    assert 0.0 <= measured.history_["accuracy"][0] <= 1.0
    np.testing.assert_array_equal(measured.predict_proba(X), base.predict_proba(X))


def test_run_eagerly_trains_eagerly_with_the_same_result(data):
    X, y = data
    eager = tiny(run_eagerly=True).fit(X, y)
    assert eager.model_.run_eagerly
    np.testing.assert_allclose(eager.predict_proba(X), tiny().fit(X, y).predict_proba(X),
                               atol=1e-5)


def test_callbacks_are_called_every_epoch(data):
    X, y = data
    from karyobench._tf import keras_module

    epochs = []
    callback = keras_module().callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epochs.append(epoch))
    tiny(epochs=2, callbacks=[callback]).fit(X, y)
    assert epochs == [0, 1]


def test_warm_start_continues_the_same_model(data):
    X, y = data
    warm = tiny(warm_start=True).fit(X, y)
    network = warm.model_
    once = warm.predict_proba(X)
    warm.fit(X, y)
    assert warm.model_ is network
    assert int(np.asarray(network.optimizer.iterations)) == 8  # 2 fits x 4 steps
    assert not np.allclose(warm.predict_proba(X), once)
    cold = tiny().fit(X, y)
    first = cold.model_
    cold.fit(X, y)
    assert cold.model_ is not first
    np.testing.assert_array_equal(cold.predict_proba(X), once)


def test_fit_time_refusals_are_one_line_config_errors_and_value_errors(data):
    """What only the data can decide is refused at fit: a ConfigError (one line in the
    CLI) that is also the ValueError scikit-learn expects."""
    X, y = data
    with pytest.raises(ParameterError, match=r"'class_weight' parameter of DCNNClassifier "
                                             r"names 1, which is not a training label") as e:
        tiny(class_weight={1: 2.0}).fit(X, y)
    assert isinstance(e.value, ConfigError) and isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)
    with pytest.raises(ParameterError, match="'loss' parameter"):
        tiny(loss="mse").fit(X, y)  # set after build: checked again by fit


def test_fit_keywords_other_than_epochs_are_refused(data):
    """scikeras routes extra fit() keywords to Model.fit; this fit loop would drop them."""
    X, y = data
    with pytest.raises(TypeError, match=r"fit\(\) does not take validation_data"):
        tiny().fit(X, y, validation_data=(X, y))
    model = tiny().fit(X, y, epochs=2)  # scikeras' own fit keywords still work
    assert len(model.history_["loss"]) == 2
