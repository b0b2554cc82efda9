"""Batch normalization with TensorFlow's fused kernel.

Keras 3 normalizes a batch as separate ops (moments, then ``tf.nn.batch_normalization``,
and under ``mixed_bfloat16`` casts around the moments), each a full pass over the
activation maps forward and again backward. On the ResNet's small maps those passes, not
the convolutions, bound training speed (``docs/performance.md``). TensorFlow's
``FusedBatchNormV3`` does the forward pass in one kernel and its registered gradient the
backward pass in another; the formula is Keras' own, so training changes only by float
rounding. The moving averages get the batch's biased variance, as Keras computes it (the
fused op returns the Bessel-corrected one).
"""

from __future__ import annotations

import functools

from karyobench._tf import keras_module


@functools.cache
def fused_batch_norm_class():
    """The ``FusedBatchNormalization`` layer class (registered, so pickled models load)."""
    keras = keras_module()
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="karyobench")
    class FusedBatchNormalization(keras.layers.BatchNormalization):
        """``keras.layers.BatchNormalization`` whose training pass over NHWC maps is one
        fused kernel (computed in float32, returned in the layer's compute dtype: the
        bf16 kernel is slower on CPU than the float32 one with two casts)."""

        def call(self, inputs, training=None, mask=None):
            if not (training and self.trainable and len(inputs.shape) == 4
                    and self.axis in (-1, 3) and mask is None):
                return super().call(inputs, training=training, mask=mask)
            x = tf.cast(inputs, tf.float32)
            channels = x.shape[-1]
            scale = (tf.cast(self.gamma, tf.float32) if self.scale
                     else tf.ones((channels,), tf.float32))
            offset = (tf.cast(self.beta, tf.float32) if self.center
                      else tf.zeros((channels,), tf.float32))
            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset, mean=tf.constant([], tf.float32),
                variance=tf.constant([], tf.float32), epsilon=float(self.epsilon),
                data_format="NHWC", is_training=True)
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
            biased = variance * tf.maximum(count - 1.0, 0.0) / count
            momentum = float(self.momentum)
            self.moving_mean.assign(self.moving_mean * momentum
                                    + tf.stop_gradient(mean) * (1.0 - momentum))
            self.moving_variance.assign(self.moving_variance * momentum
                                        + tf.stop_gradient(biased) * (1.0 - momentum))
            return tf.cast(y, self.compute_dtype)

    return FusedBatchNormalization
