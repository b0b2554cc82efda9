"""Finished folds recovered from committed results (``karyobench run --reuse DIR``).

``jobs/`` (the per-fold cache) is not committed, but ``folds.parquet`` and
``predictions.parquet`` are, and together they hold everything a cached fold holds. A
results folder names each fold's job key in ``fold_keys.csv``; a fold whose key a run
wants is written back into that run's ``jobs/``, so a fresh clone need not retrain it. Keys hash the data, estimator, params,
rows and seed, so only a fold that the run would compute identically is reused.
Committed probabilities are rounded to 1e-6 (float32); restored folds carry that rounding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from karyobench.errors import KaryobenchError
from karyobench.evaluation.fold import FoldJob
from karyobench import results_schema as schema
from karyobench.results_schema import (CONFIG, FOLD_KEYS, FOLDS, KEY, METRICS, PREDICTION,
                                       PREDICTIONS, RECORD, SEED_COLUMN,
                                       probability_columns)

KEYS_FILE = FOLD_KEYS  # the name callers of this module know
CELL = list(schema.CELL)


def write_fold_keys(root: Path, jobs: list[FoldJob]) -> None:
    """``fold_keys.csv``: which job key produced each (split, task, estimator, repeat, fold)."""
    from karyobench.evaluation.store import atomic_write_text

    atomic_write_text(Path(root) / KEYS_FILE, _keys_frame(jobs).to_csv(index=False))


def _keys_frame(jobs: list[FoldJob]) -> pd.DataFrame:
    from karyobench.evaluation.store import fold_ident, seeded

    with_seed = seeded(jobs)
    return pd.DataFrame([{**fold_ident(j, with_seed), KEY: j.key} for j in jobs],
                        columns=CELL + ([SEED_COLUMN] if with_seed else []) + [KEY])


def _with_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """Folders of one training seed have no ``train_seed`` column: it is seed 0."""
    if SEED_COLUMN not in frame.columns:
        frame = frame.assign(**{SEED_COLUMN: 0})
    return frame


def restore_folds(store, jobs: list[FoldJob], sources: list[Path], cache_dir=None
                  ) -> dict[str, int]:
    """Write each missing job found in ``sources`` into ``store``; {source: folds restored}.

    A source without ``fold_keys.csv`` (results from before it existed) gets its keys by
    planning the ``config.yaml`` it holds. Tuned folds are not restored: their Optuna
    records live outside these files.
    """
    for source in map(Path, sources):
        if not (source / FOLDS).is_file():
            raise KaryobenchError(
                f"--reuse '{source}': not a finished results folder (no folds.parquet); "
                "give a results/<study> folder written by 'karyobench run'.")
    wanted = {j.key: j for j in jobs if j.tuning is None and not store.has(j)}
    restored: dict[str, int] = {}
    for source in sources:
        if not wanted:
            break
        source = Path(source)
        keys = _with_seed(_source_keys(source, cache_dir))
        hits = keys[keys[KEY].isin(list(wanted))]
        if hits.empty:
            continue
        cell_columns = CELL + [SEED_COLUMN]
        folds = _with_seed(pd.read_parquet(source / FOLDS)).set_index(cell_columns)
        predictions = _with_seed(pd.read_parquet(source / PREDICTIONS))
        by_cell = dict(list(predictions.groupby(cell_columns, sort=False)))
        count = 0
        for row in hits.itertuples(index=False):
            cell = tuple(getattr(row, c) for c in cell_columns)
            job = wanted.get(row.key)
            if job is None or cell not in by_cell or cell not in folds.index:
                continue
            frame = by_cell[cell].sort_values("sample")
            if not np.array_equal(frame["sample"].to_numpy(), np.sort(job.test)):
                continue  # same key, other rows: never trust it
            _save(store, job, frame, folds.loc[cell])
            del wanted[row.key]
            count += 1
        if count:
            restored[str(source)] = count
    return restored


def _save(store, job: FoldJob, frame: pd.DataFrame, fold_row: pd.Series) -> None:
    from karyobench.evaluation.store import atomic_write_parquet, atomic_write_text

    columns = list(PREDICTION) + probability_columns(job.classes)
    cached = frame[columns].set_index("sample").loc[job.test].reset_index()
    for column in probability_columns(job.classes):
        cached[column] = cached[column].astype(np.float64)
    # the committed metrics came from full-precision probabilities: keep them (store.assemble)
    record = {name: _plain(value) for name, value in fold_row.items()
              if name in RECORD or (name in METRICS and pd.notna(value))}
    for count in ("n_train", "n_test"):  # a row of mixed dtypes comes back as floats
        if count in record:
            record[count] = int(record[count])
    record["restored"] = True
    atomic_write_parquet(store.jobs_dir / f"{job.key}.parquet", cached)
    atomic_write_text(store.jobs_dir / f"{job.key}.json", json.dumps(record, indent=1))


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _source_keys(source: Path, cache_dir) -> pd.DataFrame:
    path = source / FOLD_KEYS
    if path.is_file():
        return pd.read_csv(path, dtype={KEY: str, "task": str, "estimator": str,
                                         "split": str})
    return _planned_keys(source, cache_dir)


def _planned_keys(source: Path, cache_dir) -> pd.DataFrame:
    """Keys of an older results folder, from the study config it recorded."""
    from karyobench.evaluation.ensembles import plan_ensembles
    from karyobench.evaluation.plan import load_study_dataset, plan_jobs
    from karyobench.study import parse_study

    config = source / CONFIG
    try:
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        study = parse_study(raw, source=config)
    except (OSError, yaml.YAMLError, KaryobenchError):
        return _keys_frame([])
    tuned = {e.label for e in study.estimators if e.tuning}
    if tuned:  # their folds are never restored
        kept = [e for e in study.estimators if not e.tuning]
        names = {e.label for e in kept}
        tuned |= {e.name for e in study.ensembles if not set(e.members) <= names}
        study = study.model_copy(update={
            "estimators": kept,
            "ensembles": [e for e in study.ensembles if set(e.members) <= names]})
    dataset = load_study_dataset(study, cache_dir)
    jobs, _, _ = plan_jobs(study, dataset)
    jobs = jobs + plan_ensembles(study, jobs)
    planned = {(j.split, j.task, j.estimator, j.repeat, j.fold) for j in jobs}
    cells = pd.read_parquet(source / FOLDS, columns=CELL)
    cells = cells[~cells["estimator"].isin(tuned)]
    if set(map(tuple, cells.itertuples(index=False))) != planned:
        return _keys_frame([])  # config.yaml is not these folds' study
    return _keys_frame(jobs)
