"""Figures (matplotlib, Agg): confusion matrices, per-class F1, ROC curves, fold scores,
accuracy vs training cost, and a gallery of the most confident errors.

Each figure is rendered once to PNG bytes (reused inline in report.html) and once to SVG.
Figures are built on the Agg canvas directly, without pyplot, so importing this module
never switches the backend of an interactive session and no global figure state leaks.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import NullFormatter
from sklearn.metrics import confusion_matrix, roc_curve

from karyobench import atomic
from karyobench.data.imageio import read_grey
from karyobench.errors import DataError
from .results import Results
from .scores import per_class_scores, reported_estimator


@dataclass
class Figure:
    """A saved plot: where it lives and its PNG bytes for inlining."""

    title: str
    kind: str
    png_path: Path
    svg_path: Path
    png: bytes


def slug(text: str) -> str:
    """File-name-safe version of a task or estimator name, distinct for distinct names.

    A name that is already safe is kept as it is; any other gets a short hash of itself,
    so 'réseau' and 'rèseau' (or 'a b' and 'a_b') do not write the same plot file.
    """
    text = str(text)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"
    if safe == text:
        return safe
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def _figure(size: tuple[float, float]):
    fig = MplFigure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig, folder: Path, stem: str, title: str, kind: str) -> Figure:
    png_buffer, svg_buffer = io.BytesIO(), io.BytesIO()
    fig.savefig(png_buffer, format="png", dpi=110, bbox_inches="tight")
    # no date and fixed element ids: a rebuilt report is byte-identical, so diffs show data
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        fig.savefig(svg_buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    png = png_buffer.getvalue()
    png_path = atomic.write_bytes(folder / f"{stem}.png", png)
    svg_path = atomic.write_bytes(folder / f"{stem}.svg", svg_buffer.getvalue())
    return Figure(title, kind, png_path, svg_path, png)


def confusion_figure(results: Results, split: str, task: str, estimator: str, folder: Path) -> Figure:
    """Row-normalised confusion matrix (recall on the diagonal) of pooled OOF predictions."""
    classes = results.classes(task)
    oof = results.oof(split, task, estimator)
    matrix = confusion_matrix(oof["y_true"].astype(str), oof["y_pred"].astype(str), labels=classes)
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    n = len(classes)
    size = max(3.5, 0.32 * n + 1.5)
    fig, ax = _figure((size + 1, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90 if n > 4 else 0, fontsize=7 if n > 12 else 9)
    ax.set_yticks(range(n), classes, fontsize=7 if n > 12 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{normalised[i, j]:.2f}",
                    ha="center",
                    va="center",
                    color="white" if normalised[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    title = f"Confusion (row-normalised): {task}, {estimator}, {split} split"
    ax.set_title(title, fontsize=9)
    return _save(fig, folder, f"confusion__{slug(split)}__{slug(task)}__{slug(estimator)}", title, "confusion")


def f1_figure(results: Results, split: str, task: str, folder: Path) -> Figure:
    """Grouped bars of per-class F1, one bar per estimator."""
    classes = results.classes(task)
    estimators = [e for e in results.estimators if len(results.oof(split, task, e))]
    width = 0.8 / max(1, len(estimators))
    fig, ax = _figure((min(13.0, max(4.5, 0.3 * len(classes) * len(estimators) ** 0.5 + 2)), 3.6))
    x = np.arange(len(classes))
    for k, estimator in enumerate(estimators):
        f1 = per_class_scores(results.oof(split, task, estimator), classes)["f1"].to_numpy()
        ax.bar(x + (k - (len(estimators) - 1) / 2) * width, f1, width, label=estimator)
    ax.set_xticks(x, classes, rotation=90 if len(classes) > 8 else 0, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (pooled out-of-fold)")
    title = f"Per-class F1: {task}, {split} split"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, folder, f"f1__{slug(split)}__{slug(task)}", title, "f1")


def roc_figure(results: Results, split: str, task: str, folder: Path) -> Figure | None:
    """ROC curves of pooled OOF scores for a binary task (positive = second class)."""
    classes = results.classes(task)
    fig, ax = _figure((4.2, 4.0))
    drawn = False
    for estimator in results.estimators:
        oof = results.oof(split, task, estimator)
        if not len(oof):
            continue
        scores = results.proba(oof, task)[:, 1]
        positive = oof["y_true"].to_numpy(dtype=str) == classes[1]
        if np.isnan(scores).any() or positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, scores)
        ax.plot(fpr, tpr, label=f"{estimator} (AUC {np.trapezoid(tpr, fpr):.3f})")
        drawn = True
    if not drawn:
        return None
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel(f"true positive rate ({classes[1]})")
    title = f"ROC: {task} ({classes[0]} vs {classes[1]}), {split} split"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, folder, f"roc__{slug(split)}__{slug(task)}", title, "roc")


def fold_figure(results: Results, split: str, task: str, folder: Path, metric: str = "accuracy") -> Figure:
    """Box plot of fold scores per estimator with the individual folds as points."""
    folds = results.fold_scores(split, task)
    estimators = [e for e in results.estimators if e in set(folds["estimator"])]
    values = [folds.loc[folds["estimator"] == e, metric].dropna().to_numpy(dtype=float) for e in estimators]
    fig, ax = _figure((max(4.0, 1.1 * len(estimators) + 1.5), 3.6))
    ax.boxplot(values, showfliers=False)
    rng = np.random.default_rng(0)
    for k, points in enumerate(values, start=1):
        ax.scatter(k + rng.uniform(-0.12, 0.12, points.size), points, s=14, alpha=0.8, zorder=3)
    ax.set_xticks(range(1, len(estimators) + 1), estimators, rotation=20, fontsize=8)
    ax.set_ylabel(f"{metric} per fold")
    title = f"Fold {metric}: {task}, {split} split"
    ax.set_title(title, fontsize=9)
    return _save(fig, folder, f"folds__{slug(split)}__{slug(task)}", title, "folds")


def cost_figure(results: Results, split: str, task: str, folder: Path,
                metric: str = "accuracy") -> Figure | None:
    """Mean fold score (with its standard deviation) against mean training seconds per
    fold: what each estimator buys per CPU-second. None if no fold timed its fit."""
    folds = results.fold_scores(split, task)
    if "fit_seconds" not in folds:
        return None
    stats = (folds.assign(fit_seconds=folds["fit_seconds"].astype(float))
             .groupby("estimator", sort=False)
             .agg(score=(metric, "mean"), sd=(metric, "std"), seconds=("fit_seconds", "mean")))
    stats = stats.dropna(subset=["score", "seconds"])
    stats = stats[stats["seconds"] > 0]
    if stats.empty:
        return None
    fig, ax = _figure((5.2, 3.8))
    ax.errorbar(stats["seconds"], stats["score"], yerr=stats["sd"].fillna(0), fmt="o",
                capsize=3)
    for name, row in stats.iterrows():
        ax.annotate(str(name), (row["seconds"], row["score"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # crowded 2x10^2 3x10^2 ... labels
    ax.set_xlabel("training seconds per fold (mean, log scale)")
    ax.set_ylabel(f"{metric} (mean ± sd over folds)")
    title = f"{metric.capitalize()} vs training cost: {task}, {split} split"
    ax.set_title(title, fontsize=9)
    return _save(fig, folder, f"cost__{slug(split)}__{slug(task)}", title, "cost")


def confident_errors(results: Results, split: str, task: str, n_images: int = 24):
    """(reported estimator, its ``n_images`` most confident wrong predictions, all its errors).

    The reported estimator is the study's declared ``primary``, else the one with the
    highest pooled accuracy; its first repeat gives one row per crop, sorted by the
    probability of the wrongly predicted class.
    """
    model = reported_estimator(results, split, task)
    if model is None:
        return None, None, 0
    oof = results.oof(split, task, model)
    oof = oof[oof["repeat"] == oof["repeat"].min()]
    wrong = oof[oof["y_true"].astype(str) != oof["y_pred"].astype(str)]
    confidence = np.nan_to_num(results.proba(wrong, task), nan=-1.0).max(axis=1)
    order = np.argsort(-confidence, kind="stable")[:n_images]
    return model, wrong.iloc[order].assign(confidence=confidence[order]), len(wrong)


def _image_file(results: Results, path: str) -> Path:
    """A crop of predictions.parquet: paths are relative to the dataset root that
    protocol.json records (relative to the results folder, or '<cache>/...')."""
    if Path(path).is_absolute():
        return Path(path)
    root = results.protocol.get("dataset_root")
    if root is None:
        return Path(path)
    if root.startswith("<cache>/"):
        from karyobench.data.loading import default_cache_dir

        return default_cache_dir() / root.removeprefix("<cache>/") / path
    return results.path / root / path


def errors_figure(results: Results, split: str, task: str, folder: Path,
                  n_images: int = 24) -> Figure | None:
    """The reported estimator's most confident wrong predictions, as the crops themselves.

    Confident errors are where label noise, overlaps and bad segmentations show up, so a
    reader can judge whether the remaining errors are the model's or the data's. None
    when there are no errors or the crops cannot be read (a report rebuilt elsewhere).
    """
    model, shown, n_wrong = confident_errors(results, split, task, n_images)
    if shown is None or not len(shown):
        return None
    try:
        crops = [read_grey(_image_file(results, str(path))) for path in shown["path"]]
    except (OSError, DataError):
        return None
    columns = min(8, len(shown))
    rows = int(np.ceil(len(shown) / columns))
    fig = MplFigure(figsize=(1.7 * columns, 2.0 * rows + 0.4))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, row, crop in zip(axes, shown.itertuples(), crops, strict=False):
        ax.imshow(crop, cmap="gray", vmin=0, vmax=1)
        name = Path(str(row.path)).name
        name = name if len(name) <= 24 else "…" + name[-23:]
        ax.set_title(f"{row.y_true}\n→ {row.y_pred} ({row.confidence:.2f})\n{name}", fontsize=6)
    title = (f"Most confident errors: {task}, {model}, {split} split "
             f"(true → predicted (probability); {n_wrong} errors in all)")
    fig.suptitle(title, fontsize=8)
    return _save(fig, folder, f"errors__{slug(split)}__{slug(task)}", title, "errors")


def all_figures(results: Results, folder: Path, n_jobs: int | None = None) -> list[Figure]:
    """Every plot for a results folder, saved under ``folder``.

    The figures of each (split, task) are rendered in their own process when there are
    several and more than one core (``n_jobs``: processes; default one per core):
    rendering PNG + SVG is most of a report's time (21 s of 33 for the eight tasks of
    abnormal_pairs), and each figure depends only on the results, so the files are the
    same bytes either way. Figures come back in the serial order."""
    units = [(split, task) for split in results.splits for task in results.task_names()]
    n_jobs = min(len(units), n_jobs or os.cpu_count() or 1)
    if n_jobs <= 1:
        per_unit = [_unit_figures(results, split, task, folder) for split, task in units]
    else:
        from joblib import Parallel, delayed

        per_unit = Parallel(n_jobs=n_jobs, backend="loky")(
            delayed(_unit_figures)(results, split, task, folder) for split, task in units)
    return [figure for figures in per_unit for figure in figures]


def _unit_figures(results: Results, split: str, task: str, folder: Path) -> list[Figure]:
    """The plots of one task under one split (none when no estimator has predictions)."""
    figures: list[Figure] = []
    estimators = [e for e in results.estimators if len(results.oof(split, task, e))]
    if not estimators:
        return figures
    figures.append(fold_figure(results, split, task, folder))
    cost = cost_figure(results, split, task, folder)
    if cost is not None:
        figures.append(cost)
    figures.append(f1_figure(results, split, task, folder))
    errors = errors_figure(results, split, task, folder)
    if errors is not None:
        figures.append(errors)
    if results.is_binary(task):
        roc = roc_figure(results, split, task, folder)
        if roc is not None:
            figures.append(roc)
    for estimator in estimators:
        figures.append(confusion_figure(results, split, task, estimator, folder))
    return figures
