"""Load a results folder written by ``karyobench run`` into one typed object.

Reports and comparisons are regenerated from saved predictions, never by retraining, so
everything a report needs must be in the folder; a missing piece is a clear DataError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from karyobench import results_schema as schema
from karyobench.errors import DataError

REQUIRED_FILES = schema.REQUIRED
FOLD_COLUMNS = schema.FOLD_COLUMNS
PREDICTION_COLUMNS = schema.PREDICTION_COLUMNS
SPLIT_DESCRIPTIONS = {
    "group": "StratifiedGroupKFold (whole groups kept in train or test)",
    "stratified": "StratifiedKFold (no groups known)",
    "image": "image-level StratifiedKFold, leaky (the seed study's protocol)",
}


@dataclass
class Results:
    """Everything in one results folder; ``predictions`` has one ``p_<class>`` column per class.

    A study trained under several seeds (``cv.train_seeds``) has one row per training seed
    in ``folds_by_seed`` / ``predictions_by_seed``. Every other table reads ``folds`` (each
    fold's scores averaged over the seeds, so comparisons use seed-averaged fold scores)
    and ``predictions`` (training seed 0's out-of-fold predictions, one per image, so
    pooled scores, CIs and karyotype decoding stay per model); ``report.noise`` reads the
    per-seed tables. With one training seed both pairs are the same.
    """

    path: Path
    protocol: dict
    tasks: dict[str, dict]
    folds: pd.DataFrame
    predictions: pd.DataFrame
    config: dict
    environment: dict
    skipped: pd.DataFrame | None
    folds_by_seed: pd.DataFrame | None = None
    predictions_by_seed: pd.DataFrame | None = None
    external_folds: pd.DataFrame | None = None
    external_predictions: pd.DataFrame | None = None

    @property
    def n_train_seeds(self) -> int:
        if self.folds_by_seed is None:
            return 1
        return int(self.folds_by_seed[SEED].nunique())

    @property
    def name(self) -> str:
        return str(self.protocol.get("study") or self.path.name)

    @property
    def splits(self) -> list[str]:
        present = list(dict.fromkeys(self.folds["split"].astype(str)))
        declared = [str(s) for s in self.protocol.get("splits", [])]
        return [s for s in declared if s in present] + [s for s in present if s not in declared]

    @property
    def estimators(self) -> list[str]:
        return list(dict.fromkeys(self.folds["estimator"].astype(str)))

    def task_names(self) -> list[str]:
        return [t for t in self.tasks if t in set(self.folds["task"].astype(str))]

    def classes(self, task: str) -> list[str]:
        return [str(c) for c in self.tasks[task]["classes"]]

    def is_binary(self, task: str) -> bool:
        return len(self.classes(task)) == 2

    def fold_scores(self, split: str, task: str, estimator: str | None = None) -> pd.DataFrame:
        mask = (self.folds["split"] == split) & (self.folds["task"] == task)
        if estimator is not None:
            mask &= self.folds["estimator"] == estimator
        return self.folds.loc[mask]

    def oof(self, split: str, task: str, estimator: str) -> pd.DataFrame:
        """Out-of-fold predictions of one estimator on one task under one split."""
        p = self.predictions
        mask = (p["split"] == split) & (p["task"] == task) & (p["estimator"] == estimator)
        return p.loc[mask]

    def proba(self, frame: pd.DataFrame, task: str) -> np.ndarray:
        """(n, n_classes) probabilities in the task's class order (NaN where absent)."""
        columns = schema.probability_columns(self.classes(task))
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{self.path / schema.PREDICTIONS}: missing probability column(s) {missing}")
        return frame[columns].to_numpy(dtype=float)

    def protocol_text(self, split: str | None = None) -> str:
        """One line saying how the numbers were obtained (for captions and headers)."""
        pr = self.protocol
        kinds = [split] if split else self.splits
        runner_descriptions = pr.get("descriptions") or {}
        images = f"{pr.get('n_images', '?')} images, {pr.get('n_groups') or 'no'} groups"
        box = pr.get("lockbox") or {}
        if box.get("n_images"):
            held = f", {box['n_groups']} groups" if box.get("n_groups") else ""
            images += f" (a lockbox of {box['n_images']} images{held} set aside)"
        if all(k in runner_descriptions for k in kinds):  # the runner's own full sentence
            return "; ".join(runner_descriptions[k] for k in kinds) + f"; {images}"
        described = "; ".join(f"{k}: {SPLIT_DESCRIPTIONS.get(k, k)}" for k in kinds)
        return (
            f"{pr.get('n_folds', '?')}-fold CV x {pr.get('n_repeats', '?')} repeat(s), seed "
            f"{pr.get('seed', '?')}; split {described}; group column "
            f"{pr.get('group_column') or 'none'}; {images}"
        )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err


def _read_parquet(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: cannot be read as Parquet ({err})") from err
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in ("split", "task", "estimator"):
        frame[column] = frame[column].astype(str)
    return frame


def load_results(path: str | Path) -> Results:
    """Read ``protocol.json``, ``tasks.json``, ``folds.parquet``, ``predictions.parquet`` and extras."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: is a file, not a results folder; give the folder "
                        "'karyobench run' wrote (e.g. results/<study>).")
    if not folder.is_dir():
        raise DataError(f"{folder}: results folder does not exist (run `karyobench run` first)")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing; the results folder is incomplete (re-run the study)")
    protocol = _read_json(folder / schema.PROTOCOL)
    tasks = _read_json(folder / schema.TASKS)
    for task, spec in tasks.items():
        if not isinstance(spec, dict) or "classes" not in spec:
            raise DataError(f"{folder / schema.TASKS}: task {task!r} has no 'classes' list")
    folds = _read_parquet(folder / schema.FOLDS, FOLD_COLUMNS)
    predictions = _read_parquet(folder / schema.PREDICTIONS, PREDICTION_COLUMNS)
    predictions["y_true"] = predictions["y_true"].astype(str)
    predictions["y_pred"] = predictions["y_pred"].astype(str)
    unknown = sorted(set(folds["task"]) - set(tasks))
    if unknown:
        raise DataError(f"{folder / schema.FOLDS}: task(s) {unknown} not listed in tasks.json")

    folds_by_seed, predictions_by_seed = _with_seed(folds), _with_seed(predictions)
    folds = _seed_averaged(folds_by_seed)
    predictions = predictions_by_seed[predictions_by_seed[SEED] == 0] \
        .drop(columns=SEED).reset_index(drop=True)
    external_folds = external_predictions = None
    if (folder / schema.EXTERNAL_FOLDS).is_file():
        external_folds = _with_seed(_read_parquet(folder / schema.EXTERNAL_FOLDS,
                                                  ("split", "task", "estimator", "external")))
        external_predictions = _with_seed(_read_parquet(
            folder / schema.EXTERNAL_PREDICTIONS,
            ("split", "task", "estimator", "external", "y_true", "y_pred")))
        external_predictions["y_true"] = external_predictions["y_true"].astype(str)
        external_predictions["y_pred"] = external_predictions["y_pred"].astype(str)
    config: dict = {}
    if (folder / schema.CONFIG).is_file():
        config = yaml.safe_load((folder / schema.CONFIG).read_text()) or {}
    environment = _read_json(folder / schema.ENVIRONMENT) \
        if (folder / schema.ENVIRONMENT).is_file() else {}
    skipped = pd.read_csv(folder / schema.SKIPPED) if (folder / schema.SKIPPED).is_file() \
        else None
    return Results(folder, protocol, tasks, folds, predictions, config, environment, skipped,
                   folds_by_seed, predictions_by_seed, external_folds, external_predictions)


CELL = list(schema.CELL)
SEED = schema.SEED_COLUMN


def _with_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """Folders of one training seed have no ``train_seed`` column: everything is seed 0."""
    if SEED not in frame.columns:
        frame = frame.assign(**{SEED: 0})
    return frame


def _seed_averaged(folds: pd.DataFrame) -> pd.DataFrame:
    """One row per fold: numeric columns averaged over training seeds (first row's text)."""
    if folds[SEED].nunique() == 1:
        return folds.drop(columns=SEED).reset_index(drop=True)
    numeric = [c for c in folds.columns if c not in CELL and c != SEED
               and pd.api.types.is_numeric_dtype(folds[c])]
    other = [c for c in folds.columns if c not in CELL + numeric + [SEED]]
    grouped = folds.groupby(CELL, sort=False)
    averaged = grouped[numeric].mean()
    if other:
        averaged = averaged.join(grouped[other].first())
    averaged = averaged.join(grouped.size().rename("n_train_seeds"))
    return averaged.reset_index()[[*CELL, *numeric, *other, "n_train_seeds"]]


def describe_unused(skipped: pd.DataFrame | None, tasks: dict) -> str | None:
    """One sentence on every input the results do not use, or None if all were used:
    unreadable files skipped, files the folder walk passed over, and per task the images
    whose labels lie outside it (``tasks.json``'s ``not_in_task``)."""
    parts = []
    if skipped is not None and len(skipped):
        stage = skipped["stage"] if "stage" in skipped else pd.Series("decode", skipped.index)
        unreadable, passed_over = int((stage == "decode").sum()), int((stage != "decode").sum())
        if unreadable:
            parts.append(f"{unreadable} unreadable file(s) skipped")
        if passed_over:
            parts.append(f"{passed_over} file(s) passed over in the class folders")
    for name, spec in tasks.items():
        outside = spec.get("not_in_task") or {}
        if outside:
            shown = ", ".join(f"{label} ({n})" for label, n in list(outside.items())[:5])
            more = f" and {len(outside) - 5} more label(s)" if len(outside) > 5 else ""
            parts.append(f"task '{name}': {sum(outside.values())} image(s) with labels "
                         f"outside it: {shown}{more}")
    if not parts:
        return None
    listed = " (files listed in skipped_files.csv)" if skipped is not None and len(skipped) \
        else ""
    return f"not used: {'; '.join(parts)}{listed}."


def unused_in_folder(folder: Path) -> str | None:
    """:func:`describe_unused` for a results folder's files."""
    folder = Path(folder)
    skipped = pd.read_csv(folder / schema.SKIPPED) \
        if (folder / schema.SKIPPED).is_file() else None
    tasks = _read_json(folder / schema.TASKS) if (folder / schema.TASKS).is_file() else {}
    return describe_unused(skipped, tasks)
