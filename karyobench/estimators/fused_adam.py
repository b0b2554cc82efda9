"""Adam with TensorFlow's fused update kernel.

Keras 3 writes Adam's update as about a dozen element-wise ops per weight tensor, each a
full pass over memory. For the seed DCNN (4 M dense weights) that update cost more per
step than a third of the convolutions (``docs/performance.md``). TensorFlow's
``ResourceApplyAdam`` computes the same update in one multi-threaded pass; the formula is
Keras' own (``alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``, then ``m``, ``v`` and the
weight in place), so training is unchanged up to float rounding.
"""

from __future__ import annotations

import functools

from karyobench._tf import keras_module
from karyobench.compat.keras import adam_slots


@functools.cache
def fused_adam_class():
    """The ``FusedAdam`` optimizer class (registered, so pickled models load)."""
    keras = keras_module()
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="karyobench")
    class FusedAdam(keras.optimizers.Adam):
        """``keras.optimizers.Adam`` whose dense update is one fused kernel."""

        def update_step(self, gradient, variable, learning_rate):
            if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
                return super().update_step(gradient, variable, learning_rate)
            dtype = variable.dtype
            step = tf.cast(self.iterations + 1, dtype)
            momentum, velocity = adam_slots(self, variable)
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=momentum.handle, v=velocity.handle,
                beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
                beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
                lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
                beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
                grad=tf.cast(gradient, dtype), use_locking=False)

    return FusedAdam
