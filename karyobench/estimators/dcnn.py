"""The seed study's DCNN as a scikit-learn classifier.

Defaults reproduce Yang et al. 2023: three 3x3 conv layers (32/64/64) each followed by a
2x2 max-pool, flatten, dense 1024/1024/512 and a softmax; Adam 1e-3, batch 64. Every width
is a parameter so Optuna can search it.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import Interval, StrOptions

from karyobench._tf import keras_module
from karyobench.estimators.compat import SklearnKerasClassifier


def as_image_batch(X, image_shape=None):
    """Reshape ``X`` to ``(n, height, width, 1)``.

    3-D input is a stack of grey images; 4-D passes through; 2-D rows are flattened
    images of ``image_shape`` if given, otherwise one-pixel-high images (so tabular data,
    as used by scikit-learn's estimator checks, still flows through the network).
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 4:
        return X
    if X.ndim == 3:
        return X[..., np.newaxis]
    if X.ndim == 2:
        if image_shape is not None:
            return X.reshape((X.shape[0], *tuple(image_shape), 1))
        return X.reshape((X.shape[0], 1, X.shape[1], 1))
    raise ValueError(f"expected 2-D, 3-D or 4-D input, got shape {X.shape}")


class DCNNClassifier(SklearnKerasClassifier):
    """Seed DCNN (conv widths ``conv_filters``, dense widths ``dense_units``).

    ``early_stopping`` carves a stratified validation set out of the data given to ``fit``
    (the training fold only) and restores the best weights. ``padding="same"`` lets the
    network accept inputs smaller than the conv/pool stack needs.
    """

    _parameter_constraints = {
        "conv_filters": [list, tuple],
        "dense_units": [list, tuple],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "padding": [StrOptions({"valid", "same"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "image_shape": [None, list, tuple],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        conv_filters=(32, 64, 64),
        dense_units=(1024, 1024, 512),
        kernel_size=3,
        padding="valid",
        dropout=0.0,
        learning_rate=1e-3,
        epochs=60,
        batch_size=64,
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        image_shape=None,
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        kwargs.setdefault("optimizer", "adam")
        kwargs.setdefault("loss", "sparse_categorical_crossentropy")
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            random_state=random_state,
            verbose=verbose,
            **kwargs,
        )
        self.conv_filters = conv_filters
        self.dense_units = dense_units
        self.kernel_size = kernel_size
        self.padding = padding
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.image_shape = image_shape

    def _validate_params(self):
        """scikit-learn's checks plus: every layer width a positive integer."""
        super()._validate_params()
        for name in ("conv_filters", "dense_units"):
            widths = getattr(self, name)
            if not all(isinstance(w, Integral) and not isinstance(w, bool) and w >= 1
                       for w in widths):
                raise ValueError(f"The '{name}' parameter of {type(self).__name__} must be a "
                                 f"list of positive integers (layer widths). Got {widths!r}.")

    def check_input_shape(self, shape):
        """Raise ValueError if images of ``shape`` (h, w) vanish in the conv/pool stack."""
        size = min(shape)
        for _ in self.conv_filters:
            if self.padding == "valid":
                size = (size - (self.kernel_size - 1)) // 2
            else:
                size = math.ceil(size / 2)
            if size < 1:
                need = self._smallest_input()
                raise ValueError(
                    f"a {shape[0]}x{shape[1]} px canvas is too small for {len(self.conv_filters)} "
                    f"conv+pool layers with padding '{self.padding}' (needs >= {need} px); "
                    "raise dataset.canvas.size, use fewer conv_filters or padding: same")

    def _smallest_input(self):
        size = 1
        for _ in self.conv_filters:
            size = size * 2 + (self.kernel_size - 1 if self.padding == "valid" else 0)
        return size

    def fit(self, X, y, sample_weight=None, **kwargs):
        self._validate_params()
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    @property
    def feature_encoder(self):
        return FunctionTransformer(
            as_image_batch, kw_args={"image_shape": self.image_shape}, validate=False
        )

    def _keras_build_fn(self, meta, compile_kwargs):
        keras = keras_module()
        layers = keras.layers
        input_shape = tuple(meta["X_shape_"][1:])
        if len(input_shape) == 1:  # 2-D X, see as_image_batch
            input_shape = (*self.image_shape, 1) if self.image_shape else (1, input_shape[0], 1)
        elif len(input_shape) == 2:
            input_shape = (*input_shape, 1)
        model = keras.Sequential(name="dcnn")
        model.add(keras.Input(shape=input_shape))
        for filters in self.conv_filters:
            model.add(layers.Conv2D(int(filters), self.kernel_size, activation="relu",
                                    padding=self.padding))
            model.add(layers.MaxPooling2D(2, padding=self.padding))
        model.add(layers.Flatten())
        for units in self.dense_units:
            model.add(layers.Dense(int(units), activation="relu"))
            if self.dropout:
                model.add(layers.Dropout(float(self.dropout)))
        model.add(layers.Dense(int(meta["n_classes_"]), activation="softmax"))
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=float(self.learning_rate)),
            loss=compile_kwargs["loss"],
        )
        return model

    def _fit_keras_model(self, X, y, sample_weight, warm_start, epochs, initial_epoch,
                         **kwargs):
        """Train from a repeated ``tf.data`` pipeline (no epoch-start stalls)."""
        import tensorflow as tf
        from collections import defaultdict

        keras = keras_module()
        callbacks = list(self._fit_callbacks or [])
        seed = self._random_state if self._random_state is not None else None
        validation = None
        if self.early_stopping:
            X, y, validation = self._carve_validation(X, y, seed)
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=int(self.patience), restore_best_weights=True))
        batch_size = int(min(self.batch_size or 32, len(X)))
        steps = max(1, math.ceil(len(X) / batch_size))
        train = (tf.data.Dataset.from_tensor_slices((X, y))
                 .shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
                 .batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE))
        fit_args = dict(epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=steps, callbacks=callbacks, verbose=self.verbose,
                        shuffle=False)
        if validation is not None:
            fit_args["validation_data"] = validation
        hist = self.model_.fit(train, **fit_args)
        if not warm_start or not hasattr(self, "history_") or initial_epoch == 0:
            self.history_ = defaultdict(list)
        for key, values in hist.history.items():
            self.history_[key] += values

    def _carve_validation(self, X, y, seed):
        """Stratified hold-out from the training data given to ``fit``."""
        labels = np.asarray(y).ravel()
        _, counts = np.unique(labels, return_counts=True)
        n_val = max(int(round(self.validation_fraction * len(labels))), len(counts))
        if counts.min() < 2 or n_val >= len(labels):
            raise ValueError(
                "early_stopping needs at least 2 training images per class; "
                "disable early_stopping or use fewer folds")
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        train_idx, val_idx = next(splitter.split(np.zeros(len(labels)), labels))
        return X[train_idx], y[train_idx], (X[val_idx], y[val_idx])
