"""FusedBatchNormalization: Keras' batch norm computed by one fused TensorFlow kernel."""

from __future__ import annotations

import numpy as np
import pytest

from karyobench._tf import import_tensorflow, keras_module
from karyobench.estimators.fused_norm import fused_batch_norm_class
from karyobench.estimators.keras_image import dtype_policy
from karyobench.estimators.resnet import ResNetClassifier


def _forward_and_gradients(layer_class, x, upstream):
    """Output, input/scale/offset gradients and moving statistics after one training call."""
    tf = import_tensorflow()
    layer = layer_class(momentum=0.9)
    layer.build(x.shape)
    layer.gamma.assign(np.linspace(0.5, 1.5, x.shape[-1]).astype(np.float32))
    layer.beta.assign(np.linspace(-0.2, 0.3, x.shape[-1]).astype(np.float32))
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = layer(inputs, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    grads = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    return ([np.asarray(tf.cast(y, tf.float32))] + [np.asarray(g) for g in grads]
            + [layer.moving_mean.numpy(), layer.moving_variance.numpy()])


def test_training_pass_equals_keras_batch_norm():
    keras = keras_module()
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(8, 6, 5, 4)) * 3 + 1).astype(np.float32)
    upstream = rng.normal(size=x.shape).astype(np.float32)
    reference = _forward_and_gradients(keras.layers.BatchNormalization, x, upstream)
    fused = _forward_and_gradients(fused_batch_norm_class(), x, upstream)
    names = ["output", "d input", "d gamma", "d beta", "moving mean", "moving variance"]
    for name, a, b in zip(names, reference, fused):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=name)
    # the moving variance moved from 1 towards the batch's (biased) variance of ~9
    assert reference[-1].min() > 1.5


def test_bfloat16_compute_returns_bfloat16_close_to_float32():
    keras = keras_module()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    upstream = np.ones_like(x)
    with dtype_policy("mixed_bfloat16"):
        layer = fused_batch_norm_class()(momentum=0.9)
    y = layer(x, training=True)
    assert y.dtype.name == "bfloat16"
    reference = keras.layers.BatchNormalization(momentum=0.9)(x, training=True)
    np.testing.assert_allclose(np.asarray(y, dtype=np.float32), np.asarray(reference),
                               atol=0.05)
    assert _forward_and_gradients(fused_batch_norm_class(), x, upstream)[0].shape == x.shape


@pytest.mark.parametrize("fused", [False, True])
def test_resnet_uses_the_kernel_it_is_given(fused):
    """``fused_batch_norm`` picks the layer; the fused network trains and predicts, and its
    inference uses the moving statistics its training pass kept."""
    rng = np.random.default_rng(2)
    X = rng.random((48, 16, 16), dtype=np.float32)
    y = np.array(["a", "b", "c"] * 16)
    X[y == "b"] += 0.5
    clf = ResNetClassifier(widths=(4, 8), blocks=1, epochs=3, batch_size=16,
                           fused_batch_norm=fused, random_state=0).fit(X, y)
    kinds = {type(layer).__name__ for layer in clf.model_.layers}
    assert ("FusedBatchNormalization" in kinds) is fused
    assert ("BatchNormalization" in kinds) is not fused
    proba = clf.predict_proba(X)
    assert proba.shape == (48, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    norms = [layer for layer in clf.model_.layers if "BatchNormalization" in type(layer).__name__]
    assert all(np.any(layer.moving_mean.numpy() != 0) for layer in norms)
