"""One estimator x fold job: a pure function of (data, task, estimator spec, split, seed).

The fold core fits and scores one plain estimator; it imports no search. A tuned job
(``FoldJob.tuning`` set) is fitted by the tuner the run loop was given.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.special import expit, softmax

from karyobench import progress
from karyobench._tf import numerics_flags
from karyobench.context import current, using
from karyobench.estimators import build
from karyobench.estimators.registry import numerics_version, uses_tensorflow
from karyobench.evaluation.metrics import fold_metrics


@dataclass(frozen=True)
class FoldJob:
    """Everything that determines a fold's result; ``key`` names its cached output."""

    split: str
    task: str
    estimator: str
    kind: str
    params: dict
    repeat: int
    fold: int
    seed: int
    classes: tuple[str, ...]
    train: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    data_fingerprint: str = ""
    # Set by a tuner (karyobench.tuning) on the jobs it fits: its settings as a plain
    # dict, the groups of the training rows and its storage URL; None = plain fit. Opaque
    # here: the settings and groups enter the key; the storage URL does not (where the
    # search is recorded is not what it computes, and a moved checkout keeps its keys).
    tuning: dict | None = None
    train_groups: np.ndarray | None = field(default=None, repr=False)
    storage: str | None = None
    # Canvas label of the images this job trains on ("" = the dataset's canvas); the
    # data_fingerprint already differs between canvases, so it is not part of the key.
    canvas: str = ""
    # Index of the training seed (cv.train_seeds); the seed itself is in ``params``
    # (estimators.registry.seed_params), so the index is a label, not part of the key.
    train_seed: int = 0

    @property
    def key(self) -> str:
        spec = dict(split=self.split, task=self.task, kind=self.kind, params=self.params,
                    repeat=self.repeat, fold=self.fold, seed=self.seed,
                    classes=list(self.classes), data=self.data_fingerprint,
                    numerics=numerics_flags() if uses_tensorflow(self.kind) else None)
        if numerics_version(self.kind):  # 0: keys of folds made before versions existed
            spec["numerics_version"] = numerics_version(self.kind)
        if self.tuning is not None:  # untuned keys stay as they were
            spec["tuning"] = self.tuning
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
        digest.update(np.asarray(self.train, dtype=np.int64).tobytes())
        digest.update(np.asarray(self.test, dtype=np.int64).tobytes())
        if self.tuning is not None and self.train_groups is not None:
            digest.update("\0".join(map(str, self.train_groups)).encode())
        return digest.hexdigest()[:20]


@dataclass
class FoldResult:
    job: FoldJob
    metrics: dict
    y_pred: np.ndarray
    proba: np.ndarray
    fit_seconds: float
    predict_seconds: float
    extra: dict = field(default_factory=dict)  # e.g. {"tuning": {...}} from nested CV
    # external set name -> (y_pred, proba) of this fold's model on that set's task rows
    external: dict = field(default_factory=dict)


def run_fold(job: FoldJob, images: np.ndarray, labels: np.ndarray,
             externals: tuple = ()) -> FoldResult:
    """Fit a fresh estimator on the training rows, score the test rows.

    ``images`` and ``labels`` are the whole dataset (task labels at the job's rows);
    everything learned (scaling, PCA, network weights) is fitted on ``job.train`` only.
    The fitted model also predicts each of ``externals`` (evaluation.external.ExternalInput:
    other datasets, never trained on).
    """
    if job.tuning is not None:  # the run loop gives tuned jobs to its tuner's fit
        raise ValueError(f"fold job of estimator '{job.estimator}' has tuning settings; "
                         "fit it with the tuner (karyobench.tuning.tuner.NestedSearch.fit)")
    result, estimator = fit_and_score(job, job.params, images, labels)
    if externals:
        from karyobench.evaluation.external import score

        result.external = score(estimator, list(externals), list(job.classes), class_scores)
    return result


def fit_and_score(job: FoldJob, params: dict, images: np.ndarray,
                  labels: np.ndarray) -> tuple[FoldResult, object]:
    """Fit ``job.kind`` with ``params`` on the training rows, score the test rows."""
    if np.intersect1d(job.train, job.test).size:  # leakage guard: fit never sees a test image
        raise AssertionError(f"fold {job.fold} of '{job.task}': train and test share images")
    estimator = build(job.kind, params, random_state=job.seed,
                      where=f"estimator '{job.estimator}'")
    context = current()
    report = (Path(context.progress_dir) / f"{job.key}{progress.SUFFIX}"
              if context.progress_dir else None)
    if report:
        seed = f" (training seed {job.train_seed})" if job.train_seed else ""
        progress.started(report, f"{job.task} · {job.estimator} · {job.split} fold "
                                 f"{job.fold}{seed}")
    start = time.perf_counter()
    try:
        with using(replace(context, progress_file=report)):
            estimator.fit(images[job.train], labels[job.train])
    finally:
        if report:
            progress.finished(report)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    y_pred, proba = predictions(estimator, images[job.test], list(job.classes))
    predict_seconds = time.perf_counter() - start
    metrics = fold_metrics(labels[job.test], y_pred, proba, list(job.classes))
    return FoldResult(job, metrics, y_pred, proba, fit_seconds, predict_seconds), estimator


def is_keras(estimator) -> bool:
    """A scikeras wrapper (checked by module name: no TensorFlow import for baselines)."""
    return any(cls.__module__.startswith("scikeras.") for cls in type(estimator).__mro__)


def predictions(estimator, X, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels and per-class scores (task order) of a fitted estimator.

    A Keras classifier's ``predict`` is the argmax of its ``predict_proba`` (scikeras'
    label decoding), so both come from one inference pass (with ``tta``, two forward
    passes instead of four). Other estimators keep their own ``predict``: an SVC's labels
    come from its votes, not from the scores below.
    """
    if is_keras(estimator):
        raw = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        y_pred = np.asarray(estimator.classes_)[raw.argmax(axis=1)].astype(str)
        return y_pred, _task_order(raw, estimator, classes)
    y_pred = np.asarray(estimator.predict(X)).astype(str)
    return y_pred, class_scores(estimator, X, classes)


def class_scores(estimator, X, classes: list[str]) -> np.ndarray:
    """Per-class probabilities in task order; softmax of decision values if no proba.

    Margin-based models (SVC) get pseudo-probabilities: their ranking (AUC) is exact,
    their calibration is not.
    """
    if hasattr(estimator, "predict_proba"):
        try:
            scores = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        except AttributeError:
            scores = None
    else:
        scores = None
    if scores is None:
        decision = np.asarray(estimator.decision_function(X), dtype=np.float64)
        if decision.ndim == 1:
            positive = expit(decision)
            scores = np.column_stack([1 - positive, positive])
        else:
            scores = softmax(decision, axis=1)
    return _task_order(scores, estimator, classes)


def _task_order(scores: np.ndarray, estimator, classes: list[str]) -> np.ndarray:
    """Columns of the estimator's fitted classes moved to the task's class order (a
    class absent from the training fold scores 0)."""
    fitted = [str(c) for c in estimator.classes_]
    out = np.zeros((len(scores), len(classes)))
    for column, label in enumerate(fitted):
        out[:, classes.index(label)] = scores[:, column]
    return out
