"""Corrected resampled t-test for comparing two estimators over the same CV folds.

Fold scores of k-fold cross-validation are not independent (training sets overlap), so the
plain paired t-test is far too liberal. Nadeau & Bengio (2003) inflate the variance by the
test/train size ratio; Bouckaert & Frank (2004) apply it to r-times repeated k-fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class TTestResult:
    """Outcome of :func:`corrected_resampled_ttest` (``mean_diff`` is mean of a - b)."""

    mean_diff: float
    t: float
    p: float
    df: int
    n_scores: int
    variance_factor: float


def corrected_resampled_ttest(
    scores_a,
    scores_b,
    n_train,
    n_test,
    n_repeats: int = 1,
) -> TTestResult:
    """Two-sided corrected resampled t-test on paired fold scores.

    ``t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))`` with ``d = a - b``, ``J`` the
    number of fold scores (k folds x r repeats), ``var`` the sample variance (ddof=1) and
    ``df = J - 1``. ``n_train``/``n_test`` may be scalars or per-fold arrays (grouped folds
    differ in size); arrays are averaged before taking the ratio.
    """
    a = np.asarray(scores_a, dtype=float).ravel()
    b = np.asarray(scores_b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b must pair up, got {a.size} and {b.size} scores")
    n_scores = a.size
    if n_scores < 2:
        raise ValueError("the corrected t-test needs at least 2 paired fold scores")
    if n_repeats < 1 or n_scores % n_repeats:
        raise ValueError(f"{n_scores} fold scores cannot come from {n_repeats} repeats")
    mean_train = float(np.mean(n_train))
    mean_test = float(np.mean(n_test))
    if mean_train <= 0 or mean_test <= 0:
        raise ValueError("n_train and n_test must be positive")

    diff = a - b
    mean_diff = float(diff.mean())
    variance = float(diff.var(ddof=1))
    variance_factor = 1.0 / n_scores + mean_test / mean_train
    df = n_scores - 1
    if variance == 0.0:
        # Identical differences on every fold: no spread to test against.
        t = 0.0 if mean_diff == 0.0 else float(np.copysign(np.inf, mean_diff))
        p = 1.0 if mean_diff == 0.0 else 0.0
    else:
        t = mean_diff / np.sqrt(variance_factor * variance)
        p = float(2.0 * stats.t.sf(abs(t), df))
    return TTestResult(mean_diff, float(t), p, df, n_scores, variance_factor)


def holm_adjust(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (controls family-wise error over many pairs)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    if finite.size == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (m - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted
