"""Cross-validation splits: grouped by default, the seed's image-level split on request."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from karyobench.errors import ConfigError
from karyobench.study import shuffle_seed


@dataclass(frozen=True)
class Split:
    """One train/test partition of a task's images (indices into the task's rows)."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def resolve_kind(kind: str, has_groups: bool) -> str:
    """``auto`` means grouped whenever groups are known (the honest default)."""
    if kind == "auto":
        return "group" if has_groups else "stratified"
    if kind == "group" and not has_groups:
        raise ConfigError("cv.split 'group' needs a group column (dataset.group_column); "
                          "the dataset has none. Use 'stratified' or add groups.")
    return kind


def describe(kind: str, group_column: str | None, folds: int, repeats: int, seed: int,
             train_seeds: int = 1) -> str:
    """The protocol sentence every table carries."""
    what = {
        "group": f"StratifiedGroupKFold by {group_column} (no {group_column} in both "
                 "train and test)",
        "stratified": "StratifiedKFold (no groups known)",
        "image": "image-level StratifiedKFold, groups ignored (the seed's leaky protocol)",
    }["group" if kind.startswith("group") else kind]
    seeds = f", {train_seeds} training seeds per fold" if train_seeds > 1 else ""
    return f"{folds}-fold {what}, {repeats} repeat(s), seed {seed}{seeds}"


def make_splits(kind: str, y: np.ndarray, groups: np.ndarray | None, folds: int,
                repeats: int, seed: int, task: str = "") -> list[Split]:
    """All (repeat, fold) partitions; refuses protocols the data cannot support."""
    _check_feasible(kind, y, groups, folds, task)
    splits = []
    for repeat in range(repeats):
        if kind.startswith("group"):
            splitter = StratifiedGroupKFold(folds, shuffle=True,
                                            random_state=shuffle_seed(seed, repeat))
            parts = splitter.split(np.zeros(len(y)), y, groups)
        else:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=shuffle_seed(seed, repeat))
            parts = splitter.split(np.zeros(len(y)), y)
        for fold, (train, test) in enumerate(parts):
            splits.append(Split(repeat, fold, np.sort(train), np.sort(test)))
    if kind.startswith("group"):
        assert_no_group_leak(splits, groups)
    return splits


def assert_no_group_leak(splits: list[Split], groups: np.ndarray) -> None:
    """The leakage guard: no group may sit on both sides of any split."""
    for split in splits:
        shared = set(groups[split.train]) & set(groups[split.test])
        if shared:
            raise AssertionError(f"repeat {split.repeat} fold {split.fold}: group(s) "
                                 f"{sorted(map(str, shared))[:5]} in both train and test")


def _check_feasible(kind, y, groups, folds, task):
    classes, counts = np.unique(y, return_counts=True)
    small = [(c, n) for c, n in zip(classes, counts) if n < folds]
    if small:
        listed = ", ".join(f"'{c}' ({n})" for c, n in small[:5])
        raise ConfigError(f"task '{task}': class(es) {listed} have fewer images than "
                          f"cv.folds = {folds}; lower cv.folds or drop the class.")
    if not kind.startswith("group"):
        return
    n_groups = len(np.unique(groups))
    if n_groups < folds:
        raise ConfigError(f"task '{task}': only {n_groups} groups for cv.folds = {folds} "
                          "in a grouped split; lower cv.folds.")
    for label in classes:
        holders = np.unique(groups[y == label])
        if len(holders) < 2:
            raise ConfigError(
                f"task '{task}': every image of class '{label}' belongs to one group "
                f"('{holders[0]}'), so a grouped split can never both train and test it. "
                "Add images from other groups, drop the class, or use cv.split: image "
                "(leaky).")
