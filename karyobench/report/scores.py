"""Metrics on pooled out-of-fold predictions, the way the seed study reports them.

The seed pools the five test folds and scores once; fold means and pooled scores differ
when folds differ in size or class mix (grouped folds do), so both are reported. With
repeats, pooling happens within each repeat and the repeats are averaged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score

from karyobench.stats import assignment_decode
from karyobench.stats.decoding import counterpart

from .results import Results


def _auc(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    """Binary AUC of the second class, or macro one-vs-rest; NaN when undefined."""
    if np.isnan(proba).any():
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(classes) == 2:
                return float(roc_auc_score(y_true == classes[1], proba[:, 1]))
            if set(np.unique(y_true)) != set(classes):
                return float("nan")
            totals = proba.sum(axis=1, keepdims=True)
            normalised = proba / np.where(totals > 0, totals, 1.0)
            return float(roc_auc_score(y_true, normalised, multi_class="ovr", average="macro", labels=classes))
    except ValueError:
        return float("nan")


def pooled_scores(results: Results, frame: pd.DataFrame, task: str) -> dict[str, float]:
    """Accuracy, macro-F1 and AUC of pooled OOF predictions (mean over repeats)."""
    classes = results.classes(task)
    rows = []
    for _, repeat in frame.groupby("repeat", sort=True):
        y_true = repeat["y_true"].to_numpy(dtype=str)
        y_pred = repeat["y_pred"].to_numpy(dtype=str)
        rows.append(
            {
                "accuracy": accuracy_score(y_true, y_pred),
                "macro_f1": f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
                "roc_auc": _auc(y_true, results.proba(repeat, task), classes),
            }
        )
    if not rows:
        return {"accuracy": np.nan, "macro_f1": np.nan, "roc_auc": np.nan}
    return pd.DataFrame(rows).mean(axis=0).to_dict()


def per_class_scores(frame: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class from pooled predictions (support per repeat)."""
    y_true = frame["y_true"].to_numpy(dtype=str)
    y_pred = frame["y_pred"].to_numpy(dtype=str)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    n_repeats = max(1, frame["repeat"].nunique())
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support // n_repeats},
        index=pd.Index(classes, name="class"),
    )


def karyotype_size(classes: list[str]) -> int | None:
    """Chromosomes in one cell for this class set, or None if it is not a whole karyotype."""
    families = {counterpart(c) for c in classes}
    if not {"X", "Y"} & families or len(families) < 3:
        return None
    n_sex = len({"X", "Y"} & families)
    return 2 * (len(families) - n_sex) + 2


def decoding_applies(frame: pd.DataFrame, classes: list[str]) -> bool:
    """True when most groups of one repeat are whole karyotypes (e.g. 46 chromosomes)."""
    size = karyotype_size(classes)
    if size is None or frame["group"].isna().all():
        return False
    first = frame[frame["repeat"] == frame["repeat"].min()]
    sizes = first.groupby("group").size()
    return bool(len(sizes) and (sizes == size).mean() >= 0.5)


def decoded_accuracy(results: Results, frame: pd.DataFrame, task: str) -> float:
    """Pooled accuracy after karyotype-level assignment decoding (mean over repeats)."""
    classes = results.classes(task)
    scores = []
    for _, repeat in frame.groupby("repeat", sort=True):
        decoded = assignment_decode(results.proba(repeat, task), classes, repeat["group"].to_numpy(dtype=object))
        scores.append(np.mean(decoded.astype(str) == repeat["y_true"].to_numpy(dtype=str)))
    return float(np.mean(scores)) if scores else float("nan")


def best_estimator(results: Results, split: str, task: str) -> str | None:
    """The estimator with the highest pooled accuracy (mean over repeats), or None."""
    scores = {e: pooled_scores(results, oof, task)["accuracy"] for e in results.estimators
              if len(oof := results.oof(split, task, e))}
    return max(scores, key=scores.get) if scores else None


def reported_estimator(results: Results, split: str, task: str) -> str | None:
    """The study's declared ``primary`` model when it has predictions here, else the best.

    A model declared before the run is not chosen by its test scores; the most accurate
    one, picked afterwards, is the fallback when nothing was declared.
    """
    primary = results.protocol.get("primary")
    if primary and len(results.oof(split, task, primary)):
        return primary
    return best_estimator(results, split, task)
