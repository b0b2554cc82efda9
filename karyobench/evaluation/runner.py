"""Run a study: plan -> execute fold jobs -> assemble -> report, the one run loop.

``karyobench run`` and ``karyobench tune`` both call :func:`run_study`; they differ only in
the :class:`Tuner` they pass (how tuned folds are fitted, and what happens before and
after), so ensembles, ``--reuse``, ``fold_keys.csv`` and the report behave the same.

Each fold is persisted the moment it finishes, keyed by a hash of everything that
determines it, so an interrupted or repeated run recomputes only what is missing and a
changed study never mixes its results with stale ones.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from karyobench import progress as fold_progress
from karyobench import tasks as task_selection
from karyobench.context import RunContext, call_in, using
from karyobench.errors import ConfigError
from karyobench.estimators.registry import uses_tensorflow
from karyobench.evaluation import external, lockbox
from karyobench.evaluation import backends
from karyobench.evaluation.ensembles import combine, plan_ensembles
from karyobench.evaluation.environment import describe_environment, portable_record
from karyobench.evaluation.fold import FoldJob, FoldResult, run_fold
from karyobench.evaluation.metadata import write_metadata
from karyobench.evaluation.plan import (check_estimators, group_column_of,  # noqa: F401
                                        load_on_canvas, load_study_dataset, plan_jobs,
                                        study_canvases)
from karyobench.evaluation.restore import restore_folds, write_fold_keys
from karyobench.evaluation.store import ResultsStore, atomic_write_text, fold_ident, seeded
from karyobench.results_schema import ENVIRONMENT, FOLD_KEYS, FOLDS, REPORT, TIMINGS
from karyobench.study import Study


@dataclass
class RunSummary:
    out_dir: Path
    folds: pd.DataFrame
    n_jobs: int
    n_reused: int
    wall_seconds: float
    protocols: dict[str, str]
    leakage_checked: bool
    restored: dict[str, int] | None = None  # {results folder: folds recovered from it}


class Tuner(Protocol):
    """How the run loop fits the folds of estimators with a ``tuning`` block.

    The loop itself knows no search: it asks the tuner to mark the tuned jobs
    (``attach``), fits a job the tuner marked with ``tuner.fit`` and every other job with
    :func:`~karyobench.evaluation.fold.run_fold`, and lets the tuner add its own outputs.
    ``karyobench.tuning.tuner.NestedSearch`` is the implementation (nested CV with Optuna).
    """

    def attach(self, jobs: list[FoldJob], study: Study, groups: np.ndarray | None,
               out_dir: Path) -> list[FoldJob]:
        """The jobs, those of tuned estimators given their search settings."""

    def fit(self, job: FoldJob, images: np.ndarray, labels: np.ndarray,
            externals: tuple = ()) -> FoldResult:
        """Search on the job's training rows, refit the best, score its test rows."""

    def before_fits(self, pending: list[FoldJob], images_for: Callable,
                    labels_by_task: dict, out_dir: Path) -> None:
        """Called once the pending jobs are known, before any is fitted."""

    def after_fit(self, root: Path, result: FoldResult) -> None:
        """Called after each tuned fold is saved."""

    def finish(self, root: Path, jobs: list[FoldJob]) -> dict:
        """Write the tuner's outputs; returns entries for ``environment.json``."""


def run_study(study: Study, out_dir: Path, *, backend: str | None = None,
              workers: int | None = None, scheduler: str | None = None,
              cache_dir: Path | None = None, progress=None,
              tuner: Tuner | None = None,
              reuse: Sequence[Path] = (),
              lockbox_registry: Path | None = None,
              force: bool = False) -> RunSummary:
    """Compute every missing fold, then write the results folder.

    Folds already in ``out_dir/jobs`` are reused; missing ones are then looked up in the
    committed results of each ``reuse`` folder (same job key only, see ``restore``; it may
    be ``out_dir`` itself), and only the rest are trained. ``lockbox_registry`` is the
    folder of lockbox records (evaluation.lockbox.guard; None: not checked). A study with
    tuned estimators needs a ``tuner`` (``karyobench.tuning.tuner.NestedSearch``).
    """
    started = time.perf_counter()
    if any(e.tuning for e in study.estimators) and tuner is None:
        raise ConfigError(f"study '{study.name}' has estimators with a 'tuning' block; "
                          "pass a tuner (karyobench.tuning.tuner.NestedSearch) to run it.")
    # feature caches (HOG) and fold processes follow the run's cache and thread budget
    # (the threads once the execution is known, below)
    store = ResultsStore(out_dir)
    context = RunContext(cache_dir=Path(cache_dir).resolve() if cache_dir else None,
                         progress_dir=store.jobs_dir.resolve())
    check_estimators(study)
    _check_out_dir(study, Path(out_dir))
    with using(context), store.lock():
        store.check_owner(study.name, force)
        if progress and hasattr(progress, "stage"):
            progress.stage("reading and decoding images")
        dataset = load_study_dataset(study, cache_dir)
        group_column = group_column_of(study, dataset)
        locked = lockbox.study_lockbox(study, dataset, group_column)
        lockbox.guard(study, dataset, group_column, lockbox_registry, locked)
        jobs, protocols, task_info = plan_jobs(study, dataset)
        groups = dataset.groups.get(group_column) if group_column else None
        if tuner is not None and any(e.tuning for e in study.estimators):
            jobs = tuner.attach(jobs, study, groups, Path(out_dir))
        else:
            tuner = None
        ensemble_jobs = plan_ensembles(study, jobs)
        external_sets = external.load_external_sets(
            study, study_canvases(study), load_on_canvas, cache_dir,
            lockbox_registry) if study.external else {}
        external_inputs = _external_inputs(study, jobs, external_sets)
        external_fingerprints = _external_fingerprints(jobs, ensemble_jobs, external_inputs)
        # before config.yaml is rewritten: an older folder's keys come from its config
        restored = restore_folds(store, jobs + ensemble_jobs, [Path(r) for r in reuse],
                                 cache_dir)
        # a fold whose model has not scored an external set yet is trained again (same
        # key, same result): fitted models are not kept
        unique = {job.key: job for job in jobs}  # a seedless estimator: one fit per fold
        pending = [job for job in unique.values() if not store.has(job) or any(
            not external.has(store.jobs_dir, job.key, name, fingerprint)
            for name, fingerprint in external_fingerprints.get(job.key, {}).items())]
        n_reused = len(unique) - len(pending)
        # longest first (tuned, then network folds): the quick baseline folds then fill
        # the tail, instead of one core idling behind a network fold started last
        pending.sort(key=lambda job: (job.tuning is None, not uses_tensorflow(job.kind)))
        labels_by_task = {t.name: task_selection.relabel(t, dataset.labels)
                          for t in study.tasks}
        execution = backends.resolve(
            backend or study.execution.backend, workers or study.execution.workers,
            len(pending), source="command line" if backend or workers else "study file")
        context = dataclasses.replace(context, threads=execution.threads)
        execute = backends.BACKENDS[execution.backend]
        if tuner is not None:
            tuner.before_fits(pending, dataset.images_for, labels_by_task, Path(out_dir))
        calls = [functools.partial(call_in, context, functools.partial(
                     run_fold if job.tuning is None else tuner.fit, job,
                     dataset.images_for(job.canvas), labels_by_task[job.task],
                     tuple(external_inputs.get(job.key, ()))))
                 for job in pending]
        fold_progress.clear(store.jobs_dir)  # files of an interrupted run's folds
        if progress:
            progress.start(len(unique), n_reused, running=store.jobs_dir)
        for result in execute(calls, workers=execution.workers,
                              scheduler=scheduler or study.execution.scheduler):
            store.save(result, dataset.paths, groups, labels_by_task[result.job.task])
            for item in external_inputs.get(result.job.key, ()):
                y_pred, proba = result.external[item.name]
                external.save(store.jobs_dir, result.job, item.name, item.fingerprint,
                              item.rows, item.labels, y_pred, proba)
            if tuner is not None and result.job.tuning is not None:
                tuner.after_fit(store.root, result)
            if progress:
                progress.advance(result)
        for job in ensemble_jobs:
            if not store.has(job):
                store.save(combine(job, store), dataset.paths, groups,
                           labels_by_task[job.task])
            for name, fingerprint in external_fingerprints.get(job.key, {}).items():
                if not external.has(store.jobs_dir, job.key, name, fingerprint):
                    external.combine(store.jobs_dir, job, name, fingerprint,
                                     external_fingerprints)
        previous = _read_folds(store.root / FOLDS)
        (store.root / FOLD_KEYS).unlink(missing_ok=True)  # never pairs with other folds
        folds, _ = store.assemble(jobs + ensemble_jobs)
        with_seed = seeded(jobs)
        external.assemble(store.root, store.jobs_dir, jobs + ensemble_jobs,
                          external_fingerprints, external_sets,
                          lambda job: fold_ident(job, with_seed))
        write_fold_keys(store.root, jobs + ensemble_jobs)
        # config, protocol and tasks only now, with the folds they describe: an interrupted
        # run leaves the folder describing the results it holds
        metadata_changed = write_metadata(store, study, dataset, protocols, task_info,
                                          group_column, external_sets, locked)
        tables_changed = previous is None or not previous.drop(columns=list(TIMINGS)).equals(
            folds.drop(columns=list(TIMINGS)))
        environment_extra = tuner.finish(store.root, jobs) if tuner is not None else {}
        wall = time.perf_counter() - started
        environment = describe_environment()
        environment.update(wall_seconds=round(wall, 2), folds_reused=n_reused,
                           folds_computed=len(pending), folds_restored=restored,
                           **execution.describe())
        environment.update(environment_extra)
        environment["previous_runs"] = _previous_runs(store.root / ENVIRONMENT)
        atomic_write_text(store.root / ENVIRONMENT, json.dumps(environment, indent=1))
        if (pending or tables_changed or metadata_changed
                or not (store.root / REPORT).is_file()):
            if progress and hasattr(progress, "stage"):
                progress.stage("writing tables, plots and report.html")
            _write_report(store.root)
    return RunSummary(Path(out_dir), folds, len(jobs), n_reused, wall, protocols,
                      leakage_checked=groups is not None, restored=restored)


def _external_inputs(study: Study, jobs: list[FoldJob],
                     sets: dict) -> dict[str, list[external.ExternalInput]]:
    """Job key -> the external rows its model scores. Tuned folds are not scored (their
    refit happens inside the nested search); the report says which models were."""
    if not sets:
        return {}
    tasks = {t.name: t for t in study.tasks}
    shared: dict[tuple, list] = {}
    inputs = {}
    for job in jobs:
        if job.tuning is not None:
            continue
        cell = (job.task, job.canvas)
        if cell not in shared:
            shared[cell] = external.task_inputs(sets, tasks[job.task], job.classes,
                                                job.canvas)
        inputs[job.key] = shared[cell]
    return inputs


def _external_fingerprints(jobs, ensemble_jobs, inputs) -> dict[str, dict[str, str]]:
    """Job key -> {external name: fingerprint of what it scored}; an ensemble is scored
    where all its members were."""
    prints = {key: {item.name: item.fingerprint for item in items}
              for key, items in inputs.items()}
    for job in ensemble_jobs:
        members = [prints.get(key, {}) for key in job.params["members"]]
        names = set.intersection(*(set(m) for m in members)) if members else set()
        prints[job.key] = {name: external.combined_fingerprint([m[name] for m in members])
                           for name in sorted(names)}
    return prints


def _check_out_dir(study: Study, out_dir: Path) -> None:
    """Results inside the class-folder root would be walked as a class of images."""
    root = study.dataset.path
    if study.dataset.source == "folders" and root is not None and \
            out_dir.resolve().is_relative_to(Path(root).resolve()):
        raise ConfigError(f"results folder '{out_dir}' is inside dataset.path '{root}', "
                          "whose sub-folders are read as classes; choose an --out outside it.")


def _read_folds(path: Path) -> pd.DataFrame | None:
    """The folds table of an earlier run, to redraw the report only when it changed."""
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, KeyError):
        return None


def _previous_runs(path: Path) -> list[dict]:
    """Earlier runs into the same folder, so a resumed run keeps the first run's timings."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    history = earlier.pop("previous_runs", [])
    return [portable_record(run) for run in history + [earlier]]


def _write_report(root: Path) -> None:
    # imported here, not at the top: the fold workers import this module and never report
    from karyobench.report import write_report

    write_report(root)
