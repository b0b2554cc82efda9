"""Feature transformers for the classical baselines (stateless, so safe inside CV)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from joblib import Memory
from sklearn.base import BaseEstimator, TransformerMixin
from skimage.feature import hog

from karyobench.compat.sklearn import Interval, validate_params
from karyobench.errors import ParameterError


def _as_images(X):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    if X.ndim != 3:
        raise ValueError(f"expected a stack of grey images (n, h, w), got shape {X.shape}")
    return X


class PixelFlattener(TransformerMixin, BaseEstimator):
    """Images (n, h, w[, 1]) -> raw pixel rows (n, h*w), as the seed's SVM saw them."""

    def fit(self, X, y=None):
        self.image_shape_ = _as_images(X).shape[1:]
        self.n_features_in_ = int(np.prod(self.image_shape_))
        return self

    def transform(self, X):
        X = _as_images(X)
        return X.reshape(len(X), -1)


def _hog_batch(X, orientations, pixels_per_cell, cells_per_block):
    return np.stack([
        hog(image, orientations=orientations, pixels_per_cell=pixels_per_cell,
            cells_per_block=cells_per_block, feature_vector=True)
        for image in X
    ]).astype(np.float32)


def feature_cache_dir():
    """Default HOG cache: ``<karyobench cache>/features`` (``KARYOBENCH_CACHE``)."""
    from karyobench.data.loading import default_cache_dir

    return default_cache_dir() / "features"


def _memory(memory):
    """``None``: no cache; ``"auto"``: :func:`feature_cache_dir`; else a path/Memory."""
    if memory is None or isinstance(memory, Memory):
        return memory
    if memory == "auto":
        memory = feature_cache_dir()
    return Memory(str(memory), verbose=0)


class HOGFeatures(TransformerMixin, BaseEstimator):
    """Histogram-of-oriented-gradients descriptor per image (scikit-image).

    ``memory`` (a joblib cache directory, or ``"auto"`` for :func:`feature_cache_dir`)
    avoids recomputing the same features for the same images and parameters across
    folds, estimators, tuning trials and re-runs: the cache key is a hash of the pixels
    and the HOG parameters, so it never serves stale features.
    """

    _parameter_constraints = {
        "orientations": [Interval(Integral, 1, None, closed="left")],
        "pixels_per_cell": [list, tuple],
        "cells_per_block": [list, tuple],
        "memory": [None, str, Memory],
    }

    def __init__(self, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                 memory=None):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.memory = memory

    def check_params(self):
        """Raise a ParameterError (a ValueError) naming a parameter scikit-image would
        refuse or misread."""
        validate_params(self)
        for key in ("pixels_per_cell", "cells_per_block"):
            value = getattr(self, key)
            if len(value) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool)
                                          and v >= 1 for v in value):
                raise ParameterError(
                    f"The '{key}' parameter of HOGFeatures must be two positive integers "
                    f"(rows, columns). Got {value!r}.")

    def fit(self, X, y=None):
        self.check_params()
        self.image_shape_ = _as_images(X).shape[1:]
        return self

    def transform(self, X):
        X = _as_images(X)
        compute = _hog_batch
        memory = _memory(self.memory)
        if memory is not None:
            compute = memory.cache(_hog_batch)
        return compute(X, int(self.orientations), tuple(self.pixels_per_cell),
                       tuple(self.cells_per_block))
