"""A synthetic results folder in the runner's format (the runner is not needed to test reports).

Task "normal24": 10 karyotypes of 46 chromosomes (5 XX, 5 XY), so karyotype decoding
applies. Task "pair5": 5 vs del(5)(p14), 15 groups of 4 images. Three estimators of
different quality, 5 folds, splits "image" and "group".
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

NORMAL24 = [str(i) for i in range(1, 23)] + ["X", "Y"]
PAIR5 = ["5", "del(5)(p14)"]
ESTIMATOR_QUALITY = {"svm_linear": 1.2, "dcnn": 2.2, "rf_features": 0.6}
N_FOLDS = 5


def _quiet(metric, *args):
    with warnings.catch_warnings():  # small folds miss classes; expected here
        warnings.simplefilter("ignore")
        return metric(*args)


def _dataset(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    normal_rows = []
    for k in range(10):
        sex = ["X", "X"] if k % 2 == 0 else ["X", "Y"]
        labels = [c for c in NORMAL24[:22] for _ in range(2)] + sex
        normal_rows += [{"y_true": label, "group": f"K{k:02d}"} for label in labels]
    pair_rows = [{"y_true": PAIR5[int(g % 3 == 0)], "group": f"P{g:02d}"} for g in range(15) for _ in range(4)]
    frames = {"normal24": pd.DataFrame(normal_rows), "pair5": pd.DataFrame(pair_rows)}
    offset = 0
    for frame in frames.values():
        frame["sample"] = np.arange(offset, offset + len(frame))
        frame["path"] = [f"img/{s:05d}.bmp" for s in frame["sample"]]
        offset += len(frame)
    return frames


def _folds(frame: pd.DataFrame, split: str, rng: np.random.Generator) -> np.ndarray:
    if split == "group":
        splitter = StratifiedGroupKFold(N_FOLDS, shuffle=True, random_state=int(rng.integers(1000)))
        parts = splitter.split(frame, frame["y_true"], frame["group"])
    else:
        splitter = StratifiedKFold(N_FOLDS, shuffle=True, random_state=int(rng.integers(1000)))
        parts = splitter.split(frame, frame["y_true"])
    fold = np.empty(len(frame), dtype=int)
    for k, (_, test) in enumerate(parts):
        fold[test] = k
    return fold


def write_synthetic_results(folder: Path, splits=("image", "group"), seed: int = 7, n_repeats: int = 1) -> Path:
    """Write protocol.json, tasks.json, folds.parquet, predictions.parquet, config, environment."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    datasets = _dataset(rng)
    tasks = {"normal24": NORMAL24, "pair5": PAIR5}
    all_classes = list(dict.fromkeys(NORMAL24 + PAIR5))
    prediction_frames, fold_rows = [], []
    for split, repeat, (task, classes) in ((s, r, t) for s in splits for r in range(n_repeats) for t in tasks.items()):
        data = datasets[task]
        fold = _folds(data, split, rng)
        truth = data["y_true"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        group_effect = data["group"].map({g: rng.normal(0, 0.5) for g in data["group"].unique()}).to_numpy()
        for estimator, quality in ESTIMATOR_QUALITY.items():
            boost = quality + (0.3 if split == "image" else 0.0)  # leakage flatters
            logits = rng.normal(0, 1, (len(data), len(classes)))
            logits[np.arange(len(data)), truth] += boost + group_effect
            proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            predicted = np.asarray(classes)[proba.argmax(axis=1)]
            frame = data.assign(split=split, task=task, estimator=estimator, repeat=repeat, fold=fold, y_pred=predicted)
            for c in all_classes:
                frame[f"p_{c}"] = proba[:, classes.index(c)] if c in classes else np.nan
            prediction_frames.append(frame)
            for k in range(N_FOLDS):
                test = fold == k
                y_true, y_pred = data["y_true"].to_numpy()[test], predicted[test]
                if len(classes) == 2:
                    auc = roc_auc_score(y_true == classes[1], proba[test, 1])
                else:
                    auc = float("nan")
                fold_rows.append(
                    {
                        "split": split,
                        "task": task,
                        "estimator": estimator,
                        "repeat": repeat,
                        "fold": k,
                        "n_train": int((~test).sum()),
                        "n_test": int(test.sum()),
                        "fit_seconds": float(rng.uniform(0.5, 2.0)),
                        "predict_seconds": 0.01,
                        "accuracy": accuracy_score(y_true, y_pred),
                        "balanced_accuracy": _quiet(balanced_accuracy_score, y_true, y_pred),
                        "macro_f1": f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
                        "roc_auc": auc,
                    }
                )
    predictions = pd.concat(prediction_frames, ignore_index=True)
    columns = ["split", "task", "estimator", "repeat", "fold", "sample", "path", "group", "y_true", "y_pred"]
    predictions = predictions[columns + [f"p_{c}" for c in all_classes]]
    predictions.to_parquet(folder / "predictions.parquet", index=False)
    pd.DataFrame(fold_rows).to_parquet(folder / "folds.parquet", index=False)
    protocol = {
        "study": folder.name,
        "seed": 1,
        "n_folds": N_FOLDS,
        "n_repeats": n_repeats,
        "splits": list(splits),
        "group_column": "karyotype_id",
        "n_images": 520,
        "n_groups": 25,
        "dataset": "synthetic test data",
    }
    (folder / "protocol.json").write_text(json.dumps(protocol))
    (folder / "tasks.json").write_text(
        json.dumps({t: {"classes": c, "n_images": len(datasets[t])} for t, c in tasks.items()})
    )
    (folder / "config.yaml").write_text(yaml.safe_dump({"name": folder.name, "estimators": list(ESTIMATOR_QUALITY)}))
    (folder / "environment.json").write_text(
        json.dumps({"python": "3.11", "numpy": np.__version__, "wall_seconds": 12.5})
    )
    return folder


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """Read-only synthetic results folder (image + group splits)."""
    return write_synthetic_results(tmp_path_factory.mktemp("results") / "synthetic_study")


@pytest.fixture
def make_results(tmp_path):
    """Factory for fresh (writable) synthetic results folders."""

    def make(name: str = "study", **kwargs) -> Path:
        return write_synthetic_results(tmp_path / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A synthetic results folder after write_report (built once, shared by read-only tests)."""
    from karyobench.report import write_report

    folder = write_synthetic_results(tmp_path_factory.mktemp("report") / "synthetic_study")
    return folder, write_report(folder, n_boot=300)
