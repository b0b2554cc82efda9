"""The retraining-noise floor: how far a score moves when only the training seed changes.

A study with ``cv.train_seeds: k`` trains every estimator x fold k times on the same
rows, changing only the initialisation (weights, shuffles, augmentation draws). The
spread over those k runs is what one more training run could change by chance; a
difference between two models smaller than it is not a finding, however small its
p-value on one seed's folds.

Definitions (per split, task, estimator), all on accuracy:
- ``seed_sd``: standard deviation over training seeds of the study-level accuracy (the
  mean over folds of that seed's fold accuracies): how far a reported headline number
  moves with a retrain;
- ``fold_seed_sd``: mean over folds of the standard deviation over seeds of the fold's
  accuracy (one fold's retraining noise);
- ``changed``: mean over pairs of seeds of the share of test images whose predicted class
  differs (from the per-seed out-of-fold predictions).
The floor of a difference A - B is ``2 * sqrt(seed_sd_A**2 + seed_sd_B**2)``: about the
95% range of the difference between two retrained study-level scores when both models
are in fact equal.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from karyobench.results_schema import SEED_COLUMN

from .render import Section, Table, fmt
from .results import Results

FLOOR_RULE = ("noise floor of a difference = 2 x sqrt(seed_sd_A^2 + seed_sd_B^2), "
              "seed_sd = standard deviation over training seeds of the study-level accuracy")


def noise_floors(results: Results, metric: str = "accuracy") -> pd.DataFrame:
    """One row per (split, task, estimator) trained under two or more seeds."""
    folds = results.folds_by_seed
    if folds is None or results.n_train_seeds < 2:
        return pd.DataFrame()
    rows = []
    for (split, task, estimator), frame in folds.groupby(["split", "task", "estimator"],
                                                         sort=False):
        seeds = sorted(frame[SEED_COLUMN].unique())
        if len(seeds) < 2:
            continue
        per_seed = frame.groupby(SEED_COLUMN)[metric].mean()
        by_fold = frame.groupby(["repeat", "fold"])[metric]
        rows.append({
            "split": split, "task": task, "estimator": estimator, "n_seeds": len(seeds),
            "n_folds": int(by_fold.ngroups),
            f"{metric}_mean": float(per_seed.mean()),
            "seed_min": float(per_seed.min()), "seed_max": float(per_seed.max()),
            "seed_sd": float(per_seed.std(ddof=1)),
            "fold_seed_sd": float(by_fold.std(ddof=1).mean()),
            "fold_seed_range_max": float((by_fold.max() - by_fold.min()).max()),
            "changed": _changed_share(results, split, task, estimator),
        })
    return pd.DataFrame(rows)


def _changed_share(results: Results, split: str, task: str, estimator: str) -> float:
    p = results.predictions_by_seed
    mask = (p["split"] == split) & (p["task"] == task) & (p["estimator"] == estimator)
    wide = p.loc[mask].pivot_table(index=["repeat", "fold", "sample"], columns=SEED_COLUMN,
                                   values="y_pred", aggfunc="first")
    pairs = list(combinations(wide.columns, 2))
    if not pairs:
        return float("nan")
    return float(np.mean([(wide[a] != wide[b]).mean() for a, b in pairs]))


def difference_floor(floors: pd.DataFrame, split: str, task: str, a: str, b: str) -> float:
    """The floor of A - B (NaN if either was trained under one seed only)."""
    if floors.empty:
        return float("nan")
    index = floors.set_index(["split", "task", "estimator"])["seed_sd"]
    try:
        return float(2 * np.hypot(index[(split, task, a)], index[(split, task, b)]))
    except KeyError:
        return float("nan")


def noise_table(results: Results) -> Table | None:
    """The floor per model (only for studies with ``cv.train_seeds`` >= 2)."""
    floors = noise_floors(results)
    if floors.empty:
        return None
    sections = []
    for (split, task), frame in floors.groupby(["split", "task"], sort=False):
        display = pd.DataFrame({
            "seeds": frame["n_seeds"].astype(int).astype(str).to_numpy(),
            "accuracy (seed mean)": [fmt(v) for v in frame["accuracy_mean"]],
            "min-max over seeds": [f"{fmt(lo)}-{fmt(hi)}" for lo, hi in
                                   zip(frame["seed_min"], frame["seed_max"])],
            "seed sd": [fmt(v, 4) for v in frame["seed_sd"]],
            "fold seed sd": [fmt(v, 4) for v in frame["fold_seed_sd"]],
            "max fold range": [fmt(v, 3) for v in frame["fold_seed_range_max"]],
            "predictions changed": [f"{v:.1%}" if np.isfinite(v) else "—"
                                    for v in frame["changed"]],
        }, index=pd.Index(frame["estimator"].to_list(), name="estimator"))
        sections.append(Section(f"{task} — {split} split", display))
    return Table(
        name="noise_floor",
        title="Retraining noise: the same folds, other initialisation seeds",
        sections=sections, numbers=floors, caption=results.protocol_text(),
        notes=["seed sd: standard deviation over training seeds of the study-level "
               "accuracy (mean over folds); fold seed sd: mean over folds of the standard "
               "deviation over seeds of one fold's accuracy; max fold range: the largest "
               "max-min over seeds of one fold; predictions changed: share of test images "
               "whose predicted class differs between two seeds (mean over seed pairs).",
               f"Comparisons (ttests) mark differences under the floor; {FLOOR_RULE}."])
