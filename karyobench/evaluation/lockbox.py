"""The lockbox: whole groups of a dataset that no study ever trains or scores on, until
``karyobench lockbox`` opens them once for a declared model.

Cross-validated scores get optimistic when a sequence of studies chooses models on the
same test folds. A lockbox set aside before the first study is the one estimate that no
choice has seen. It is chosen from the dataset's content only (labels and groups,
stratified, seeded), never from a study's name, so every study on the same data with the
same ``dataset.lockbox`` gets the same lockbox. A registry file per dataset (in a
``lockboxes/`` folder committed beside ``results/``) records that the data has one: a
later study on that data that does not declare it is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from karyobench.atomic import write_text
from karyobench.errors import ConfigError, KaryobenchError

DEFAULT_REGISTRY = Path("lockboxes")
OPENINGS_FILE = "openings.json"


def source_fingerprint(paths: np.ndarray, labels: np.ndarray) -> str:
    """Which images a dataset holds, independent of canvas, machine and folder: each
    file's path relative to the dataset's common folder, its size and its label."""
    if not len(paths):
        return hashlib.sha256(b"").hexdigest()[:16]
    root = os.path.commonpath([str(Path(p).parent) for p in paths])
    lines = sorted(f"{os.path.relpath(p, root)}\t{_size(p)}\t{label}"
                   for p, label in zip(paths, labels))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def lockbox_rows(labels: np.ndarray, groups: np.ndarray | None, fraction: float,
                 seed: int) -> np.ndarray:
    """Rows of the lockbox: one stratified fold of whole groups, of about ``fraction``
    of the data (images stratified when the data has no groups)."""
    n_splits = max(2, int(round(1 / fraction)))
    zeros = np.zeros(len(labels))
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
        _, rows = next(splitter.split(zeros, labels, groups))
    else:
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        _, rows = next(splitter.split(zeros, labels))
    return np.sort(rows)


def study_lockbox(study, dataset, group_column: str | None) -> np.ndarray:
    """The rows ``study`` must never train or score on (empty without a lockbox)."""
    config = study.dataset.lockbox
    if config is None:
        return np.array([], dtype=np.int64)
    groups = dataset.groups.get(group_column) if group_column else None
    return lockbox_rows(dataset.labels, groups, config.fraction, config.seed)


def guard(study, dataset, group_column: str | None, registry: Path | None,
          rows: np.ndarray) -> dict | None:
    """Refuse a study that ignores a lockbox its data has; register a new one.

    Returns the registry record of the study's lockbox (None without one)."""
    if registry is None:
        return None
    fingerprint = source_fingerprint(dataset.paths, dataset.labels)
    path = Path(registry) / f"{fingerprint}.json"
    config = study.dataset.lockbox
    existing = json.loads(path.read_text()) if path.is_file() else None
    if config is None:
        if existing is not None:
            raise ConfigError(
                f"{path}: this dataset has a lockbox (fraction {existing['fraction']}, seed "
                f"{existing['seed']}), first declared by study '{existing['declared_by']}'; "
                "add `dataset.lockbox: {fraction: "
                f"{existing['fraction']}, seed: {existing['seed']}}}` to study "
                f"'{study.name}' so it never trains or scores on those groups.")
        return None
    record = {"fraction": config.fraction, "seed": config.seed,
              "group_column": group_column, "n_images": int(len(rows)),
              "n_groups": int(len(np.unique(dataset.groups[group_column][rows])))
              if group_column else None,
              "rows_digest": hashlib.sha256(np.asarray(rows, np.int64).tobytes())
              .hexdigest()[:16]}
    if existing is not None:
        same = {k: existing.get(k) for k in record} == record
        if not same:
            raise ConfigError(
                f"{path}: this dataset already has a lockbox (fraction "
                f"{existing['fraction']}, seed {existing['seed']}, group column "
                f"{existing['group_column']}); study '{study.name}' declares another. Use "
                "the registered one: a dataset has one lockbox.")
        return existing
    record = {**record, "declared_by": study.name, "dataset": dataset.description,
              "source_fingerprint": fingerprint}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=1))
    return record


def registered_rows(registry: Path | None, dataset) -> np.ndarray:
    """Rows of ``dataset`` in a lockbox registered for its data (empty if none): an
    external set is never scored on another study's lockbox either."""
    if registry is None:
        return np.array([], dtype=np.int64)
    path = Path(registry) / f"{source_fingerprint(dataset.paths, dataset.labels)}.json"
    if not path.is_file():
        return np.array([], dtype=np.int64)
    record = json.loads(path.read_text())
    column = record.get("group_column")
    if column and column not in dataset.groups:
        raise ConfigError(f"{path}: the lockbox of this data is drawn by '{column}', which "
                          "this set does not load; keep that column in its manifest.")
    groups = dataset.groups.get(column) if column else None
    return lockbox_rows(dataset.labels, groups, record["fraction"], record["seed"])


def read_openings(folder: Path) -> list[dict]:
    path = Path(folder) / OPENINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def record_opening(folder: Path, entry: dict) -> list[dict]:
    openings = read_openings(folder) + [
        {"opened_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **entry}]
    write_text(Path(folder) / OPENINGS_FILE, json.dumps(openings, indent=1))
    return openings


def refuse_second_opening(folder: Path, reopen: bool) -> None:
    openings = read_openings(folder)
    if openings and not reopen:
        first = openings[0]
        raise KaryobenchError(
            f"{Path(folder) / OPENINGS_FILE}: the lockbox was opened on "
            f"{first['opened_utc']} ({first['model']}: accuracy {first['accuracy']:.4f}); a "
            "second opening would let its score steer choices. Pass --reopen to open it "
            "again; the report then states how often it was opened.")
