"""How far a running fold is: one small file per running fold job, ``<key>.progress``.

A Keras fold trains for minutes; the fold runs in a worker process (loky, dask), so the
command's progress bar cannot see its epochs. The fold core names the file and the fold
(:func:`started`), the Keras training loop rewrites it after every epoch
(:func:`epoch_done`), the fold core removes it when the fold ends (:func:`finished`), and
the CLI reads every such file of the results folder's ``jobs/`` at each refresh
(:func:`running`). Progress is best-effort: a file that cannot be written (a dask worker
on another machine) is skipped, never an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from karyobench.atomic import write_text
from karyobench.errors import KaryobenchError

SUFFIX = ".progress"


def started(path: Path, label: str) -> None:
    """A fold called ``label`` (e.g. ``normal24 · dcnn_seed · fold 2``) starts training."""
    _write(path, {"label": label})


def epoch_done(path: Path, epoch: int, epochs: int) -> None:
    """``epoch`` of ``epochs`` finished (1-based), keeping the fold's label."""
    record = _read(path) or {}
    _write(path, {**record, "epoch": int(epoch), "epochs": int(epochs)})


def finished(path: Path) -> None:
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def clear(folder: Path) -> None:
    """Remove files left by folds of an interrupted run (before a run starts)."""
    for path in Path(folder).glob(f"*{SUFFIX}"):
        finished(path)


def running(folder: Path | None) -> list[str]:
    """One line per running fold: its label and, for epoch-wise training, the epoch."""
    if folder is None or not Path(folder).is_dir():
        return []
    lines = []
    for path in sorted(Path(folder).glob(f"*{SUFFIX}")):
        record = _read(path)
        if not record or "label" not in record:
            continue
        epochs = (f" epoch {record['epoch']}/{record['epochs']}"
                  if "epoch" in record else "")
        lines.append(f"{record['label']}{epochs}")
    return lines


def _read(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, record: dict) -> None:
    try:
        write_text(path, json.dumps(record))
    except KaryobenchError:  # progress is best-effort, never a fold's failure
        pass
