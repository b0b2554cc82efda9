"""Soft-voting ensembles built from their members' stored fold probabilities.

An ensemble is a fixed rule (a weighted mean of probabilities) over estimators that were
each trained on the same training rows, so its fold score is as honest as its members'
and costs no retraining. Its job key hashes the members' job keys, so an ensemble is
recombined exactly when one of its members changed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from karyobench.evaluation.fold import FoldJob, FoldResult
from karyobench.evaluation.metrics import fold_metrics
from karyobench.results_schema import probability_columns
from karyobench.study import Study

KIND = "soft_vote"


def plan_ensembles(study: Study, jobs: list[FoldJob]) -> list[FoldJob]:
    """One job per ensemble and (split, task, repeat, fold, training seed) of its members' jobs."""
    by_cell = {(j.split, j.task, j.repeat, j.fold, j.train_seed, j.estimator): j
               for j in jobs}
    planned = []
    for ensemble in study.ensembles:
        weights = ensemble.weights or [1.0] * len(ensemble.members)
        first = ensemble.members[0]
        # one vote per training seed: members of seed k with each other
        for job in (j for j in jobs if j.estimator == first):
            cell = (job.split, job.task, job.repeat, job.fold, job.train_seed)
            members = [by_cell[(*cell, name)] for name in ensemble.members]
            # the member keys already hash each member's data, params and fold
            planned.append(replace(
                job, estimator=ensemble.name, kind=KIND, tuning=None, storage=None,
                train_groups=None,
                params={"members": [m.key for m in members], "weights": weights}))
    return planned


def combine(job: FoldJob, store) -> FoldResult:
    """The ensemble's fold result from its members' saved predictions and timings."""
    weights = np.asarray(job.params["weights"], dtype=float)
    weights = weights / weights.sum()
    columns = probability_columns(job.classes)
    proba, fit_seconds, predict_seconds, truth = 0.0, 0.0, 0.0, None
    for key, weight in zip(job.params["members"], weights):
        record, frame = store.load_key(key)
        if truth is None:
            truth = frame["y_true"].to_numpy(dtype=str)
        elif not np.array_equal(frame["y_true"].to_numpy(dtype=str), truth):
            raise AssertionError(f"ensemble '{job.estimator}': members scored different rows")
        proba = proba + weight * frame[columns].to_numpy(dtype=float)
        fit_seconds += record["fit_seconds"]
        predict_seconds += record["predict_seconds"]
    y_pred = np.asarray(job.classes)[np.argmax(proba, axis=1)]
    metrics = fold_metrics(truth, y_pred, proba, list(job.classes))
    return FoldResult(job, metrics, y_pred, proba, fit_seconds, predict_seconds)
