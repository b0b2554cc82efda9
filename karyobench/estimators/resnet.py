"""A compact residual CNN (He et al. 2016, basic blocks) for small grey canvases.

Stem (``stem``): ``"pool"``, a 3x3 conv + batch norm + ReLU at full resolution, then a
2x2 max-pool; or ``"strided"``, the same conv at stride 2 with no pool. Both hand the
first stage maps of half the canvas; the strided stem does a quarter of the stem's work
(on a 64 px canvas the full-resolution stem's maps are about a third of the activations
the batch norms and ReLUs pass over; 1.27x faster training with fused batch norm,
docs/performance.md). Then one stage per entry of ``widths``, each of ``blocks`` basic
residual blocks (two 3x3 convs with batch norm, identity or 1x1 projection shortcut),
stages after the first halving the resolution; global average pooling, dropout, softmax.
Trained from scratch: no pretrained weights are downloaded.
"""

from __future__ import annotations

from numbers import Integral, Real

from karyobench.compat.sklearn import Interval, StrOptions

from karyobench.estimators.keras_image import ImageKerasClassifier


class ResNetClassifier(ImageKerasClassifier):
    """Residual CNN with stage widths ``widths`` and ``blocks`` blocks per stage."""

    _parameter_constraints = {
        **ImageKerasClassifier._parameter_constraints,
        "widths": [list, tuple],
        "blocks": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "stem": [StrOptions({"pool", "strided"})],
    }

    def __init__(self, widths=(16, 32, 64), blocks=2, dropout=0.2, learning_rate=3e-3,
                 epochs=40, batch_size=64, stem="pool", **kwargs):
        super().__init__(learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
                         **kwargs)
        self.widths = widths
        self.blocks = blocks
        self.dropout = dropout
        self.stem = stem

    def _width_params(self):
        return {"widths": self.widths}

    def _smallest_input(self):
        return 2 ** len(self.widths)

    def _build_body(self, x, keras):
        layers = keras.layers

        def conv_bn(x, filters, stride=1, relu=True):
            x = layers.Conv2D(int(filters), 3, strides=stride, padding="same",
                              use_bias=False)(x)
            x = self._batch_norm(keras, momentum=0.9)(x)
            return layers.Activation("relu")(x) if relu else x

        if self.stem == "strided":
            x = conv_bn(x, self.widths[0], stride=2)
        else:
            x = conv_bn(x, self.widths[0])
            x = layers.MaxPooling2D(2, padding="same")(x)
        for stage, width in enumerate(self.widths):
            for block in range(int(self.blocks)):
                stride = 2 if stage > 0 and block == 0 else 1
                shortcut = x
                y = conv_bn(x, width, stride)
                y = conv_bn(y, width, relu=False)
                if stride != 1 or shortcut.shape[-1] != width:
                    shortcut = layers.Conv2D(int(width), 1, strides=stride, use_bias=False)(x)
                    shortcut = self._batch_norm(keras, momentum=0.9)(shortcut)
                x = layers.Activation("relu")(layers.Add()([y, shortcut]))
        x = layers.GlobalAveragePooling2D()(x)
        if self.dropout:
            x = layers.Dropout(float(self.dropout))(x)
        return x
