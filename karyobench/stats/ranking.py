"""Friedman test and Nemenyi critical difference over several tasks (Demšar, 2006).

One CV run says little about which estimator is better in general; ranking estimators
across several tasks or datasets does, and the Nemenyi critical difference tells which
average-rank gaps are larger than chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class FriedmanResult:
    """Average ranks (1 = best) and, when the test applies, Friedman chi² and Nemenyi CD."""

    applicable: bool
    reason: str
    n_tasks: int
    n_estimators: int
    average_ranks: pd.Series
    statistic: float = float("nan")
    p: float = float("nan")
    critical_difference: float = float("nan")
    q_alpha: float = float("nan")
    alpha: float = 0.05


def nemenyi_q(n_estimators: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha: studentized range quantile (infinite df) over sqrt(2)."""
    return float(stats.studentized_range.ppf(1 - alpha, n_estimators, np.inf) / np.sqrt(2))


def friedman_nemenyi(
    score_table: pd.DataFrame,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> FriedmanResult:
    """Rank estimators (columns) within each task (rows) and test whether ranks differ.

    Rows with a missing score are dropped. Needs at least 2 tasks and 2 estimators; with
    fewer the result says so in ``reason`` instead of raising, so a report can print it.
    scipy's Friedman test needs 3 estimators; for 2 the same (tie-corrected) statistic is
    computed from the formula.
    """
    table = score_table.dropna(axis=0, how="any")
    n_tasks, n_estimators = table.shape
    ranks = table.rank(axis=1, ascending=not higher_is_better, method="average")
    average_ranks = ranks.mean(axis=0).sort_values() if n_tasks else pd.Series(dtype=float)
    if n_estimators < 2 or n_tasks < 2:
        reason = (
            f"Friedman/Nemenyi needs at least 2 tasks and 2 estimators with complete scores; "
            f"got {n_tasks} task(s) x {n_estimators} estimator(s)"
        )
        return FriedmanResult(False, reason, n_tasks, n_estimators, average_ranks, alpha=alpha)

    values = table.to_numpy(dtype=float)
    if n_estimators >= 3:
        statistic, p = stats.friedmanchisquare(*values.T)
    else:
        rank_sums = ranks.to_numpy().sum(axis=0)
        k, n = n_estimators, n_tasks
        chi2 = 12.0 / (n * k * (k + 1)) * np.sum(rank_sums**2) - 3.0 * n * (k + 1)
        ties = sum(np.sum(c**3 - c) for c in (np.unique(row, return_counts=True)[1] for row in values))
        correction = 1.0 - ties / (n * k * (k * k - 1))
        statistic = chi2 / correction if correction > 0 else float("nan")
        p = float(stats.chi2.sf(statistic, k - 1)) if correction > 0 else 1.0
    q_alpha = nemenyi_q(n_estimators, alpha)
    critical_difference = q_alpha * np.sqrt(n_estimators * (n_estimators + 1) / (6.0 * n_tasks))
    reason = "ok"
    if n_tasks < 10 or n_estimators < 5:
        reason = "chi-square approximation is rough with fewer than 10 tasks or 5 estimators"
    return FriedmanResult(
        True,
        reason,
        n_tasks,
        n_estimators,
        average_ranks,
        float(statistic),
        float(p),
        float(critical_difference),
        q_alpha,
        alpha,
    )
