"""The results folder: atomic files, one cached file pair per finished fold, a lock."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from karyobench.atomic import write_bytes as atomic_write_bytes  # noqa: F401 (re-export)
from karyobench.atomic import write_parquet as atomic_write_parquet
from karyobench.atomic import write_text as atomic_write_text
from karyobench.data.dataset import portable_paths
from karyobench.errors import KaryobenchError
from karyobench.evaluation.fold import FoldJob, FoldResult
from karyobench.evaluation.metrics import fold_metrics
from karyobench.results_schema import (CELL, FOLDS, JOBS_DIR, PREDICTION, PREDICTIONS,
                                       PROBABILITY_PREFIX, PROTOCOL, SEED_COLUMN,
                                       probability_column, probability_columns)

IDENT = list(CELL)  # the fold-naming columns (results_schema.CELL)


def seeded(jobs) -> bool:
    """True if these jobs train under several seeds (their tables carry ``train_seed``)."""
    return any(job.train_seed for job in jobs)


def fold_ident(job: FoldJob, with_seed: bool) -> dict:
    """The columns that name one fold in folds/predictions/fold_keys tables."""
    ident = {column: getattr(job, column) for column in CELL}
    if with_seed:
        ident[SEED_COLUMN] = job.train_seed
    return ident


class ResultsStore:
    """``results/<study>/``: ``jobs/`` holds each finished fold under its job key."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.jobs_dir = self.root / JOBS_DIR

    def prepare(self) -> None:
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise KaryobenchError(f"results folder '{self.root}' is not writable "
                                  f"({err.strerror}); choose another with --out.") from None

    @contextmanager
    def lock(self):
        """One writer per results folder; a second run gets a clear refusal.

        On the way out the lock file is removed (while still held, so no later run can
        lock the removed file), and a ``jobs/`` or results folder this run created but
        never filled is removed too: a failed run leaves the folder as it found it.
        """
        created = [d for d in (self.jobs_dir, self.root, *self.root.absolute().parents)
                   if not d.exists()]
        self.prepare()
        path = self.root / ".lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not path.exists() or os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                raise BlockingIOError  # its holder removed it as we opened it: finishing
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise KaryobenchError(f"results folder '{self.root}' is in use by {owner}; wait "
                                  "for it to finish or pass a different --out.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"karyobench run (pid {os.getpid()})")
        handle.flush()
        try:
            yield self
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            for folder in (self.jobs_dir, *created):  # innermost first
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def check_owner(self, study: str, force: bool = False) -> None:
        """Refuse to write study ``study`` over the results of another study (the folder's
        ``protocol.json`` names its study) unless ``force``."""
        try:
            owner = json.loads((self.root / PROTOCOL).read_text()).get("study")
        except (OSError, ValueError, AttributeError):
            return
        if owner and owner != study and not force:
            raise KaryobenchError(
                f"results folder '{self.root}' holds the results of study '{owner}', not "
                f"'{study}'; choose another --out, or pass --force to replace them.")

    def has(self, job: FoldJob) -> bool:
        return (self.jobs_dir / f"{job.key}.json").is_file()

    def save(self, result: FoldResult, paths: np.ndarray, groups: np.ndarray | None,
             labels: np.ndarray) -> None:
        """Persist one finished fold: predictions first, then the metrics that mark it done."""
        job = result.job
        frame = pd.DataFrame(dict(zip(PREDICTION, (  # sample, path, group, y_true, y_pred
            job.test.astype(np.int64), paths[job.test],
            groups[job.test] if groups is not None else None, labels[job.test],
            result.y_pred))))
        for column, label in enumerate(job.classes):
            frame[probability_column(label)] = result.proba[:, column]
        atomic_write_parquet(self.jobs_dir / f"{job.key}.parquet", frame)
        record = dict(result.metrics, n_train=int(len(job.train)), n_test=int(len(job.test)),
                      fit_seconds=result.fit_seconds, predict_seconds=result.predict_seconds)
        tuning = result.extra.get("tuning")
        if tuning:
            record.update({f"tuning_{k}": v for k, v in tuning.items()
                           if v is None or isinstance(v, (int, float, str))})
            record["tuning_best_params"] = json.dumps(tuning["best_params"])
        atomic_write_text(self.jobs_dir / f"{job.key}.json", json.dumps(record, indent=1))

    def load(self, job: FoldJob) -> tuple[dict, pd.DataFrame]:
        return self.load_key(job.key)

    def load_key(self, key: str) -> tuple[dict, pd.DataFrame]:
        """A finished fold's record and predictions by job key."""
        record = json.loads((self.jobs_dir / f"{key}.json").read_text())
        return record, pd.read_parquet(self.jobs_dir / f"{key}.parquet")

    def assemble(self, jobs: list[FoldJob]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``folds.parquet`` and ``predictions.parquet`` from exactly these jobs."""
        fold_rows, prediction_frames = [], []
        with_seed = seeded(jobs)
        for job in jobs:
            record, frame = self.load(job)
            # Metrics are a function of the saved predictions: recompute them so a fixed or
            # extended metric applies to reused folds too.
            proba = frame[probability_columns(job.classes)].to_numpy(dtype=float)
            metrics = fold_metrics(frame["y_true"].to_numpy(dtype=str),
                                   frame["y_pred"].to_numpy(dtype=str), proba,
                                   list(job.classes))
            if record.pop("restored", False):
                # recovered from committed, rounded probabilities: keep the metrics the
                # full-precision run computed, add only metrics that did not exist then
                metrics = {k: v for k, v in metrics.items() if k not in record}
            record.update(metrics)
            ident = fold_ident(job, with_seed)
            fold_rows.append({**ident, **record})
            prediction_frames.append(frame.assign(**ident))
        folds = pd.DataFrame(fold_rows)
        predictions = pd.concat(prediction_frames, ignore_index=True)
        ident_cols = IDENT + ([SEED_COLUMN] if with_seed else [])
        lead = ident_cols + list(PREDICTION)
        predictions = predictions[lead + [c for c in predictions if c not in lead]]
        predictions["path"] = portable_paths(predictions["path"].to_numpy())
        # Committed results stay small: probabilities to 1e-6 as float32 (fold metrics above
        # were computed from the full-precision per-fold files).
        rounded = [c for c in predictions if c.startswith(PROBABILITY_PREFIX)]
        predictions[rounded] = predictions[rounded].round(6).astype("float32")
        atomic_write_parquet(self.root / FOLDS, folds)
        atomic_write_parquet(self.root / PREDICTIONS, predictions)
        return folds, predictions
