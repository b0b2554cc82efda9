"""External validation: every fold model is also scored on whole further datasets.

Cross-validation answers "how well on new patients of this lab"; an external set (another
lab, another stain, real data for a model trained on synthetic) answers "how well
elsewhere". Nothing of an external set is ever trained on: the model of each outer fold,
fitted on that fold's training rows only, predicts every external image whose label
belongs to the task. Its images are rendered on the scored estimator's own canvas (size
and channels must fit the network), with the set's own polarity, relabelling and, if it
says so, its own canvas mode.

The fold core only calls :func:`score`; loading, file names and assembly live here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from karyobench import tasks as task_selection
from karyobench.atomic import write_parquet
from karyobench.data.dataset import canonical_label, portable_paths
from karyobench.data.sources import GROUP_COLUMNS
from karyobench.errors import ConfigError
from karyobench.evaluation.metrics import fold_metrics
from karyobench.results_schema import (EXTERNAL_FOLDS, EXTERNAL_PREDICTIONS, PREDICTION,
                                       PROBABILITY_PREFIX, probability_column,
                                       probability_columns)

PREDICTIONS_FILE = EXTERNAL_PREDICTIONS
EXTERNAL_DECIMALS = 3
FOLDS_FILE = EXTERNAL_FOLDS


@dataclass
class ExternalSet:
    """One external dataset on one canvas: images, labels after its own relabel, groups."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    groups: np.ndarray | None
    group_column: str | None
    fingerprint: str
    description: str
    skipped: list
    n_lockbox: int = 0  # rows left out: a registered lockbox of this data


@dataclass
class ExternalInput:
    """What one fold job scores: the rows of one external set that belong to its task."""

    name: str
    fingerprint: str
    rows: np.ndarray
    images: np.ndarray
    labels: np.ndarray


def load_external_sets(study, canvases: dict[str, object], load_canvas,
                       cache_dir=None, lockbox_registry=None
                       ) -> dict[tuple[str, str], ExternalSet]:
    """Every external set of ``study`` on every canvas (label -> CanvasConfig) in use.

    ``load_canvas(dataset_config, canvas, cache_dir)`` is the runner's loader, so an
    external set is decoded, cached and placed exactly like the study's own data. Rows in
    a lockbox registered for that data (``lockbox_registry``) are left out: a lockbox is
    never scored, not even as another study's external set.
    """
    from karyobench.evaluation.lockbox import registered_rows

    sets = {}
    for external in study.external:
        config = _as_dataset_config(external)
        for label, canvas in canvases.items():
            if external.canvas_mode and external.canvas_mode != canvas.mode:
                canvas = canvas.model_copy(update={"mode": external.canvas_mode})
            dataset = load_canvas(config, canvas, cache_dir)
            locked = registered_rows(lockbox_registry, dataset)
            if len(locked):
                dataset = dataset.subset(np.setdiff1d(np.arange(len(dataset)), locked))
            labels = np.array([canonical_label(external.relabel.get(str(v), v))
                               for v in dataset.labels], dtype=object).astype(str)
            column = _group_column(external, dataset)
            sets[(external.name, label)] = ExternalSet(
                name=external.name, images=dataset.images, labels=labels,
                paths=dataset.paths, groups=dataset.groups.get(column) if column else None,
                group_column=column, fingerprint=dataset.fingerprint(),
                description=dataset.description, skipped=list(dataset.skipped),
                n_lockbox=int(len(locked)))
    return sets


def _as_dataset_config(external):
    from karyobench.study import DatasetConfig

    return DatasetConfig(source=external.source, path=external.path,
                         synthetic=external.synthetic, group_column=external.group_column,
                         polarity=external.polarity, on_bad_image=external.on_bad_image)


def _group_column(external, dataset) -> str | None:
    wanted = external.group_column
    if wanted is None:
        return None
    if wanted == "auto":
        return next((c for c in GROUP_COLUMNS if c in dataset.groups), None)
    if wanted not in dataset.groups:
        raise ConfigError(f"external '{external.name}': group_column '{wanted}' is not in "
                          f"the data; columns found: {', '.join(dataset.groups) or 'none'}.")
    return wanted


def task_inputs(sets: dict[tuple[str, str], ExternalSet], task, classes,
                canvas: str) -> list[ExternalInput]:
    """The external rows a job of ``task`` on ``canvas`` scores (labels in the task)."""
    inputs = []
    for (name, label), external in sets.items():
        if label != canvas:
            continue
        task_labels = task_selection.relabel(task, external.labels)
        rows = np.flatnonzero(np.isin(task_labels, list(classes)))
        inputs.append(ExternalInput(name, external.fingerprint, rows,
                                    external.images[rows], task_labels[rows]))
    return inputs


def score(estimator, inputs: list[ExternalInput], classes: list[str], class_scores) -> dict:
    """Predictions of a fitted fold model on each external input: name -> (y_pred, proba)."""
    scored = {}
    for item in inputs:
        if not len(item.rows):
            scored[item.name] = (np.array([], dtype=str), np.zeros((0, len(classes))))
            continue
        proba = class_scores(estimator, item.images, classes)
        scored[item.name] = (np.asarray(classes)[np.argmax(proba, axis=1)], proba)
    return scored


def file_name(key: str, name: str, fingerprint: str) -> str:
    """Per-fold file of one external set's predictions; the set's content fingerprint is
    in the name, so a changed external set is re-scored and the fold key stays as it was."""
    return f"{key}.external-{name}-{fingerprint}.parquet"


def combined_fingerprint(fingerprints: list[str]) -> str:
    """An ensemble's external fingerprint: its members' (on their own canvases)."""
    return hashlib.sha256("\0".join(fingerprints).encode()).hexdigest()[:16]


def save(jobs_dir: Path, job, name: str, fingerprint: str, rows: np.ndarray,
         y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> None:
    frame = pd.DataFrame({"sample": np.asarray(rows, dtype=np.int64), "y_true": y_true,
                          "y_pred": y_pred})
    for column, label in enumerate(job.classes):
        frame[probability_column(label)] = proba[:, column] if len(proba) else np.zeros(0)
    write_parquet(jobs_dir / file_name(job.key, name, fingerprint), frame)


def load(jobs_dir: Path, key: str, name: str, fingerprint: str) -> pd.DataFrame:
    return pd.read_parquet(jobs_dir / file_name(key, name, fingerprint))


def has(jobs_dir: Path, key: str, name: str, fingerprint: str) -> bool:
    return (jobs_dir / file_name(key, name, fingerprint)).is_file()


def assemble(root: Path, jobs_dir: Path, jobs, fingerprints: dict[str, dict[str, str]],
             sets: dict[tuple[str, str], ExternalSet], ident) -> pd.DataFrame | None:
    """``external_predictions.parquet`` and ``external_folds.parquet`` of these jobs.

    ``fingerprints`` maps a job key to {external name: fingerprint}; ``ident(job)`` gives
    the columns that name a fold (the same as in folds.parquet).
    """
    by_name = {name: s for (name, _), s in sets.items()}
    fold_rows, frames = [], []
    for job in jobs:
        for name, fingerprint in fingerprints.get(job.key, {}).items():
            if not has(jobs_dir, job.key, name, fingerprint):
                continue
            frame = load(jobs_dir, job.key, name, fingerprint)
            external = by_name[name]
            samples = frame["sample"].to_numpy()
            frame.insert(1, "path", portable_paths(external.paths)[samples])
            frame.insert(2, "group", external.groups[samples]
                         if external.groups is not None else None)
            proba = frame[probability_columns(job.classes)].to_numpy(dtype=float)
            metrics = fold_metrics(frame["y_true"].to_numpy(dtype=str),
                                   frame["y_pred"].to_numpy(dtype=str), proba,
                                   list(job.classes)) if len(frame) else {}
            names = dict(ident(job), external=name)
            fold_rows.append({**names, "n_test": int(len(frame)), **metrics})
            frames.append(frame.assign(**names))
    if not fold_rows:
        for stale in (FOLDS_FILE, PREDICTIONS_FILE):
            (root / stale).unlink(missing_ok=True)
        return None
    folds = pd.DataFrame(fold_rows)
    predictions = pd.concat(frames, ignore_index=True)
    ident_cols = [c for c in folds.columns if c in predictions.columns
                  and c not in PREDICTION]
    lead = ident_cols + list(PREDICTION)
    predictions = predictions[lead + [c for c in predictions if c not in lead]]
    # Every fold model scores the whole external set (folds x splits x seeds times its
    # rows), so its committed probabilities keep 3 decimals, not the 6 of the study's own
    # predictions: enough for calibration plots and thresholds, and the file stays a few
    # MB. Fold metrics (external_folds) are computed before rounding.
    rounded = [c for c in predictions if c.startswith(PROBABILITY_PREFIX)]
    predictions[rounded] = predictions[rounded].round(EXTERNAL_DECIMALS).astype("float32")
    write_parquet(root / FOLDS_FILE, folds)
    write_parquet(root / PREDICTIONS_FILE, predictions)
    return folds


def combine(jobs_dir: Path, job, name: str, fingerprint: str,
            fingerprints: dict[str, dict[str, str]]) -> None:
    """An ensemble's external predictions: the weighted mean of its members' (the same
    rule as ``evaluation.ensembles.combine`` on the test folds)."""
    weights = np.asarray(job.params["weights"], dtype=float)
    weights = weights / weights.sum()
    columns = probability_columns(job.classes)
    proba, first = 0.0, None
    for key, weight in zip(job.params["members"], weights):
        frame = load(jobs_dir, key, name, fingerprints[key][name])
        if first is None:
            first = frame
        elif not np.array_equal(frame["sample"].to_numpy(), first["sample"].to_numpy()):
            raise AssertionError(f"ensemble '{job.estimator}': members scored different "
                                 f"rows of external set '{name}'")
        proba = proba + weight * frame[columns].to_numpy(dtype=float)
    proba = np.asarray(proba).reshape(len(first), len(columns))
    y_pred = np.asarray(job.classes)[np.argmax(proba, axis=1)] if len(first) else \
        np.array([], dtype=str)
    save(jobs_dir, job, name, fingerprint, first["sample"].to_numpy(),
         first["y_true"].to_numpy(dtype=str), y_pred, proba)
