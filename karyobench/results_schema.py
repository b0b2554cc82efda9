"""The results folder's format: its file names and the columns of its tables.

``karyobench run`` / ``tune`` write a results folder, ``--reuse`` and ``report`` read
committed ones, possibly written by an older version; every writer and reader takes the
names from here, so the format is stated once and a change to it is one diff.

A fold is named by :data:`CELL` (plus :data:`SEED_COLUMN` in studies trained under several
seeds, ``cv.train_seeds > 1``; a folder without that column is training seed 0).
"""

from __future__ import annotations

# ---------------------------------------------------------------- files ---------------
FOLDS = "folds.parquet"  # one row per fold: CELL, RECORD, METRICS (+ tuning_* columns)
PREDICTIONS = "predictions.parquet"  # one row per out-of-fold prediction
FOLD_KEYS = "fold_keys.csv"  # CELL (+ SEED_COLUMN), KEY: which job produced each fold
PROTOCOL = "protocol.json"  # splits, seeds, dataset, lockbox, ensembles, primary
TASKS = "tasks.json"  # task -> {classes, n_images, ...}
CONFIG = "config.yaml"  # the study as run, paths relative to the folder
ENVIRONMENT = "environment.json"  # versions, timings, previous runs
SKIPPED = "skipped_files.csv"  # images not used: path, reason, stage
REPORT = "report.html"
EXTERNAL_FOLDS = "external_folds.parquet"  # fold models scored on external sets
EXTERNAL_PREDICTIONS = "external_predictions.parquet"
JOBS_DIR = "jobs"  # per-fold cache, <key>.parquet + <key>.json; never committed
LOCKBOX_DIR = "lockbox"  # written by `karyobench lockbox` only
LOCKBOX_PREDICTIONS = "predictions.parquet"  # in lockbox/: the primary's lockbox scores
OPENINGS = "openings.json"  # in lockbox/: every opening (time, commit, model, scores)

#: what a folder needs for a report
REQUIRED = (PROTOCOL, TASKS, FOLDS, PREDICTIONS)

# -------------------------------------------------------------- columns ---------------
CELL = ("split", "task", "estimator", "repeat", "fold")
SEED_COLUMN = "train_seed"
KEY = "key"
#: a fold's record besides its metrics
RECORD = ("n_train", "n_test", "fit_seconds", "predict_seconds")
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc")
TIMINGS = ("fit_seconds", "predict_seconds")
#: one prediction, after CELL; then one probability column per class
PREDICTION = ("sample", "path", "group", "y_true", "y_pred")
PROBABILITY_PREFIX = "p_"

#: columns a reader requires
FOLD_COLUMNS = CELL + RECORD + METRICS
PREDICTION_COLUMNS = CELL + PREDICTION


def probability_column(label) -> str:
    """``p_<class>``: the predicted probability of one class."""
    return f"{PROBABILITY_PREFIX}{label}"


def probability_columns(classes) -> list[str]:
    return [probability_column(c) for c in classes]
