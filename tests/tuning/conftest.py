"""Tiny datasets and studies for the tuning tests (16 px canvases, a few images)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

os.environ.setdefault("KARYOBENCH_TF_THREADS", "1")


def make_manifest(root: Path, n_groups: int = 6, per_class: int = 2,
                  classes=("1", "2", "3"), seed: int = 0) -> Path:
    """Three 'chromosome' classes as bars of different lengths on black, one patient per
    group; each patient gives ``per_class`` images of every class."""
    rng = np.random.default_rng(seed)
    rows = ["path,label,patient_id"]
    for g in range(n_groups):
        for c, label in enumerate(classes):
            for k in range(per_class):
                img = (rng.random((20, 12)) * 40).astype(np.uint8)
                length = 6 + 5 * c + int(rng.integers(0, 2))
                img[1:1 + length, 4:8] = 200 + int(rng.integers(0, 40))
                rel = f"{label}/p{g}_{k}.png"
                (root / label).mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / rel)
                rows.append(f"{rel},{label},p{g}")
    path = root / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


SVM_TUNING = {
    "n_trials": 4, "inner_folds": 2, "metric": "accuracy", "pruner": "median",
    "startup_trials": 2,
    "space": {"svc__C": {"type": "float", "low": 1.0e-3, "high": 10.0, "log": True}},
}


def write_study(root: Path, manifest: Path, estimators: list[dict], name: str = "tiny",
                folds: int = 2, seed: int = 1) -> Path:
    study = {
        "name": name, "seed": seed,
        "dataset": {"source": "manifest", "path": str(manifest), "group_column": "patient_id",
                    "canvas": {"mode": "native", "size": 16}},
        "tasks": [{"name": "three", "classes": ["1", "2", "3"]}],
        "estimators": estimators,
        "cv": {"split": "group", "folds": folds},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def cache_env(tmp_path_factory, monkeypatch):
    """Keep decoded-image caches out of the user's home."""
    cache = tmp_path_factory.getbasetemp() / "kb_cache"
    monkeypatch.setenv("KARYOBENCH_CACHE", str(cache))
    return cache
