"""The descriptive files of a results folder: config, protocol, tasks, skipped files.

Written by the run loop only after the folds they describe, so an interrupted run leaves a
folder that describes the results it holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from karyobench.atomic import write_text as atomic_write_text
from karyobench.results_schema import CONFIG, PROTOCOL, SKIPPED, TASKS


def write_metadata(store, study, dataset, protocols, task_info, group_column,
                   external_sets=None, lockbox_rows=None) -> bool:
    """Write config, protocol and task files; True if the protocol or tasks changed.

    The report reads them (a declared ``primary``, ensemble notes), so a change there
    must rebuild it even when no fold was retrained. ``n_images``/``n_groups`` count what
    the CV used: the rows of a lockbox (``lockbox_rows``) are counted apart.
    """
    locked = np.asarray(lockbox_rows if lockbox_rows is not None else [], dtype=np.int64)
    used = np.setdiff1d(np.arange(len(dataset)), locked)
    groups = dataset.groups[group_column] if group_column else None
    config = study.portable_dump(base=store.root)
    atomic_write_text(store.root / CONFIG, yaml.safe_dump(config, sort_keys=False))
    protocol = {
        "study": study.name, "seed": study.seed, "n_folds": study.cv.folds,
        "n_repeats": study.cv.repeats, "splits": list(protocols),
        "descriptions": protocols, "group_column": group_column,
        "n_images": int(len(used)),
        "n_groups": int(len(np.unique(groups[used]))) if group_column else None,
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
            "n_images": int(len(locked)),
            "n_groups": int(len(np.unique(groups[locked]))) if group_column else None,
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
    for name, content in ((PROTOCOL, protocol), (TASKS, task_info)):
        path, text = store.root / name, json.dumps(content, indent=1)
        if not path.is_file() or path.read_text() != text:
            atomic_write_text(path, text)
            changed = True
    unused = [(path, reason, "decode") for path, reason in dataset.skipped] + \
        [(path, reason, "folder walk") for path, reason in dataset.ignored]
    if unused:
        frame = pd.DataFrame(unused, columns=["path", "reason", "stage"])
        atomic_write_text(store.root / SKIPPED, frame.to_csv(index=False))
    else:  # a list left by an earlier run would describe other data
        (store.root / SKIPPED).unlink(missing_ok=True)
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
