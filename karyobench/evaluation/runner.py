"""Run a study: dataset -> tasks -> splits -> estimator x fold jobs -> results folder.

Each fold is persisted the moment it finishes, keyed by a hash of everything that
determines it, so an interrupted or repeated run recomputes only what is missing and a
changed study never mixes its results with stale ones.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from karyobench import tasks as task_selection
from karyobench.data import Dataset, load_dataset
from karyobench.data.sources import GROUP_COLUMNS
from karyobench.errors import ConfigError
from karyobench.estimators import build
from karyobench.estimators.registry import seed_params
from karyobench.evaluation.backends import BACKENDS
from karyobench.evaluation.ensembles import combine, plan_ensembles
from karyobench.evaluation.environment import describe_environment, portable_record
from karyobench.evaluation.fold import FoldJob, run_fold
from karyobench.evaluation.restore import KEYS_FILE, restore_folds, write_fold_keys
from karyobench.evaluation.splitters import describe, make_splits, resolve_kind
from karyobench.evaluation import external, lockbox
from karyobench.evaluation.store import ResultsStore, atomic_write_text, fold_ident, seeded
from karyobench.study import CanvasConfig, Study


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


def run_study(study: Study, out_dir: Path, *, backend: str | None = None,
              workers: int | None = None, scheduler: str | None = None,
              cache_dir: Path | None = None, progress=None,
              tuning_storage: str | None = None,
              reuse: list[Path] | tuple[Path, ...] = (),
              lockbox_registry: Path | None = None,
              force: bool = False) -> RunSummary:
    """Compute every missing fold, then write the results folder.

    Folds already in ``out_dir/jobs`` are reused; missing ones are then looked up in the
    committed results of each ``reuse`` folder (same job key only, see ``restore``; it may
    be ``out_dir`` itself), and only the rest are trained. ``lockbox_registry`` is the
    folder of lockbox records (evaluation.lockbox.guard; None: not checked).
    """
    started = time.perf_counter()
    if cache_dir is not None:  # feature caches (HOG) and worker processes follow it too
        os.environ["KARYOBENCH_CACHE"] = str(Path(cache_dir).resolve())
    store = ResultsStore(out_dir)
    check_estimators(study)
    _check_out_dir(study, Path(out_dir))
    with store.lock():
        store.check_owner(study.name, force)
        if progress and hasattr(progress, "stage"):
            progress.stage("reading and decoding images")
        dataset = load_study_dataset(study, cache_dir)
        group_column = group_column_of(study, dataset)
        locked = lockbox.study_lockbox(study, dataset, group_column)
        lockbox.guard(study, dataset, group_column, lockbox_registry, locked)
        jobs, protocols, task_info = plan_jobs(study, dataset)
        groups = dataset.groups.get(group_column) if group_column else None
        tuning_url = None
        if any(e.tuning for e in study.estimators):
            from karyobench.tuning.nested import attach_tuning, check_tuning
            from karyobench.tuning.storage import default_storage_url

            check_tuning(study)
            tuning_url = tuning_storage or default_storage_url(out_dir)
            jobs = attach_tuning(jobs, study, groups, tuning_url)
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
        labels_by_task = {t.name: task_selection.relabel(t, dataset.labels)
                          for t in study.tasks}
        backend_name = backend or study.execution.backend
        execute = BACKENDS[backend_name]
        calls = [functools.partial(run_fold, job, dataset.images_for(job.canvas),
                                   labels_by_task[job.task],
                                   tuple(external_inputs.get(job.key, ())))
                 for job in pending]
        if progress:
            progress.start(len(unique), n_reused)
        for result in execute(calls, workers=workers or study.execution.workers,
                              scheduler=scheduler or study.execution.scheduler):
            store.save(result, dataset.paths, groups, labels_by_task[result.job.task])
            for item in external_inputs.get(result.job.key, ()):
                y_pred, proba = result.external[item.name]
                external.save(store.jobs_dir, result.job, item.name, item.fingerprint,
                              item.rows, item.labels, y_pred, proba)
            if result.extra.get("tuning"):
                from karyobench.tuning.outputs import save_fold_record

                save_fold_record(store.root, result.job, result)
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
        previous = _read_folds(store.root / "folds.parquet")
        (store.root / KEYS_FILE).unlink(missing_ok=True)  # never pairs with other folds
        folds, _ = store.assemble(jobs + ensemble_jobs)
        with_seed = seeded(jobs)
        external.assemble(store.root, store.jobs_dir, jobs + ensemble_jobs,
                          external_fingerprints, external_sets,
                          lambda job: fold_ident(job, with_seed))
        write_fold_keys(store.root, jobs + ensemble_jobs)
        # config, protocol and tasks only now, with the folds they describe: an interrupted
        # run leaves the folder describing the results it holds
        metadata_changed = _write_metadata(store, study, dataset, protocols, task_info,
                                           group_column, external_sets)
        tables_changed = previous is None or not previous.drop(columns=_TIMINGS).equals(
            folds.drop(columns=_TIMINGS))
        if tuning_url:
            from karyobench.tuning.outputs import write_tuning_outputs

            write_tuning_outputs(store.root, tuning_url, keys=[j.key for j in jobs if j.tuning])
        wall = time.perf_counter() - started
        environment = describe_environment()
        environment.update(wall_seconds=round(wall, 2), folds_reused=n_reused,
                           folds_computed=len(pending), backend=backend_name,
                           folds_restored=restored)
        environment["previous_runs"] = _previous_runs(store.root / "environment.json")
        atomic_write_text(store.root / "environment.json", json.dumps(environment, indent=1))
        if (pending or tables_changed or metadata_changed
                or not (store.root / "report.html").is_file()):
            if progress and hasattr(progress, "stage"):
                progress.stage("writing tables, plots and report.html")
            _write_report(store.root)
    return RunSummary(Path(out_dir), folds, len(jobs), n_reused, wall, protocols,
                      leakage_checked=groups is not None, restored=restored)


_TIMINGS = ["fit_seconds", "predict_seconds"]


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


def _write_metadata(store, study, dataset, protocols, task_info, group_column,
                    external_sets=None) -> bool:
    """Write config, protocol and task files; True if the protocol or tasks changed.

    The report reads them (a declared ``primary``, ensemble notes), so a change there
    must rebuild it even when no fold was retrained.
    """
    config = study.portable_dump(base=store.root)
    atomic_write_text(store.root / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    protocol = {
        "study": study.name, "seed": study.seed, "n_folds": study.cv.folds,
        "n_repeats": study.cv.repeats, "splits": list(protocols),
        "descriptions": protocols, "group_column": group_column,
        "n_images": int(len(dataset)),
        "n_groups": int(len(np.unique(dataset.groups[group_column]))) if group_column else None,
        "dataset": dataset.description,
        "dataset_root": dataset_root(dataset.paths, store.root),
        "config_digest": study.digest(),
        "canvas": study.dataset.canvas.model_dump(),
        "estimator_canvases": {e.label: (e.canvas or study.dataset.canvas).model_dump()
                               for e in study.estimators},
        "ensembles": {e.name: {"members": e.members, "weights": e.weights,
                               "rule": "weighted mean of member probabilities"}
                      for e in study.ensembles},
        "primary": study.primary,
    }
    if study.dataset.lockbox is not None:
        protocol["lockbox"] = {
            **study.dataset.lockbox.model_dump(),
            "rule": "whole groups set aside before any study, never trained or scored on "
                    "by run or tune; opened by `karyobench lockbox` (lockbox/openings.json)"}
    if external_sets:
        protocol["external"] = {
            name: {"description": s.description, "n_images": int(len(s.labels)),
                   "group_column": s.group_column,
                   "n_groups": int(len(np.unique(s.groups))) if s.groups is not None
                   else None, "n_skipped": len(s.skipped),
                   "n_lockbox_left_out": s.n_lockbox,
                   "scored": "every untuned estimator's model of every outer fold "
                             "(trained on that fold's training rows only), and every "
                             "ensemble of them"}
            for (name, _), s in external_sets.items()}
    changed = False
    for name, content in (("protocol.json", protocol), ("tasks.json", task_info)):
        path, text = store.root / name, json.dumps(content, indent=1)
        if not path.is_file() or path.read_text() != text:
            atomic_write_text(path, text)
            changed = True
    unused = [(path, reason, "decode") for path, reason in dataset.skipped] + \
        [(path, reason, "folder walk") for path, reason in dataset.ignored]
    if unused:
        frame = pd.DataFrame(unused, columns=["path", "reason", "stage"])
        atomic_write_text(store.root / "skipped_files.csv", frame.to_csv(index=False))
    else:  # a list left by an earlier run would describe other data
        (store.root / "skipped_files.csv").unlink(missing_ok=True)
    return changed


def dataset_root(paths, results_folder: Path) -> str | None:
    """Where the images of predictions.parquet's relative paths live, relative to the
    results folder (report galleries read the crops from there); a generated cohort in
    the decode cache is '<cache>/...', resolved against the reader's cache."""
    absolute = [str(p) for p in paths if os.path.isabs(str(p))]
    if not absolute:
        return None
    root = Path(os.path.commonpath([os.path.dirname(p) for p in absolute]))
    from karyobench.data.loading import default_cache_dir

    cache = default_cache_dir().resolve()
    if root.is_relative_to(cache):
        return "<cache>/" + root.relative_to(cache).as_posix()
    return os.path.relpath(root, Path(results_folder).resolve())


def _write_report(root: Path) -> None:
    try:
        from karyobench.report import write_report
    except ImportError:
        return
    write_report(root)
