"""Fold metrics from out-of-fold labels and scores."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score,
                             roc_auc_score)


def fold_metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray,
                 classes: list[str]) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1 and ROC-AUC (binary, or macro one-vs-rest)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro",
                                       zero_division=0)),
            "roc_auc": roc_auc(y_true, proba, classes),
        }


def roc_auc(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """NaN when a class is missing from the test fold (AUC undefined there)."""
    present = set(np.unique(y_true).tolist())
    try:
        if len(classes) == 2:
            if len(present) < 2:
                return float("nan")
            return float(roc_auc_score(y_true == classes[1], proba[:, 1]))
        if present != set(classes):
            return float("nan")
        norm = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
        order = np.argsort(classes)  # scikit-learn wants the labels sorted
        return float(roc_auc_score(y_true, norm[:, order], labels=list(np.asarray(classes)[order]),
                                   multi_class="ovr", average="macro"))
    except ValueError:
        return float("nan")
