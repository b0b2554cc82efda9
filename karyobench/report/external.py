"""External validation tables: in-distribution CV beside scores on other datasets.

Every model trained on an outer training fold (and every training seed) predicted the
whole external set, so each estimator has one external score per fold model. Tables
report their mean, a CI that resamples the external set's groups (its patients or
slides) over the per-image share of fold models that were right, and the gap to the
cross-validated score of the same estimator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from karyobench.stats.bootstrap import draw_group_weights, group_codes

from .render import Section, Table, fmt, fmt_ci
from .results import Results


def external_tables(results: Results, n_boot: int = 2000, alpha: float = 0.05) -> list[Table]:
    """[external summary, external per-class recall] or [] without external sets."""
    if results.external_folds is None or results.external_folds.empty:
        return []
    return [_summary(results, n_boot, alpha), _per_class(results)]


def _cells(results: Results):
    folds = results.external_folds
    for (name, split, task), frame in folds.groupby(["external", "split", "task"], sort=False):
        estimators = [e for e in results.estimators if e in set(frame["estimator"])]
        estimators += [e for e in dict.fromkeys(frame["estimator"]) if e not in estimators]
        yield name, split, task, estimators


def _summary(results: Results, n_boot: int, alpha: float) -> Table:
    seed = int(results.protocol.get("seed", 0) or 0)
    described = results.protocol.get("external") or {}
    sections, numbers = [], []
    for name, split, task, estimators in _cells(results):
        rows = []
        for estimator in estimators:
            models = _models(results.external_folds, name, split, task, estimator)
            cv = results.fold_scores(split, task, estimator)
            low, high = _accuracy_ci(results, name, split, task, estimator, n_boot, alpha,
                                     seed)
            row = {"external": name, "split": split, "task": task, "estimator": estimator,
                   "n_models": len(models), "n_images": int(models["n_test"].iloc[0]),
                   "cv_accuracy": cv["accuracy"].mean(), "cv_macro_f1": cv["macro_f1"].mean(),
                   "external_accuracy": models["accuracy"].mean(),
                   "external_accuracy_sd": models["accuracy"].std(ddof=1),
                   "external_ci_low": low, "external_ci_high": high,
                   "external_macro_f1": models["macro_f1"].mean()}
            row["gap"] = row["external_accuracy"] - row["cv_accuracy"]
            rows.append(row)
        frame = pd.DataFrame(rows)
        numbers.append(frame)
        level = f"{1 - alpha:.0%}"
        display = pd.DataFrame({
            "CV accuracy": [fmt(v) for v in frame["cv_accuracy"]],
            "CV macro-F1": [fmt(v) for v in frame["cv_macro_f1"]],
            f"external accuracy [{level} CI]": [
                f"{fmt(v)} {fmt_ci(lo, hi)}" for v, lo, hi in
                zip(frame["external_accuracy"], frame["external_ci_low"],
                    frame["external_ci_high"])],
            "external macro-F1": [fmt(v) for v in frame["external_macro_f1"]],
            "gap (ext - CV)": [f"{v:+.3f}" for v in frame["gap"]],
            "models": frame["n_models"].astype(str).to_numpy(),
        }, index=pd.Index(frame["estimator"].to_list(), name="estimator"))
        info = described.get(name, {})
        groups = info.get("group_column")
        title = (f"{task} — trained under the {split} split, scored on {name} "
                 f"({int(frame['n_images'].iloc[0])} images"
                 + (f", {info.get('n_groups')} {groups} groups" if groups else "") + ")")
        sections.append(Section(title, display))
    notes = [
        "CV: mean over the study's test folds (seed-averaged). External: mean over every "
        "fold model (each trained on one outer training fold only, every training seed) "
        "of its accuracy on the whole external set; CI: percentile bootstrap resampling "
        "the external set's groups over the per-image share of fold models that were "
        "right. Gap: external minus CV accuracy.",
    ]
    for name, info in described.items():
        notes.append(f"{name}: {info.get('description', '')}; models scored: "
                     f"{info.get('scored', 'every fold model')}.")
    return Table(name="external", title=f"External validation: {results.name}",
                 sections=sections, numbers=pd.concat(numbers, ignore_index=True),
                 caption=results.protocol_text(), notes=notes)


def _models(folds: pd.DataFrame, name, split, task, estimator) -> pd.DataFrame:
    mask = ((folds["external"] == name) & (folds["split"] == split)
            & (folds["task"] == task) & (folds["estimator"] == estimator))
    return folds.loc[mask]


def _predictions(results: Results, name, split, task, estimator) -> pd.DataFrame:
    p = results.external_predictions
    mask = ((p["external"] == name) & (p["split"] == split) & (p["task"] == task)
            & (p["estimator"] == estimator))
    return p.loc[mask]


def _accuracy_ci(results, name, split, task, estimator, n_boot, alpha, seed):
    frame = _predictions(results, name, split, task, estimator)
    if frame.empty:
        return np.nan, np.nan
    per_image = (frame.assign(correct=frame["y_true"] == frame["y_pred"])
                 .groupby("sample").agg(correct=("correct", "mean"), group=("group", "first")))
    codes = group_codes(per_image["group"].to_numpy(dtype=object), len(per_image))
    n_groups = int(codes.max()) + 1
    correct = np.bincount(codes, weights=per_image["correct"].to_numpy(), minlength=n_groups)
    counts = np.bincount(codes, minlength=n_groups).astype(float)
    weights = draw_group_weights(n_groups, n_boot, np.random.default_rng(seed))
    replicates = (weights @ correct) / (weights @ counts)
    return tuple(np.quantile(replicates, [alpha / 2, 1 - alpha / 2]))


def _per_class(results: Results) -> Table:
    sections, numbers = [], []
    for name, split, task, estimators in _cells(results):
        classes = results.classes(task)
        columns, records = {}, []
        for estimator in estimators:
            external = _predictions(results, name, split, task, estimator)
            oof = results.oof(split, task, estimator)
            cv_recall = _recall(oof, classes)
            ext_recall = _recall(external, classes)
            columns[f"{estimator} CV"] = [fmt(v) for v in cv_recall]
            columns[f"{estimator} ext."] = [fmt(v) for v in ext_recall]
            for label, cv, ext in zip(classes, cv_recall, ext_recall):
                records.append({"external": name, "split": split, "task": task,
                                "estimator": estimator, "class": label,
                                "cv_recall": cv, "external_recall": ext})
        numbers.append(pd.DataFrame(records))
        sections.append(Section(f"{task} — {split} split, scored on {name}",
                                pd.DataFrame(columns, index=pd.Index(classes, name="class"))))
    return Table(name="external_per_class", title="External validation: recall per class",
                 sections=sections, numbers=pd.concat(numbers, ignore_index=True),
                 caption=results.protocol_text(),
                 notes=["CV: pooled out-of-fold recall (training seed 0). External: recall "
                        "over the predictions of every fold model on the external set "
                        "(pooled); — where the external set has no image of the class."])


def _recall(frame: pd.DataFrame, classes: list[str]) -> list[float]:
    truth = frame["y_true"].to_numpy(dtype=str)
    hit = truth == frame["y_pred"].to_numpy(dtype=str)
    return [float(hit[truth == c].mean()) if (truth == c).any() else np.nan for c in classes]
