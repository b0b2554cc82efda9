"""The shared Keras image machinery and the residual / VGG-style networks, trained for real."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from karyobench._tf import keras_module
from karyobench.estimators import build
from karyobench.estimators.dcnn import DCNNClassifier
from karyobench.estimators.keras_image import shape_measures_layer, smoothed_loss_class
from karyobench.estimators.resnet import ResNetClassifier
from karyobench.estimators.vgg import VGGClassifier

AUGMENT = dict(rotation=0.05, flip="horizontal", zoom=0.1, shift=0.05, contrast=0.2)


def bars(n, size=16, seed=0):
    """Vertical vs horizontal bright bars at random positions on a dark canvas."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, size, size), dtype=np.float32)
    y = np.array(["vertical", "horizontal"] * (n // 2))
    for i, label in enumerate(y):
        a, b = rng.integers(2, size - 4, size=2)
        if label == "vertical":
            X[i, 2:size - 2, a:a + 3] = 1.0
        else:
            X[i, a:a + 3, 2:size - 2] = 1.0
    X += rng.normal(0, 0.05, X.shape).astype(np.float32)
    return X.clip(0, 1), y


def small_nets(**overrides):
    shared = {**dict(epochs=8, batch_size=16, learning_rate=1e-2, random_state=0),
              **overrides}
    return {
        "resnet": ResNetClassifier(widths=(4, 8), blocks=1, **shared),
        "vgg": VGGClassifier(widths=(4, 8), convs_per_stage=1, dense_units=8, **shared),
        "dcnn_gap": DCNNClassifier(conv_filters=(4, 8), dense_units=(16,), padding="same",
                                   head="gap", batch_norm=True, **shared),
    }


@pytest.mark.parametrize("name", ["resnet", "vgg", "dcnn_gap"])
def test_each_network_learns_bar_orientation_with_augmentation(name):
    X, y = bars(160)
    X_test, y_test = bars(80, seed=1)
    model = small_nets(**AUGMENT, lr_schedule="cosine")[name].fit(X, y)
    assert np.mean(model.predict(X_test) == y_test) >= 0.9
    # augmentation is train-time only: inference is deterministic
    np.testing.assert_array_equal(model.predict_proba(X_test), model.predict_proba(X_test))


def test_augmentation_layers_are_in_the_graph_only_when_asked():
    X, y = bars(32)
    plain = small_nets(epochs=1)["resnet"].fit(X, y)
    augmented = small_nets(epochs=1, **AUGMENT)["resnet"].fit(X, y)
    kinds = lambda m: {type(layer).__name__ for layer in m.model_.layers}  # noqa: E731
    random_layers = {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                     "RandomContrast"}
    assert not kinds(plain) & random_layers
    assert random_layers <= kinds(augmented)


def test_same_seed_same_probabilities_with_augmentation():
    X, y = bars(64)
    first = small_nets(epochs=2, **AUGMENT)["vgg"].fit(X, y).predict_proba(X)
    second = small_nets(epochs=2, **AUGMENT)["vgg"].fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_tta_averages_the_image_and_its_mirror():
    X, y = bars(64)
    model = small_nets(epochs=2)["resnet"].fit(X, y)
    plain = model.predict_proba(X)
    mirrored = model.predict_proba(X[:, :, ::-1])
    model.tta = True
    np.testing.assert_allclose(model.predict_proba(X), (plain + mirrored) / 2, atol=1e-6)
    assert not np.allclose(plain, mirrored)  # so the average is not trivially the same


def test_shape_measures_are_area_height_and_width_fractions():
    images = np.zeros((2, 20, 10, 1), dtype=np.float32)
    images[0, 5:15, 2:4] = 0.8      # 10 rows x 2 columns
    images[1, 0:20, 0:10] = 0.05    # below the threshold: background
    measures = np.asarray(shape_measures_layer()(threshold=0.1)(images))
    np.testing.assert_allclose(measures[0], [20 / 200, 10 / 20, 2 / 10])
    np.testing.assert_allclose(measures[1], [0, 0, 0])


def test_shape_measures_read_the_native_channel_of_a_two_channel_canvas():
    """With ``native_channel`` the last channel holds the size-keeping rendering: the
    stretched first channel must not be what is measured."""
    images = np.zeros((1, 20, 10, 2), dtype=np.float32)
    images[0, :, :, 0] = 0.9           # fit rendering: fills the canvas
    images[0, 8:12, 4:6, 1] = 0.9      # native rendering: 4 rows x 2 columns
    measures = np.asarray(shape_measures_layer()(threshold=0.1)(images))
    np.testing.assert_allclose(measures[0], [8 / 200, 4 / 20, 2 / 10])


def test_body_channels_keeps_the_native_channel_out_of_the_network():
    """``body_channels=1``: the network sees channel 0 only; channel 1 reaches the head
    through the shape measures alone (so only its foreground mask matters)."""
    rng = np.random.default_rng(0)
    X = rng.random((64, 16, 16, 2)).astype(np.float32)
    X[..., 1] = 0.0
    X[:, 4:12, 6:10, 1] = 0.8
    y = np.array(["a", "b"] * 32)
    model = ResNetClassifier(widths=(4, 8), blocks=1, epochs=2, body_channels=1,
                             shape_input=True, random_state=0).fit(X, y)
    first_conv = next(layer for layer in model.model_.layers if "conv" in layer.name)
    assert first_conv.kernel.shape[2] == 1
    base = model.predict_proba(X)
    brighter = X.copy()
    brighter[..., 1] *= 1.2                      # same mask, other pixel values
    np.testing.assert_allclose(model.predict_proba(brighter), base, atol=1e-6)
    longer = X.copy()
    longer[:, 1:15, 6:10, 1] = 0.8               # a longer chromosome in the native channel
    assert np.abs(model.predict_proba(longer) - base).max() > 1e-4
    with pytest.raises(ValueError, match="body_channels=3 but the images have 2"):
        ResNetClassifier(body_channels=3).check_channels(2)


def test_label_smoothing_loss_is_cross_entropy_against_smoothed_targets():
    keras = keras_module()
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    codes = np.array([0, 2])
    targets = np.full((2, 3), 0.2 / 3)
    targets[[0, 1], codes] += 0.8
    expected = np.mean(-(targets * np.log(proba)).sum(axis=1))
    assert float(smoothed_loss_class()(smoothing=0.2)(codes, proba)) == pytest.approx(
        expected, rel=1e-5)
    assert float(smoothed_loss_class()(smoothing=0.0)(codes, proba)) == pytest.approx(
        float(keras.losses.SparseCategoricalCrossentropy()(codes, proba)), rel=1e-5)


def test_label_smoothing_keeps_confidence_near_its_target():
    """Trained to convergence on separable bars, the unsmoothed network is near-certain;
    with smoothing 0.3 (target 1 - 0.3 + 0.15 = 0.85) it stays near 0.85, still right."""
    X, y = bars(160)
    confidence = {}
    for smoothing in (0.0, 0.3):
        model = small_nets(epochs=15, label_smoothing=smoothing)["resnet"].fit(X, y)
        assert np.mean(model.predict(X) == y) >= 0.95
        confidence[smoothing] = model.predict_proba(X).max(axis=1).mean()
    assert confidence[0.0] > 0.95
    assert 0.75 < confidence[0.3] < 0.92


def test_shape_input_feeds_the_head_and_helps_when_only_size_differs():
    """Two classes that differ only in bar length: a GAP network sees the size only
    weakly; the measured length makes it explicit."""
    rng = np.random.default_rng(0)
    X = np.zeros((200, 32, 32), dtype=np.float32)
    y = np.array(["long", "short"] * 100)
    for i, label in enumerate(y):
        length = rng.integers(20, 26) if label == "long" else rng.integers(14, 20)
        top, col = rng.integers(0, 32 - length), rng.integers(0, 28)
        X[i, top:top + length, col:col + 3] = rng.uniform(0.5, 1.0)
    scores = {}
    for shape_input in (True, False):
        model = VGGClassifier(widths=(4,), convs_per_stage=1, dense_units=0, epochs=15,
                              batch_size=20, learning_rate=3e-2, random_state=0,
                              shape_input=shape_input).fit(X[:100], y[:100])
        names = [layer.name for layer in model.model_.layers]
        assert ("shape_measures" in names) is shape_input
        scores[shape_input] = np.mean(model.predict(X[100:]) == y[100:])
    assert scores[True] >= 0.95 and scores[True] > scores[False] + 0.1


def test_bfloat16_precision_computes_in_bf16_and_returns_float32():
    X, y = bars(32)
    model = small_nets(epochs=1, precision="mixed_bfloat16")["vgg"].fit(X, y)
    convs = [layer for layer in model.model_.layers if "conv" in layer.name]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
    assert all(layer.variable_dtype == "float32" for layer in convs)
    proba = model.predict_proba(X)
    assert proba.dtype == np.float32 or proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    # building under bf16 leaves the global policy as it was
    assert keras_module().mixed_precision.global_policy().name == "float32"


def test_cosine_schedule_and_weight_decay_shape_the_optimizer():
    X, y = bars(32)
    model = small_nets(epochs=2, lr_schedule="cosine", weight_decay=1e-4)["resnet"].fit(X, y)
    optimizer = model.model_.optimizer
    assert type(optimizer).__name__ == "AdamW"
    rate = float(keras_module().ops.convert_to_numpy(optimizer.learning_rate))
    assert rate < 1e-2  # decayed from learning_rate over the planned steps


def test_onecycle_schedule_warms_up_to_the_learning_rate_then_decays():
    X, y = bars(32)
    model = small_nets(epochs=10, batch_size=8, learning_rate=1e-2,
                       lr_schedule="onecycle")["resnet"].fit(X, y)
    optimizer = model.model_.optimizer
    schedule = optimizer._learning_rate  # Keras keeps the schedule object here
    rates = np.array([float(keras_module().ops.convert_to_numpy(schedule(step)))
                      for step in range(41)])
    total = 40  # 32 images / batch 8 x 10 epochs
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(1e-2 / 25, rel=1e-5)
    assert peak == round(0.3 * total) and rates[peak] == pytest.approx(1e-2, rel=1e-5)
    assert np.all(np.diff(rates[:peak + 1]) > 0) and np.all(np.diff(rates[peak:]) < 0)
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)
    # trained through the whole cycle: the rate the optimizer ends on is the last one
    final = float(keras_module().ops.convert_to_numpy(optimizer.learning_rate))
    assert final == pytest.approx(0.0, abs=1e-9)


def test_params_are_sklearn_params_and_bad_values_are_refused():
    model = build("resnet", {"widths": [8, 16], "flip": "horizontal", "tta": True})
    params = clone(model).get_params()
    assert params["widths"] == [8, 16] and params["flip"] == "horizontal" and params["tta"]
    for kind, bad in [("resnet", {"flip": "diagonal"}), ("vgg", {"rotation": 2.0}),
                      ("dcnn", {"precision": "float16"}), ("resnet", {"widths": [8, 0]})]:
        with pytest.raises(Exception, match=next(iter(bad))):
            build(kind, bad)


def test_too_small_canvas_is_named():
    with pytest.raises(ValueError, match="4x4 px canvas is too small for ResNetClassifier"):
        ResNetClassifier(widths=(8, 16, 32)).check_input_shape((4, 4))
    ResNetClassifier(widths=(8, 16, 32)).check_input_shape((8, 8))


def test_networks_train_on_real_crops(small_bioimlab):
    X, y = small_bioimlab.images, small_bioimlab.labels
    for model in small_nets(epochs=2, shape_input=True, **AUGMENT).values():
        fitted = model.fit(X, y)
        proba = fitted.predict_proba(X)
        assert proba.shape == (len(X), 4)
        assert np.isfinite(proba).all()


def test_pickle_round_trip_keeps_custom_layers_and_probabilities():
    import pickle

    X, y = bars(32)
    model = small_nets(epochs=1, shape_input=True, tta=True, **AUGMENT)["resnet"].fit(X, y)
    assert type(model.model_.optimizer).__name__ == "FusedAdam"
    restored = pickle.loads(pickle.dumps(model))
    assert "shape_measures" in [layer.name for layer in restored.model_.layers]
    assert type(restored.model_.optimizer).__name__ == "FusedAdam"  # registered class
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
