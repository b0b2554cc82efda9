"""A VGG-style CNN with batch normalisation (Simonyan & Zisserman 2015; the small
variants that work on 28-64 px grey images such as MNIST/Fashion-MNIST).

One stage per entry of ``widths``: ``convs_per_stage`` 3x3 convs with batch norm and ReLU,
then a 2x2 max-pool; global average pooling, dropout, a dense layer of ``dense_units``,
softmax. No residual connections, so it is the plain-stack counterpart to the ResNet.
"""

from __future__ import annotations

from numbers import Integral, Real

from karyobench.compat.sklearn import Interval

from karyobench.estimators.keras_image import ImageKerasClassifier


class VGGClassifier(ImageKerasClassifier):
    """Plain conv stack with stage widths ``widths``."""

    _parameter_constraints = {
        **ImageKerasClassifier._parameter_constraints,
        "widths": [list, tuple],
        "convs_per_stage": [Interval(Integral, 1, None, closed="left")],
        "dense_units": [Interval(Integral, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, widths=(32, 64, 128), convs_per_stage=2, dense_units=128, dropout=0.3,
                 learning_rate=3e-3, epochs=40, batch_size=64, **kwargs):
        super().__init__(learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
                         **kwargs)
        self.widths = widths
        self.convs_per_stage = convs_per_stage
        self.dense_units = dense_units
        self.dropout = dropout

    def _width_params(self):
        return {"widths": self.widths}

    def _smallest_input(self):
        return 2 ** len(self.widths)

    def _build_body(self, x, keras):
        layers = keras.layers
        for width in self.widths:
            for _ in range(int(self.convs_per_stage)):
                x = layers.Conv2D(int(width), 3, padding="same", use_bias=False)(x)
                x = layers.Activation("relu")(self._batch_norm(keras, momentum=0.9)(x))
            x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.GlobalAveragePooling2D()(x)
        if self.dropout:
            x = layers.Dropout(float(self.dropout))(x)
        if self.dense_units:
            x = layers.Dense(int(self.dense_units), activation="relu")(x)
        return x
