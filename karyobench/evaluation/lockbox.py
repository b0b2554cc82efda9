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
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from karyobench.atomic import write_text
from karyobench.data.dataset import portable_paths
from karyobench.errors import ConfigError, KaryobenchError
from karyobench.report.openings import read_openings
from karyobench.results_schema import OPENINGS

DEFAULT_REGISTRY = Path("lockboxes")
#: groups are dealt into this many label-stratified folds (fewer with fewer groups); the
#: lockbox is the first round(fraction x folds) of them, so fraction is met to 1/20
GROUP_FOLDS = 20


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
                 seed: int, keys: np.ndarray | None = None, fingerprint: str = "",
                 ) -> np.ndarray:
    """Rows of the lockbox: label-stratified whole groups, about ``fraction`` of them
    (images stratified when the data has no groups).

    ``keys`` (each row's path relative to the dataset root) put the rows in a canonical
    order first and ``fingerprint`` seeds the draw with ``seed``, so the lockbox depends
    on the data's content and the two settings only, not on the order of the rows.
    Groups are dealt by scikit-learn's ``StratifiedGroupKFold`` into up to 20 folds and
    the first ``round(fraction x folds)`` (at most half) are held out.
    """
    labels = np.asarray(labels, dtype=str)
    keys = np.arange(len(labels)).astype(str) if keys is None else np.asarray(keys, str)
    state = int.from_bytes(hashlib.sha256(f"{fingerprint}\0{seed}\0{fraction!r}".encode())
                           .digest()[:4], "big")
    if groups is None:
        order = np.lexsort((keys, labels))
        try:
            _, held = train_test_split(order, test_size=fraction, stratify=labels[order],
                                       random_state=state)
        except ValueError as err:
            raise ConfigError(f"dataset.lockbox: cannot set aside a label-stratified "
                              f"{fraction:g} of the {len(labels)} images ({err}).") from None
        return np.sort(held)
    groups = np.asarray(groups, dtype=str)
    order = np.lexsort((keys, groups))
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ConfigError(f"dataset.lockbox: the data has {n_groups} group(s); a lockbox "
                          "of whole groups needs at least 2.")
    n_folds = min(GROUP_FOLDS, n_groups)
    n_held = max(1, min(int(fraction * n_folds + 0.5), n_folds // 2))
    splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=state)
    with warnings.catch_warnings():  # "least populated class has fewer members than folds"
        warnings.simplefilter("ignore", UserWarning)
        parts = [test for _, test in splitter.split(np.zeros(len(order)), labels[order],
                                                    groups[order])]
    return np.sort(order[np.concatenate(parts[:n_held])])


def study_lockbox(study, dataset, group_column: str | None) -> np.ndarray:
    """The rows ``study`` must never train or score on (empty without a lockbox)."""
    config = study.dataset.lockbox
    if config is None:
        return np.array([], dtype=np.int64)
    return draw(dataset, group_column, config.fraction, config.seed)


def draw(dataset, group_column: str | None, fraction: float, seed: int) -> np.ndarray:
    """The lockbox rows of ``dataset``: the one draw that both a study's own lockbox and
    a registered lockbox met as another study's external set use."""
    groups = dataset.groups.get(group_column) if group_column else None
    return lockbox_rows(dataset.labels, groups, fraction, seed,
                        keys=portable_paths(dataset.paths),
                        fingerprint=source_fingerprint(dataset.paths, dataset.labels))


def held_out_digest(dataset, group_column: str | None, rows: np.ndarray) -> str:
    """Hash of the held-out group ids (image paths without groups), independent of the
    order of the rows: what the registry compares."""
    ids = (dataset.groups[group_column][rows] if group_column
           else portable_paths(dataset.paths)[rows])
    return hashlib.sha256("\n".join(sorted(set(map(str, ids)))).encode()).hexdigest()[:16]


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
              "held_out_digest": held_out_digest(dataset, group_column, rows)}
    if existing is not None:
        settings = ("fraction", "seed", "group_column")
        if any(existing.get(k) != record[k] for k in settings):
            raise ConfigError(
                f"{path}: this dataset already has a lockbox (fraction "
                f"{existing['fraction']}, seed {existing['seed']}, group column "
                f"{existing['group_column']}); study '{study.name}' declares another. Use "
                "the registered one: a dataset has one lockbox.")
        if {k: existing.get(k) for k in record} != record:
            raise ConfigError(
                f"{path}: the lockbox drawn now for study '{study.name}' is not the "
                "registered one (same settings; a changed scikit-learn?); refusing to train "
                "on groups that may be held out. Restore the version that drew it.")
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
    return draw(dataset, column, record["fraction"], record["seed"])


def record_opening(folder: Path, entry: dict) -> list[dict]:
    """Append one opening (all of the study's tasks in one entry); return them all."""
    openings = read_openings(folder) + [
        {"opened_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **entry}]
    write_text(Path(folder) / OPENINGS, json.dumps(openings, indent=1))
    return openings


def refuse_second_opening(folder: Path, reopen: bool) -> None:
    openings = read_openings(folder)
    if openings and not reopen:
        first = openings[0]
        raise KaryobenchError(
            f"{Path(folder) / OPENINGS}: the lockbox was opened on "
            f"{first['opened_utc']} (model {first['model']}); a "
            "second opening would let its score steer choices. Pass --reopen to open it "
            "again; the report then states how often it was opened.")

