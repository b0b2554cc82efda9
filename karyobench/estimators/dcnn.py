"""The seed study's DCNN as a scikit-learn classifier.

Defaults reproduce Yang et al. 2023: three 3x3 conv layers (32/64/64) each followed by a
2x2 max-pool, flatten, dense 1024/1024/512 and a softmax; Adam 1e-3, batch 64. Every width
is a parameter so Optuna can search it; ``head``, ``batch_norm`` and the shared knobs of
:class:`~karyobench.estimators.keras_image.ImageKerasClassifier` (augmentation, weight
decay, schedule, precision) are off by default so the default stays the seed's network.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from karyobench.compat.sklearn import Interval, StrOptions

from karyobench.estimators.keras_image import ImageKerasClassifier, as_image_batch

__all__ = ["DCNNClassifier", "as_image_batch"]


class DCNNClassifier(ImageKerasClassifier):
    """Seed DCNN (conv widths ``conv_filters``, dense widths ``dense_units``).

    ``head="gap"`` replaces the seed's flatten (a 2,304-wide vector at 64 px feeding a
    1,024-wide layer) by global average pooling; ``batch_norm`` adds batch normalisation
    after each conv. ``padding="same"`` lets the network accept small inputs.
    """

    _parameter_constraints = {
        **ImageKerasClassifier._parameter_constraints,
        "conv_filters": [list, tuple],
        "dense_units": [list, tuple],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "padding": [StrOptions({"valid", "same"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "head": [StrOptions({"flatten", "gap"})],
        "batch_norm": ["boolean"],
    }

    def __init__(
        self,
        conv_filters=(32, 64, 64),
        dense_units=(1024, 1024, 512),
        kernel_size=3,
        padding="valid",
        dropout=0.0,
        head="flatten",
        batch_norm=False,
        learning_rate=1e-3,
        epochs=60,
        batch_size=64,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
                         **kwargs)
        self.conv_filters = conv_filters
        self.dense_units = dense_units
        self.kernel_size = kernel_size
        self.padding = padding
        self.dropout = dropout
        self.head = head
        self.batch_norm = batch_norm

    def _width_params(self):
        return {"conv_filters": self.conv_filters, "dense_units": self.dense_units}

    def check_input_shape(self, shape):
        """Raise ValueError if images of ``shape`` (h, w) vanish in the conv/pool stack."""
        size = min(shape)
        for _ in self.conv_filters:
            if self.padding == "valid":
                size = (size - (self.kernel_size - 1)) // 2
            else:
                size = math.ceil(size / 2)
            if size < 1:
                raise ValueError(
                    f"a {shape[0]}x{shape[1]} px canvas is too small for {len(self.conv_filters)} "
                    f"conv+pool layers with padding '{self.padding}' (needs >= "
                    f"{self._smallest_input()} px); raise dataset.canvas.size, use fewer "
                    "conv_filters or padding: same")

    def _smallest_input(self):
        size = 1
        for _ in self.conv_filters:
            size = size * 2 + (self.kernel_size - 1 if self.padding == "valid" else 0)
        return size

    def _build_body(self, x, keras):
        layers = keras.layers
        for filters in self.conv_filters:
            x = layers.Conv2D(int(filters), self.kernel_size, padding=self.padding,
                              activation=None if self.batch_norm else "relu")(x)
            if self.batch_norm:
                x = layers.Activation("relu")(self._batch_norm(keras, momentum=0.9)(x))
            x = layers.MaxPooling2D(2, padding=self.padding)(x)
        x = layers.Flatten()(x) if self.head == "flatten" else layers.GlobalAveragePooling2D()(x)
        for units in self.dense_units:
            x = layers.Dense(int(units), activation="relu")(x)
            if self.dropout:
                x = layers.Dropout(float(self.dropout))(x)
        return x
