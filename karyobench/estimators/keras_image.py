"""What every Keras image classifier in karyobench shares: input handling, training-time
augmentation in the graph, measured shape inputs, precision, schedule and the fit loop.

Subclasses only describe a network body (:meth:`ImageKerasClassifier._build_body`); the
seed DCNN, the residual CNN and the VGG-style CNN differ in nothing else, so a study can
compare them on equal terms and Optuna can search the shared knobs of all of them.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import FunctionTransformer

from karyobench._tf import keras_module
from karyobench.context import current as current_run
from karyobench.compat.scikeras import SklearnKerasClassifier, fit_callbacks, fit_seed
from karyobench.compat.sklearn import Interval, StrOptions, validate_params
from karyobench.errors import ParameterError
from karyobench.estimators.fused_adam import fused_adam_class

FLIPS = {"none", "horizontal", "vertical", "horizontal_and_vertical"}
#: ``optimizer`` names (Keras' own): built with ``learning_rate`` (and its schedule) and
#: ``weight_decay``; ``"adam"`` is the fused Adam (AdamW when ``weight_decay`` > 0).
OPTIMIZERS = {"adam", "adamw", "sgd", "rmsprop", "nadam", "adamax", "adagrad", "adadelta",
              "ftrl", "lion", "adafactor"}
#: ``loss``: cross-entropy of the softmax against the class codes scikeras passes (one-hot
#: categorical cross-entropy is the same function); ``label_smoothing`` smooths it.
LOSSES = {"sparse_categorical_crossentropy"}
#: ``lr_schedule: onecycle``: the warm-up's share of the steps and the ratio of the peak
#: rate (``learning_rate``) to the starting one (the usual one-cycle settings)
ONECYCLE_WARMUP = 0.3
ONECYCLE_DIVISOR = 25.0
#: metric names ``Model.compile`` resolves itself (not through ``keras.metrics.get``)
COMPILE_METRICS = {"accuracy", "acc", "crossentropy", "ce"}


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


def shape_measures_layer():
    """A Keras layer measuring each chromosome on its canvas: foreground area, height and
    width as fractions of the canvas (pixels brighter than ``threshold``; canvases are
    bright-on-dark). It reads the last channel: on a ``native`` canvas, or a canvas with
    ``native_channel``, these are the chromosome's relative size."""
    keras = keras_module()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="karyobench")
    class ShapeMeasures(keras.layers.Layer):
        def __init__(self, threshold=0.1, **kwargs):
            super().__init__(**kwargs)
            self.threshold = float(threshold)

        def call(self, images):
            mask = ops.cast(images[..., -1] > self.threshold, "float32")
            area = ops.mean(mask, axis=(1, 2))
            height = ops.mean(ops.max(mask, axis=2), axis=1)
            width = ops.mean(ops.max(mask, axis=1), axis=1)
            return ops.stack([area, height, width], axis=1)

        def get_config(self):
            return {**super().get_config(), "threshold": self.threshold}

    return ShapeMeasures


def smoothed_loss_class():
    """Sparse categorical cross-entropy against label-smoothed targets: the true class
    gets ``1 - smoothing + smoothing / K``, every other ``smoothing / K``. Keras' sparse
    loss has no smoothing, and the targets stay integer codes for scikeras."""
    keras = keras_module()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="karyobench")
    class SmoothedSparseCrossentropy(keras.losses.Loss):
        def __init__(self, smoothing=0.1, **kwargs):
            super().__init__(**kwargs)
            self.smoothing = float(smoothing)

        def call(self, y_true, y_pred):
            n_classes = ops.shape(y_pred)[-1]
            codes = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            target = ops.one_hot(codes, n_classes) * (1.0 - self.smoothing) \
                + self.smoothing / ops.cast(n_classes, "float32")
            return keras.losses.categorical_crossentropy(target, y_pred)

        def get_config(self):
            return {**super().get_config(), "smoothing": self.smoothing}

    return SmoothedSparseCrossentropy


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under the Keras dtype policy ``name``, then restore the previous one."""
    keras = keras_module()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class ImageKerasClassifier(SklearnKerasClassifier):
    """A Keras CNN on grey canvases as a scikit-learn classifier.

    Shared knobs (all searchable):

    * augmentation, train-time only, as Keras preprocessing layers inside the model:
      ``rotation`` (fraction of a full turn), ``flip``, ``zoom``, ``shift`` (fraction of
      the canvas), ``contrast``; ``tta`` averages predictions over a horizontal flip;
    * ``shape_input`` feeds the measured area/height/width (:func:`shape_measures_layer`)
      next to the image features; ``body_channels`` limits the network to the first
      channels (e.g. 1 on a ``native_channel`` canvas: fit pixels in the network, the
      native channel only measured);
    * ``label_smoothing`` (targets 1 - s + s/K and s/K), ``weight_decay`` (decoupled
      L2, AdamW), ``lr_schedule`` (constant; cosine decay over the planned epochs; or
      ``onecycle``: a linear warm-up from ``learning_rate / 25`` to ``learning_rate``
      over the first 30 % of the steps, then cosine decay, Smith's one-cycle policy,
      meant for shorter trainings),
      ``precision`` (``float32`` or ``mixed_bfloat16``, which
      oneDNN runs on AMX/AVX-512 BF16 units where the CPU has them),
      ``fused_batch_norm`` (the body's batch norms as one fused TensorFlow kernel each:
      the same training up to float rounding, faster on CPU);
    * ``early_stopping`` validates on a stratified split of the data given to ``fit``
      (the training fold only) and restores the best weights.

    scikeras' own parameters are honoured or refused by :meth:`check_params` (at build
    time through the registry, and again at ``fit``):

    * ``optimizer``: a Keras optimizer name (:data:`OPTIMIZERS`) built with
      ``learning_rate``, ``lr_schedule`` and ``weight_decay`` (``"adamw"`` decays by
      ``weight_decay`` only: 0 is plain Adam); ``loss`` must be
      ``"sparse_categorical_crossentropy"`` (:data:`LOSSES`), which ``label_smoothing``
      smooths;
    * ``class_weight`` (a dict label -> weight, or ``"balanced"``) and ``fit``'s
      ``sample_weight`` weight each image's loss; ``shuffle=False`` keeps the row order;
      ``validation_split`` holds out the last rows of ``fit``'s data for ``val_loss``
      (Keras' meaning; not with ``early_stopping``, which holds out its own);
    * ``metrics`` (names) are reported in ``history_``; ``run_eagerly``,
      ``validation_batch_size``, ``callbacks``, ``warm_start`` as in scikeras;
    * ``model`` / ``build_fn`` must stay None: the network is the class's own.
    """

    _parameter_constraints = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "rotation": [Interval(Real, 0, 0.5, closed="both")],
        "flip": [StrOptions(FLIPS)],
        "zoom": [Interval(Real, 0, 1, closed="left")],
        "shift": [Interval(Real, 0, 1, closed="left")],
        "contrast": [Interval(Real, 0, 1, closed="left")],
        "tta": ["boolean"],
        "shape_input": ["boolean"],
        "body_channels": [None, Interval(Integral, 1, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"constant", "cosine", "onecycle"})],
        "precision": [StrOptions({"float32", "mixed_bfloat16"})],
        "fused_batch_norm": ["boolean"],
        "image_shape": [None, list, tuple],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        # scikeras' parameters
        "metrics": [None, list],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "shuffle": ["boolean"],
        "validation_split": [Interval(Real, 0, 1, closed="left")],
        "validation_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "callbacks": [None, list],
        "warm_start": ["boolean"],
        "run_eagerly": ["boolean"],
    }

    def __init__(
        self,
        learning_rate=1e-3,
        epochs=60,
        batch_size=64,
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        rotation=0.0,
        flip="none",
        zoom=0.0,
        shift=0.0,
        contrast=0.0,
        tta=False,
        shape_input=False,
        body_channels=None,
        label_smoothing=0.0,
        weight_decay=0.0,
        lr_schedule="constant",
        precision="float32",
        fused_batch_norm=False,
        image_shape=None,
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        kwargs.setdefault("optimizer", "adam")
        kwargs.setdefault("loss", "sparse_categorical_crossentropy")
        super().__init__(epochs=epochs, batch_size=batch_size, random_state=random_state,
                         verbose=verbose, **kwargs)
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.rotation = rotation
        self.flip = flip
        self.zoom = zoom
        self.shift = shift
        self.contrast = contrast
        self.tta = tta
        self.shape_input = shape_input
        self.body_channels = body_channels
        self.label_smoothing = label_smoothing
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.precision = precision
        self.fused_batch_norm = fused_batch_norm
        self.image_shape = image_shape

    # ------------------------------------------------------------ subclass hooks -------

    def _batch_norm(self, keras, **kwargs):
        """A batch-normalization layer of the body: Keras' own, or with
        ``fused_batch_norm`` the same normalization as one fused TensorFlow kernel
        (estimators.fused_norm; faster on CPU, equal up to float rounding)."""
        if self.fused_batch_norm:
            from karyobench.estimators.fused_norm import fused_batch_norm_class

            return fused_batch_norm_class()(**kwargs)
        return keras.layers.BatchNormalization(**kwargs)

    def _build_body(self, x, keras):
        """Image tensor -> feature vector (flattened or pooled). Subclasses define it."""
        raise NotImplementedError

    def _smallest_input(self) -> int:
        """Smallest canvas side the body accepts (1 if any)."""
        return 1

    # ------------------------------------------------------------ parameters -----------

    def check_params(self):
        """Raise a :class:`~karyobench.errors.ParameterError` (a ValueError) naming the
        first parameter this class cannot honour as set.

        ``_parameter_constraints`` (subclasses extend it: ``{**base, ...}``) plus: every
        layer-width list holds positive integers; no ``model``/``build_fn``; a known
        ``optimizer``; the one ``loss``; known metric names; non-negative class weights;
        not both ``validation_split`` and ``early_stopping``.
        """
        validate_params(self)
        name = type(self).__name__
        for key, value in self._width_params().items():
            if not all(isinstance(w, Integral) and not isinstance(w, bool) and w >= 1
                       for w in value):
                raise ParameterError(
                    f"The '{key}' parameter of {name} must be a list of positive integers "
                    f"(layer widths). Got {value!r}.")
        for key in ("model", "build_fn"):
            if getattr(self, key, None) is not None:
                raise ParameterError(
                    f"The '{key}' parameter of {name} must be None: the network is built "
                    "from the estimator's own parameters; remove it, or choose another "
                    "estimator kind for another network.")
        if not (isinstance(self.optimizer, str) and self.optimizer in OPTIMIZERS):
            raise ParameterError(
                f"The 'optimizer' parameter of {name} must be a Keras optimizer name, one "
                f"of {', '.join(sorted(OPTIMIZERS))}. Got {self.optimizer!r}.")
        if not (isinstance(self.loss, str) and self.loss in LOSSES):
            raise ParameterError(
                f"The 'loss' parameter of {name} must be 'sparse_categorical_crossentropy' "
                "(the network ends in a softmax over the class codes; label_smoothing "
                f"gives its smoothed variant). Got {self.loss!r}.")
        for metric in self.metrics or []:
            if not isinstance(metric, str) or not _is_metric_name(metric):
                raise ParameterError(
                    f"The 'metrics' parameter of {name} must be a list of Keras metric "
                    f"names (e.g. ['accuracy']). Got {metric!r}.")
        if isinstance(self.class_weight, dict):
            bad = {k: v for k, v in self.class_weight.items()
                   if isinstance(v, bool) or not isinstance(v, Real) or not v >= 0}
            if bad:
                raise ParameterError(
                    f"The 'class_weight' parameter of {name} must map class labels to "
                    f"non-negative numbers. Got {bad!r}.")
        if self.validation_split and self.early_stopping:
            raise ParameterError(
                f"The 'validation_split' parameter of {name} cannot be combined with "
                "early_stopping, which holds out its own stratified validation_fraction; "
                "set validation_split to 0 or early_stopping to false.")

    def _validate_params(self):
        """scikit-learn's name for the parameter check: :meth:`check_params`."""
        self.check_params()

    def _width_params(self) -> dict:
        """Parameters that are lists of layer widths (checked by ``_validate_params``)."""
        return {}

    def check_input_shape(self, shape):
        """Raise ValueError if a ``shape`` (h, w) canvas is too small for the network."""
        need = self._smallest_input()
        if min(shape) < need:
            raise ValueError(
                f"a {shape[0]}x{shape[1]} px canvas is too small for {type(self).__name__} "
                f"with these layers (needs >= {need} px); raise dataset.canvas.size or "
                "use a shallower network")

    def check_channels(self, n_channels: int):
        """Raise ValueError if ``body_channels`` asks for more channels than images have."""
        if self.body_channels is not None and self.body_channels > n_channels:
            raise ValueError(f"body_channels={self.body_channels} but the images have "
                             f"{n_channels} channel(s); lower it or use a canvas with "
                             "native_channel")

    def fit(self, X, y, sample_weight=None, **kwargs):
        self.check_params()
        self._check_class_weight_labels(y)
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def _check_class_weight_labels(self, y):
        """A ``class_weight`` key that is no training label (e.g. ``1`` for ``"01"``)."""
        if not isinstance(self.class_weight, dict):
            return
        labels = np.unique(np.asarray(y).ravel()).tolist()
        missing = [key for key in self.class_weight if key not in labels]
        if missing:
            shown = ", ".join(repr(label) for label in labels[:8])
            raise ParameterError(
                f"The 'class_weight' parameter of {type(self).__name__} names "
                f"{', '.join(repr(k) for k in missing)}, which is not a training label "
                f"({shown}{', ...' if len(labels) > 8 else ''}); write each key as the "
                "label is written (quoted in YAML, e.g. '01': 2.0).")

    @property
    def feature_encoder(self):
        return FunctionTransformer(
            as_image_batch, kw_args={"image_shape": self.image_shape}, validate=False)

    # ------------------------------------------------------------ model ----------------

    def _input_shape(self, meta) -> tuple:
        shape = tuple(meta["X_shape_"][1:])
        if len(shape) == 1:  # 2-D X, see as_image_batch
            return (*self.image_shape, 1) if self.image_shape else (1, shape[0], 1)
        if len(shape) == 2:
            return (*shape, 1)
        return shape

    def _augmentation(self, x, keras):
        """Random train-time transforms (identity at inference), seeded for determinism."""
        layers = keras.layers
        seed = fit_seed(self)
        seed = seed if isinstance(seed, int) else None
        if self.flip != "none":
            x = layers.RandomFlip(self.flip, seed=seed)(x)
        if self.rotation:
            x = layers.RandomRotation(float(self.rotation), fill_mode="constant",
                                      fill_value=0.0, seed=seed)(x)
        if self.zoom:
            x = layers.RandomZoom(float(self.zoom), fill_mode="constant", fill_value=0.0,
                                  seed=seed)(x)
        if self.shift:
            x = layers.RandomTranslation(float(self.shift), float(self.shift),
                                         fill_mode="constant", fill_value=0.0, seed=seed)(x)
        if self.contrast:
            x = layers.RandomContrast(float(self.contrast), value_range=(0.0, 1.0),
                                      seed=seed)(x)
        return x

    def _keras_build_fn(self, meta, compile_kwargs):
        keras = keras_module()
        shape = self._input_shape(meta)
        inputs = keras.Input(shape=shape)
        x = inputs
        if self.body_channels is not None:
            self.check_channels(shape[-1])
            x = inputs[..., :int(self.body_channels)]
        with dtype_policy(self.precision):
            x = self._augmentation(x, keras)
            features = self._build_body(x, keras)
        if self.shape_input:
            measures = shape_measures_layer()(name="shape_measures")(inputs)
            # standardised with training-batch statistics (fitted on the training fold)
            measures = keras.layers.BatchNormalization(momentum=0.9)(measures)
            features = keras.layers.Concatenate()(
                [keras.ops.cast(features, "float32"), measures])
        outputs = keras.layers.Dense(int(meta["n_classes_"]), activation="softmax",
                                     dtype="float32")(features)
        model = keras.Model(inputs, outputs, name=type(self).__name__)
        loss = compile_kwargs["loss"]
        if self.label_smoothing:  # the same cross-entropy, against smoothed targets
            loss = smoothed_loss_class()(smoothing=self.label_smoothing)
        # only what is set: the default compile call is the one earlier folds trained with
        extra = {}
        if self.metrics:
            extra["metrics"] = list(self.metrics)
        if self.run_eagerly:
            extra["run_eagerly"] = True
        model.compile(optimizer=self._optimizer(keras, meta), loss=loss, **extra)
        return model

    def _optimizer(self, keras, meta):
        rate = float(self.learning_rate)
        if self.lr_schedule in ("cosine", "onecycle"):
            n = int(meta["X_shape_"][0])
            if self.early_stopping:
                n -= max(int(round(self.validation_fraction * n)), 1)
            elif self.validation_split:
                n = self._split_at(n)
            total = max(1, self._steps_per_epoch(n) * int(self.epochs))
            if self.lr_schedule == "cosine":
                rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=total)
            else:  # Keras' own warm-up: linear to warmup_target, then cosine to 0
                warmup = int(round(ONECYCLE_WARMUP * total))
                rate = keras.optimizers.schedules.CosineDecay(
                    rate / ONECYCLE_DIVISOR, decay_steps=max(1, total - warmup),
                    warmup_target=rate, warmup_steps=warmup)
        if self.optimizer != "adam":
            settings = {"learning_rate": rate}
            if self.weight_decay or self.optimizer == "adamw":
                settings["weight_decay"] = float(self.weight_decay)
            return type(keras.optimizers.get(self.optimizer))(**settings)
        if self.weight_decay:
            return keras.optimizers.AdamW(learning_rate=rate,
                                          weight_decay=float(self.weight_decay))
        return fused_adam_class()(learning_rate=rate)

    # ------------------------------------------------------------ training -------------

    def _fit_keras_model(self, X, y, sample_weight, warm_start, epochs, initial_epoch,
                         **kwargs):
        """Train from a repeated ``tf.data`` pipeline (no epoch-start stalls)."""
        import tensorflow as tf

        if kwargs:  # scikeras would route them to Model.fit; this loop has no use for them
            raise TypeError(
                f"{type(self).__name__}.fit() does not take {', '.join(sorted(kwargs))}; "
                "set the estimator's parameters instead (e.g. validation_split, "
                "class_weight, callbacks)")
        keras = keras_module()
        callbacks = fit_callbacks(self)
        report = current_run().progress_file
        if report is not None:  # the command's progress bar shows this fold's epochs
            callbacks.append(_epoch_progress(keras, report, initial_epoch + epochs))
        seed = fit_seed(self)
        validation = None
        if self.early_stopping:
            train_idx, val_idx = self._validation_indices(y, seed)
            validation = _rows(val_idx, X, y, sample_weight)
            X, y, sample_weight = _rows(train_idx, X, y, sample_weight, keep_none=True)
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=int(self.patience), restore_best_weights=True))
        elif self.validation_split:
            split = self._split_at(len(X))
            validation = _rows(slice(split, None), X, y, sample_weight)
            X, y, sample_weight = _rows(slice(None, split), X, y, sample_weight,
                                        keep_none=True)
        batch_size = self._batch_size(len(X))
        steps = self._steps_per_epoch(len(X))
        # (images, codes) as ever; the weights ride along only when there are any
        data = tf.data.Dataset.from_tensor_slices(
            (X, y) if sample_weight is None else (X, y, sample_weight))
        if self.shuffle:
            data = data.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
        # A fixed prefetch without tf.data's autotuning: the arrays are in memory, so there
        # is nothing to tune, and with autotuning on, releasing the pipeline at the end of
        # fit stalled for 2-4 s in about half of the small DCNN fits measured on a busy
        # 2-core machine (docs/performance.md). Same batches in the same order.
        no_autotune = tf.data.Options()
        no_autotune.autotune.enabled = False
        train = data.batch(batch_size).repeat().prefetch(2).with_options(no_autotune)
        fit_args = dict(epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=steps, callbacks=callbacks, verbose=self.verbose,
                        shuffle=False)
        if validation is not None:
            fit_args["validation_data"] = validation
            if self.validation_batch_size:
                fit_args["validation_batch_size"] = int(self.validation_batch_size)
        # One compiled call per epoch: the per-step Python dispatch is paid once per epoch
        # (same batches, same order, same weights). Reset afterwards: predict and
        # evaluate keep their own one-batch-per-call loop.
        self.model_.steps_per_execution, self.model_.train_function = steps, None
        try:
            hist = self.model_.fit(train, **fit_args)
        finally:
            self.model_.steps_per_execution, self.model_.train_function = 1, None
        if not warm_start or not hasattr(self, "history_") or initial_epoch == 0:
            self.history_ = defaultdict(list)
        for key, values in hist.history.items():
            self.history_[key] += values

    def _batch_size(self, n_rows: int) -> int:
        """The batch size used on ``n_rows`` training rows (never more than the rows)."""
        return int(min(self.batch_size or 32, max(n_rows, 1)))

    def _steps_per_epoch(self, n_rows: int) -> int:
        """Batches per epoch of ``n_rows`` training rows (the last batch may be short)."""
        return max(1, math.ceil(n_rows / self._batch_size(n_rows)))

    def _split_at(self, n_rows: int) -> int:
        """Rows trained on under ``validation_split`` (Keras: the last rows validate)."""
        split = int(n_rows * (1.0 - float(self.validation_split)))
        if not 0 < split < n_rows:
            raise ParameterError(
                f"validation_split={self.validation_split} of {n_rows} training images "
                "leaves no training or no validation image; change validation_split")
        return split

    def _carve_validation(self, X, y, seed):
        """Stratified hold-out from the training data given to ``fit``."""
        train_idx, val_idx = self._validation_indices(y, seed)
        return X[train_idx], y[train_idx], (X[val_idx], y[val_idx])

    def _validation_indices(self, y, seed):
        """Rows to train on and rows to validate on for ``early_stopping``."""
        labels = np.asarray(y).ravel()
        _, counts = np.unique(labels, return_counts=True)
        n_val = max(int(round(self.validation_fraction * len(labels))), len(counts))
        if counts.min() < 2 or n_val >= len(labels):
            raise ParameterError(
                "early_stopping needs at least 2 training images per class; "
                "disable early_stopping or use fewer folds")
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        return next(splitter.split(np.zeros(len(labels)), labels))

    def _predict_raw(self, X, **kwargs):
        """Class probabilities; with ``tta`` the mean over the image and its mirror."""
        raw = super()._predict_raw(X, **kwargs)
        if not self.tta:
            return raw
        mirrored = as_image_batch(X, self.image_shape)[:, :, ::-1, :].reshape(np.shape(X))
        return (raw + super()._predict_raw(mirrored, **kwargs)) / 2.0


def _rows(index, X, y, sample_weight, keep_none=False):
    """``(X, y)`` or ``(X, y, w)`` at ``index``; ``keep_none``: always 3 items."""
    if sample_weight is None:
        return (X[index], y[index], None) if keep_none else (X[index], y[index])
    return X[index], y[index], sample_weight[index]


def _is_metric_name(name: str) -> bool:
    if name in COMPILE_METRICS:
        return True
    try:
        keras_module().metrics.get(name)
    except ValueError:
        return False
    return True


def _epoch_progress(keras, path, epochs: int):
    """A Keras callback that records each finished epoch in the fold's progress file
    (``karyobench.progress``); it reads nothing of the model, so training is unchanged."""
    from karyobench import progress

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            progress.epoch_done(path, epoch + 1, epochs)

    return EpochProgress()
