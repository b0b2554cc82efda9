"""Confidence intervals that resample whole groups (patients, karyotypes), not images.

Images of one patient or one cell are correlated; resampling images treats them as
independent and gives intervals that are too narrow. Resampling groups answers the
question that matters: how would the score move on a new set of patients?
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MetricFn = Callable[[np.ndarray, np.ndarray], float]
VECTORISED_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


@dataclass(frozen=True)
class BootstrapCI:
    """Point estimate on all data plus a percentile interval over group resamples."""

    estimate: float
    low: float
    high: float
    alpha: float
    n_boot: int
    n_groups: int
    replicates: np.ndarray = field(repr=False)


def group_codes(groups, n_samples: int) -> np.ndarray:
    """Integer group code per sample; a missing group makes the sample its own group."""
    if groups is None:
        return np.arange(n_samples)
    values = pd.Series(np.asarray(groups, dtype=object))
    if len(values) != n_samples:
        raise ValueError(f"groups has {len(values)} entries for {n_samples} samples")
    missing = values.isna().to_numpy()
    keys = np.array(
        [f"s:{i}" if gone else f"g:{value}" for i, (value, gone) in enumerate(zip(values, missing, strict=True))]
    )
    _, codes = np.unique(keys, return_inverse=True)
    return codes.ravel()


def draw_group_weights(n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_groups) counts: how often each group is drawn in each resample."""
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    offsets = (np.arange(n_boot) * n_groups)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_groups)
    return counts.reshape(n_boot, n_groups)


def _metric_from_confusions(confusions: np.ndarray, metric: str) -> np.ndarray:
    """Metric per confusion matrix (..., C, C); classes absent in a resample are ignored."""
    true_total = confusions.sum(axis=-1)
    pred_total = confusions.sum(axis=-2)
    tp = np.diagonal(confusions, axis1=-2, axis2=-1)
    n = true_total.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "accuracy":
            return tp.sum(axis=-1) / n
        if metric == "balanced_accuracy":
            present = true_total > 0
            recall = np.where(present, tp / np.where(present, true_total, 1), 0.0)
            return recall.sum(axis=-1) / present.sum(axis=-1)
        if metric == "macro_f1":
            present = (true_total + pred_total) > 0
            denominator = true_total + pred_total
            f1 = np.where(present, 2 * tp / np.where(present, denominator, 1), 0.0)
            return f1.sum(axis=-1) / present.sum(axis=-1)
    raise ValueError(f"unknown metric {metric!r}; use one of {VECTORISED_METRICS} or a callable")


def group_bootstrap_ci(
    y_true,
    y_pred,
    groups,
    metric: str | MetricFn = "accuracy",
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = 0,
) -> BootstrapCI:
    """Percentile CI of ``metric`` by resampling whole groups with replacement.

    ``metric`` is ``"accuracy"``, ``"balanced_accuracy"``, ``"macro_f1"`` (computed from
    per-group confusion matrices in one matrix product, fast) or any callable
    ``metric(y_true, y_pred) -> float`` (looped, slower). ``groups=None`` or missing group
    values fall back to one group per sample (an image-level bootstrap).
    """
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-d arrays of the same length")
    if y_true.size == 0:
        raise ValueError("cannot bootstrap an empty set of predictions")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    codes = group_codes(groups, y_true.size)
    n_groups = int(codes.max()) + 1
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    weights = draw_group_weights(n_groups, n_boot, rng)

    if isinstance(metric, str):
        classes, encoded = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
        n_classes = classes.size
        true_code, pred_code = encoded[: y_true.size], encoded[y_true.size :]
        cell = (codes * n_classes + true_code) * n_classes + pred_code
        per_group = np.bincount(cell, minlength=n_groups * n_classes * n_classes)
        per_group = per_group.reshape(n_groups, n_classes * n_classes).astype(float)
        full = per_group.sum(axis=0).reshape(n_classes, n_classes)
        estimate = float(_metric_from_confusions(full, metric))
        resampled = (weights @ per_group).reshape(n_boot, n_classes, n_classes)
        replicates = _metric_from_confusions(resampled, metric)
    else:
        estimate = float(metric(y_true, y_pred))
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(n_groups))
        members = np.split(order, starts[1:])
        replicates = np.empty(n_boot)
        for b in range(n_boot):
            index = np.concatenate([np.repeat(members[g], weights[b, g]) for g in np.flatnonzero(weights[b])])
            replicates[b] = metric(y_true[index], y_pred[index])

    low, high = np.nanquantile(replicates, [alpha / 2, 1 - alpha / 2])
    return BootstrapCI(estimate, float(low), float(high), alpha, n_boot, n_groups, replicates)
