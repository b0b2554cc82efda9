"""Which classes a task keeps and how dataset labels map onto them."""

from __future__ import annotations

import numpy as np

from karyobench.data.dataset import canonical_label
from karyobench.errors import ConfigError
from karyobench.study import CLASS_PRESETS, TaskConfig


def task_classes(task: TaskConfig, dataset_labels: np.ndarray) -> list[str]:
    """The task's ordered class list (``all``: every label present, sorted naturally)."""
    if task.classes == "all":
        return sorted(set(relabel(task, dataset_labels)), key=_natural_key)
    names = CLASS_PRESETS[task.classes] if isinstance(task.classes, str) else task.classes
    return [canonical_label(c) for c in names]


def select(task: TaskConfig, dataset_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the images in the task and their task labels."""
    labels = relabel(task, dataset_labels)
    classes = task_classes(task, dataset_labels)
    present = set(labels.tolist())
    missing = [c for c in classes if c not in present]
    if missing:
        raise ConfigError(
            f"task '{task.name}': class(es) {', '.join(missing)} have no images in the "
            f"dataset; labels present: {', '.join(sorted(present, key=_natural_key))}.")
    keep = np.flatnonzero(np.isin(labels, classes))
    return keep, labels[keep]


def relabel(task: TaskConfig, labels: np.ndarray) -> np.ndarray:
    """Dataset labels mapped through the task's ``relabel`` table (canonical form)."""
    mapping = {canonical_label(k): canonical_label(v) for k, v in task.relabel.items()}
    return np.array([mapping.get(label, label) for label in labels], dtype=object).astype(str)


def _natural_key(label: str):
    order = {"X": 23, "Y": 24}
    if label.isdigit():
        return (0, int(label), "")
    if label in order:
        return (0, order[label], "")
    return (1, 0, label)
