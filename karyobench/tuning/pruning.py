"""Report a Keras model's per-epoch validation score to Optuna and stop pruned trials.

``optuna_integration.TFKerasPruningCallback`` reads a metric from Keras' ``logs``, which
needs ``validation_data`` inside ``fit`` (scikeras fits on the training rows only) and an
extra package; this callback scores the inner validation fold itself, with the same
metric the trial is judged by, and stops training cleanly (``stop_training``) instead of
raising through Keras. The objective then raises :class:`optuna.TrialPruned`.
"""

from __future__ import annotations

import numpy as np

from karyobench._tf import keras_module
from karyobench.tuning.scoring import score

keras = keras_module()


class OptunaPruningCallback(keras.callbacks.Callback):
    """After each epoch: score ``(X_val, y_val)``, ``trial.report`` it, maybe prune.

    ``estimator`` is the scikeras wrapper being fitted (its fitted feature encoder and
    ``classes_`` turn images into network input and output columns into labels);
    ``step_offset`` places this inner fold's epochs after the previous folds' epochs;
    ``prunable=False`` (the default trial) reports every epoch but never stops.
    """

    def __init__(self, trial, estimator, X_val, y_val, classes, metric: str,
                 step_offset: int = 0, prunable: bool = True):
        super().__init__()
        self.trial, self.estimator = trial, estimator
        self.X_val, self.y_val = X_val, np.asarray(y_val).astype(str)
        self.classes, self.metric = list(classes), metric
        self.step_offset = step_offset
        self.prunable = prunable
        self.epochs_run = 0
        self.pruned = False
        self.scores: list[float] = []
        self._inputs = None

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
        if self._inputs is None:
            self._inputs = self.estimator.feature_encoder_.transform(self.X_val)
        raw = np.asarray(self.model.predict(self._inputs, verbose=0), dtype=np.float64)
        fitted = [str(c) for c in self.estimator.classes_]
        proba = np.zeros((len(raw), len(self.classes)))
        for column, label in enumerate(fitted):
            proba[:, self.classes.index(label)] = raw[:, column]
        value = score(self.metric, self.y_val, proba, self.classes)
        self.scores.append(value)
        if not np.isfinite(value):
            return
        self.trial.report(value, self.step_offset + epoch)
        if self.prunable and self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True
