"""The residual network's own parameters: its stem, trained for real on small canvases."""

from __future__ import annotations

import numpy as np
import pytest

from karyobench.errors import ConfigError
from karyobench.estimators import build
from karyobench.estimators.resnet import ResNetClassifier

from test_keras_image import bars


def stem_net(stem, **params):
    return ResNetClassifier(widths=(4, 8), blocks=1, stem=stem, batch_size=16,
                            learning_rate=1e-2, random_state=0, **{"epochs": 1, **params})


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.model_.layers]


def stage_input_shape(model):
    """Shape of the maps the first residual block receives (its first conv's input)."""
    convs = [layer for layer in model.model_.layers if type(layer).__name__ == "Conv2D"]
    return tuple(convs[1].input.shape)


def test_strided_stem_hands_the_first_stage_the_same_maps_without_a_pool():
    X, y = bars(32, size=16)
    pooled, strided = stem_net("pool").fit(X, y), stem_net("strided").fit(X, y)
    assert stage_input_shape(pooled) == stage_input_shape(strided) == (None, 8, 8, 4)
    assert "MaxPooling2D" in layer_kinds(pooled)
    assert "MaxPooling2D" not in layer_kinds(strided)
    stem_conv = next(layer for layer in strided.model_.layers
                     if type(layer).__name__ == "Conv2D")
    assert stem_conv.strides == (2, 2)
    # the same weights to learn: only where the stem looks changes
    assert pooled.model_.count_params() == strided.model_.count_params()


def test_pool_is_the_default_stem():
    assert ResNetClassifier().get_params()["stem"] == "pool"
    assert build("resnet").get_params()["stem"] == "pool"


def test_strided_stem_learns_bar_orientation():
    X, y = bars(160)
    X_test, y_test = bars(80, seed=1)
    model = stem_net("strided", epochs=8).fit(X, y)
    assert np.mean(model.predict(X_test) == y_test) >= 0.9


def test_an_unknown_stem_is_refused_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"estimators\[0\]: .*'stem' parameter"):
        build("resnet", {"stem": "avg_pool"}, where="estimators[0]")
