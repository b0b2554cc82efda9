"""``karyobench lockbox STUDY``: train the declared primary on everything outside the
lockbox, score the lockbox once, and record the opening.

The model is the study's ``primary`` as declared (an estimator with its params, or a soft
vote of estimators), trained on all non-lockbox images of each task; the lockbox's score
is then the only number in the results folder that no model choice has seen before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import recall_score

from karyobench import tasks as task_selection
from karyobench.atomic import write_parquet
from karyobench.errors import ConfigError
from karyobench.evaluation import lockbox
from karyobench.evaluation.environment import describe_environment
from karyobench.data.dataset import portable_paths
from karyobench.evaluation.fold import FoldJob, run_fold
from karyobench.evaluation.metrics import fold_metrics
from karyobench.evaluation.plan import canvas_label, group_column_of, load_study_dataset
from karyobench.results_schema import LOCKBOX_DIR, LOCKBOX_PREDICTIONS
from karyobench.stats import group_bootstrap_ci


def primary_members(study) -> list[tuple[object, float]]:
    """(estimator config, weight) of the declared primary: one estimator or a vote."""
    if study.primary is None:
        raise ConfigError(f"study '{study.name}' declares no `primary`; name the estimator "
                          "or ensemble the lockbox is opened for, before opening it.")
    estimators = {e.label: e for e in study.estimators}
    if study.primary in estimators:
        members = [(estimators[study.primary], 1.0)]
    else:
        ensemble = next(e for e in study.ensembles if e.name == study.primary)
        weights = ensemble.weights or [1.0] * len(ensemble.members)
        members = [(estimators[m], w) for m, w in zip(ensemble.members, weights)]
    tuned = [e.label for e, _ in members if e.tuning]
    if tuned:
        raise ConfigError(f"primary '{study.primary}': {tuned} are tuned; opening a lockbox "
                          "for a nested search is not supported yet (declare an untuned model).")
    return members


def open_lockbox(study, out_dir: Path, *, registry: Path | None = lockbox.DEFAULT_REGISTRY,
                 cache_dir: Path | None = None, reopen: bool = False) -> list[dict]:
    """Score the lockbox once; return every opening recorded so far."""
    if study.dataset.lockbox is None:
        raise ConfigError(f"study '{study.name}' has no `dataset.lockbox`; there is nothing "
                          "to open.")
    members = primary_members(study)
    folder = Path(out_dir) / LOCKBOX_DIR
    lockbox.refuse_second_opening(folder, reopen)
    dataset = load_study_dataset(study, cache_dir)
    group_column = group_column_of(study, dataset)
    locked = lockbox.study_lockbox(study, dataset, group_column)
    lockbox.guard(study, dataset, group_column, registry, locked)
    groups = dataset.groups.get(group_column) if group_column else None
    revision = describe_environment().get("git_revision")  # the code that trains, not later
    frames, entries = [], []
    for task in study.tasks:
        rows, _ = task_selection.select(task, dataset.labels)
        labels = task_selection.relabel(task, dataset.labels)
        classes = tuple(task_selection.task_classes(task, dataset.labels))
        train, test = np.setdiff1d(rows, locked), np.intersect1d(rows, locked)
        proba = 0.0
        fit_seconds = 0.0
        for estimator, weight in members:
            canvas = canvas_label(study, estimator)
            job = FoldJob(split="lockbox", task=task.name, estimator=estimator.label,
                          kind=estimator.kind, params=estimator.params, repeat=0, fold=0,
                          seed=study.seed, classes=classes, train=train, test=test,
                          data_fingerprint=dataset.fingerprint_for(canvas), canvas=canvas)
            result = run_fold(job, dataset.images_for(canvas), labels)
            proba = proba + weight * result.proba
            fit_seconds += result.fit_seconds
        proba = proba / sum(w for _, w in members)
        y_true = labels[test]
        y_pred = np.asarray(classes)[np.argmax(proba, axis=1)]
        metrics = fold_metrics(y_true, y_pred, proba, list(classes))
        ci = {metric: group_bootstrap_ci(y_true, y_pred,
                                         groups[test] if groups is not None else None,
                                         metric, n_boot=2000, alpha=0.05, seed=study.seed)
              for metric in ("accuracy", "macro_f1")}
        recall = recall_score(y_true, y_pred, labels=list(classes), average=None,
                              zero_division=0)
        frame = pd.DataFrame({"task": task.name, "sample": test,
                              "path": portable_paths(dataset.paths)[test],
                              "group": groups[test] if groups is not None else None,
                              "y_true": y_true, "y_pred": y_pred})
        for column, label in enumerate(classes):
            frame[f"p_{label}"] = np.round(proba[:, column], 6).astype("float32")
        frames.append(frame)
        entries.append({"task": task.name,
                        "accuracy": float(metrics["accuracy"]),
                        "accuracy_ci": [float(ci["accuracy"].low), float(ci["accuracy"].high)],
                        "macro_f1": float(metrics["macro_f1"]),
                        "macro_f1_ci": [float(ci["macro_f1"].low), float(ci["macro_f1"].high)],
                        "recall": {c: float(r) if c in set(y_true) else None
                                   for c, r in zip(classes, recall)},
                        "n_images": int(len(test)), "n_train_images": int(len(train)),
                        "n_groups": int(len(np.unique(groups[test])))
                        if groups is not None else None,
                        "fit_seconds": round(fit_seconds, 1)})
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(folder / LOCKBOX_PREDICTIONS, pd.concat(frames, ignore_index=True))
    return lockbox.record_opening(folder, {
        "model": study.primary, "git_revision": revision,
        "tasks": {entry.pop("task"): entry for entry in entries}})
