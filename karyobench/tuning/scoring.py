"""One metric from class scores, as the inner CV and the pruning callback judge trials."""

from __future__ import annotations

import numpy as np

from karyobench.evaluation.metrics import fold_metrics


def score(metric: str, y_true, proba: np.ndarray, classes: list[str],
          y_pred=None) -> float:
    """``metric`` of ``fold_metrics`` (argmax of ``proba`` unless ``y_pred`` is given)."""
    classes = list(classes)
    if y_pred is None:
        y_pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)].astype(str)
    return float(fold_metrics(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str),
                              proba, classes)[metric])
