"""Plan a study: its dataset (one rendering per canvas) and every estimator x fold job.

Planning is pure (no results folder, no fitting): ``run``, ``tune``, the search workers,
``--reuse`` of an older folder and the lockbox opening all plan the same jobs with the same
keys from the same study, so they share this module rather than the run loop.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from karyobench import tasks as task_selection
from karyobench.data import Dataset, load_dataset
from karyobench.data.sources import GROUP_COLUMNS
from karyobench.errors import ConfigError
from karyobench.estimators import build
from karyobench.estimators.registry import seed_params
from karyobench.evaluation import lockbox
from karyobench.evaluation.fold import FoldJob
from karyobench.evaluation.splitters import describe, make_splits, resolve_kind
from karyobench.study import CanvasConfig, Study


def load_study_dataset(study: Study, cache_dir: Path | None = None) -> Dataset:
    """The study's dataset, plus one rendering per estimator-specific canvas."""
    dataset = _load_canvas(study, study.dataset.canvas, cache_dir)
    for estimator in study.estimators:
        label = canvas_label(study, estimator)
        if not label or label in dataset.canvases:
            continue
        other = _load_canvas(study, estimator.canvas, cache_dir)
        if not np.array_equal(other.paths, dataset.paths):
            raise ConfigError(
                f"estimator '{estimator.label}': its canvas {label} kept different images "
                "than dataset.canvas (a crop failed to decode at one size?); see "
                "skipped_files.csv and use one canvas for both.")
        dataset.canvases[label] = (other.images, other.fingerprint())
    return dataset


def canvas_label(study: Study, estimator) -> str:
    """'' if ``estimator`` uses the dataset's canvas, else e.g. 'native96'."""
    canvas = estimator.canvas
    if canvas is None or canvas == study.dataset.canvas:
        return ""
    return canvas.label


def _load_canvas(study: Study, canvas, cache_dir) -> Dataset:
    return load_on_canvas(study.dataset, canvas, cache_dir, seed=study.seed)


def load_on_canvas(config, canvas, cache_dir, seed: int = 0) -> Dataset:
    """The dataset of ``config`` (a DatasetConfig) rendered on ``canvas``."""
    if canvas.native_channel:  # (n, h, w, 2): this rendering, then the native one
        plain = load_on_canvas(config, canvas.model_copy(update={"native_channel": False}),
                               cache_dir, seed)
        native = load_on_canvas(config, CanvasConfig(mode="native", size=canvas.size),
                                cache_dir, seed)
        if not np.array_equal(plain.paths, native.paths):
            raise ConfigError(f"canvas {canvas.label}: the native rendering kept different "
                              "images (a crop failed to decode at one size?); see "
                              "skipped_files.csv.")
        return replace(plain, images=np.stack([plain.images, native.images], axis=-1))
    return load_dataset(
        config.source, path=config.path, synthetic=config.synthetic or None,
        polarity=config.polarity, canvas_mode=canvas.mode,
        canvas_size=canvas.size, canvas_exponent=canvas.exponent,
        limit_groups=config.limit_groups,
        group_column=config.group_column, missing_groups=config.missing_groups,
        on_bad_image=config.on_bad_image, max_pixels=config.max_pixels, seed=seed,
        cache_dir=cache_dir)


def study_canvases(study: Study) -> dict[str, CanvasConfig]:
    """Canvas label ('' = the dataset's) -> CanvasConfig of every canvas the study uses."""
    canvases = {"": study.dataset.canvas}
    for estimator in study.estimators:
        label = canvas_label(study, estimator)
        if label:
            canvases[label] = estimator.canvas
    return canvases


def split_groups(kind: str, study: Study, dataset: Dataset) -> tuple[str, str | None]:
    """(split kind, group column) of one ``cv.split`` entry: ``group:<column>`` groups by
    that column of the data, the other kinds by ``dataset.group_column``."""
    if kind.startswith("group:"):
        column = kind.split(":", 1)[1]
        if column not in dataset.groups:
            raise ConfigError(f"cv.split '{kind}': column '{column}' is not in the data; "
                              f"group columns found: {', '.join(dataset.groups) or 'none'}.")
        empty = np.flatnonzero(np.char.strip(dataset.groups[column].astype(str)) == "")
        if len(empty):  # would pool into one group "" (dataset.group_column is checked
            raise ConfigError(  # with manifest lines on loading)
                f"cv.split '{kind}': {len(empty)} image(s) have no {column}, e.g. "
                f"'{dataset.paths[empty[0]]}'; fill them in or group by another column.")
        return kind, column
    column = group_column_of(study, dataset)
    return resolve_kind(kind, column is not None), column


def group_column_of(study: Study, dataset: Dataset) -> str | None:
    wanted = study.dataset.group_column
    if wanted is None:
        return None
    if wanted == "auto":
        return next((c for c in GROUP_COLUMNS if c in dataset.groups), None)
    if wanted not in dataset.groups:
        raise ConfigError(f"dataset.group_column '{wanted}' is not in the data; columns "
                          f"found: {', '.join(dataset.groups) or 'none'}.")
    return wanted


def check_estimators(study: Study) -> None:
    """Fail on bad estimator names, parameters or canvas sizes before any work."""
    for estimator in study.estimators:
        canvas = estimator.canvas or study.dataset.canvas
        where = f"estimator '{estimator.label}'"
        built = build(estimator.kind, estimator.params, where=where)
        try:
            if hasattr(built, "check_input_shape"):
                built.check_input_shape((canvas.size, canvas.size))
            if hasattr(built, "check_channels"):
                built.check_channels(canvas.channels)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}.") from None


def plan_jobs(study: Study, dataset: Dataset) -> tuple[list[FoldJob], dict, dict]:
    """Every (split kind, task, estimator, repeat, fold) job, plus protocol and task info."""
    check_estimators(study)
    fingerprints = {"": dataset.fingerprint()}
    jobs, protocols, task_info = [], {}, {}
    kinds = dict(split_groups(k, study, dataset) for k in study.cv.split)
    locked = lockbox.study_lockbox(study, dataset, group_column_of(study, dataset))
    for kind, group_column in kinds.items():
        groups = dataset.groups.get(group_column) if group_column else None
        protocols[kind] = describe(kind, group_column, study.cv.folds, study.cv.repeats,
                                   study.seed, study.cv.train_seeds)
        for task in study.tasks:
            rows, _ = task_selection.select(task, dataset.labels)
            rows = np.setdiff1d(rows, locked)  # the lockbox is never trained or scored on
            classes = tuple(task_selection.task_classes(task, dataset.labels))
            task_labels = task_selection.relabel(task, dataset.labels)
            task_info[task.name] = {"classes": list(classes), "n_images": int(len(rows))}
            if len(locked):
                task_info[task.name]["n_lockbox_images"] = int(
                    len(np.intersect1d(task_selection.select(task, dataset.labels)[0], locked)))
            in_task = task_selection.select(task, dataset.labels)[0]  # lockbox included
            outside = collections.Counter(np.delete(task_labels, in_task).tolist())
            if outside:  # images of other labels: said, not silently dropped
                task_info[task.name]["not_in_task"] = dict(sorted(outside.items()))
            splits = make_splits(kind, task_labels[rows],
                                 groups[rows] if groups is not None else None,
                                 study.cv.folds, study.cv.repeats, study.seed, task.name)
            for estimator in study.estimators:
                canvas = canvas_label(study, estimator)
                if canvas not in fingerprints:
                    fingerprints[canvas] = dataset.fingerprint_for(canvas)
                for train_seed, split in itertools.product(range(study.cv.train_seeds),
                                                           splits):
                    params = seed_params(estimator.kind, estimator.params, study.seed,
                                         train_seed)
                    jobs.append(FoldJob(
                        split=kind, task=task.name, estimator=estimator.label,
                        kind=estimator.kind, params=params, repeat=split.repeat,
                        fold=split.fold, seed=study.seed, classes=classes,
                        train=rows[split.train], test=rows[split.test],
                        data_fingerprint=fingerprints[canvas], canvas=canvas,
                        train_seed=train_seed))
    return jobs, protocols, task_info
