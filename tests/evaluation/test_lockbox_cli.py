"""The lockbox through the CLI: the same groups for the same data whatever its order,
folder, canvas or study; the declared fraction; one record per opening with per-class
recall; strict settings; tune's registry option.

Real CLI runs (subprocesses) on a tiny manifest of 10 patients x 3 classes x 2 images of
16 px, with the fast pixel baselines; each test works in its own folder, so its lockbox
registry (``lockboxes/`` by default, relative to the working folder) starts empty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

CLASSES = ("1", "2", "3")
N_PATIENTS = 10
PER_CLASS = 2


def make_images(root: Path, rows_seed: int = 0) -> Path:
    """Bars whose length codes the class, one patient per group; ``labels.csv``."""
    rng = np.random.default_rng(0)
    rows = []
    for g in range(N_PATIENTS):
        for c, label in enumerate(CLASSES):
            for k in range(PER_CLASS):
                image = (rng.random((20, 12)) * 40).astype(np.uint8)
                image[1:7 + 5 * c, 4:8] = 200 + int(rng.integers(0, 40))
                path = root / label / f"p{g}_{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(path)
                rows.append({"path": f"{label}/p{g}_{k}.png", "label": label,
                             "patient_id": f"p{g}"})
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=rows_seed)
    table.to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("lockbox_data"))


SVM_TUNING = {"n_trials": 2, "inner_folds": 2, "metric": "accuracy", "pruner": "none",
              "space": {"svc__C": {"type": "float", "low": 1.0e-3, "high": 10.0,
                                   "log": True}}}


def study_dict(manifest: Path, name: str = "alpha", lockbox=(0.2, 7), size: int = 16,
               **extra) -> dict:
    dataset = {"source": "manifest", "path": str(manifest), "group_column": "patient_id",
               "canvas": {"mode": "native", "size": size}}
    if lockbox is not None:
        dataset["lockbox"] = {"fraction": lockbox[0], "seed": lockbox[1]}
    study = {"name": name, "seed": 1, "dataset": dataset,
             "tasks": [{"name": "three", "classes": list(CLASSES)}],
             "estimators": [{"kind": "svm_linear_pixels"}, {"kind": "logreg_pixels"}],
             "primary": "svm_linear_pixels",
             "cv": {"split": "group", "folds": 2}}
    study.update(extra)
    return study


def write(folder: Path, study: dict) -> Path:
    path = folder / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def karyobench(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "karyobench.cli", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def opened_groups(results: Path) -> set[str]:
    """The lockbox's groups, as `karyobench lockbox` scored them."""
    return set(pd.read_parquet(results / "lockbox" / "predictions.parquet")["group"])


def all_groups(manifest: Path) -> set[str]:
    return set(pd.read_csv(manifest, dtype=str)["patient_id"])


def test_same_data_same_settings_same_lockbox_whatever_the_study(manifest, tmp_path):
    """Another name, canvas, primary (an ensemble), folder and row order: the same
    groups are held out, and one registry entry serves both studies."""
    reordered = make_images(tmp_path / "elsewhere", rows_seed=5)
    first = study_dict(manifest, name="alpha")
    second = study_dict(reordered, name="beta", size=20, primary="vote",
                        ensembles=[{"name": "vote",
                                    "members": ["svm_linear_pixels", "logreg_pixels"]}])
    for study in (first, second):
        done = karyobench("run", write(tmp_path, study), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        opened = karyobench("lockbox", tmp_path / f"{study['name']}.yaml", cwd=tmp_path)
        assert opened.returncode == 0, opened.stderr
    alpha, beta = tmp_path / "results" / "alpha", tmp_path / "results" / "beta"
    assert opened_groups(alpha) == opened_groups(beta) and len(opened_groups(alpha)) == 2
    assert len(list((tmp_path / "lockboxes").glob("*.json"))) == 1
    for results in (alpha, beta):
        scored = set(pd.read_parquet(results / "predictions.parquet")["group"])
        assert not scored & opened_groups(alpha)
        assert scored | opened_groups(alpha) == all_groups(manifest)


def test_the_declared_fraction_of_groups_is_held_out(manifest, tmp_path):
    from karyobench.evaluation import lockbox
    from karyobench.evaluation.runner import load_study_dataset
    from karyobench.study import parse_study

    held = {}
    for fraction in (0.1, 0.2, 0.3, 0.4, 0.5):
        study = parse_study(study_dict(manifest, lockbox=(fraction, 7)))
        dataset = load_study_dataset(study, tmp_path / "cache")
        rows = lockbox.study_lockbox(study, dataset, "patient_id")
        patients = dataset.groups["patient_id"]
        held[fraction] = len(set(patients[rows]))
        assert not set(np.delete(patients, rows)) & set(patients[rows])  # whole groups
    assert held == {0.1: 1, 0.2: 2, 0.3: 3, 0.4: 4, 0.5: 5}


def test_one_opening_is_one_record_with_every_task(manifest, tmp_path):
    study = study_dict(manifest, tasks=[{"name": "three", "classes": list(CLASSES)},
                                        {"name": "two", "classes": ["1", "3"]}])
    path = write(tmp_path, study)
    assert karyobench("run", path, cwd=tmp_path).returncode == 0
    opened = karyobench("lockbox", path, cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr
    results = tmp_path / "results" / "alpha"
    openings = json.loads((results / "lockbox" / "openings.json").read_text())
    assert len(openings) == 1 and set(openings[0]["tasks"]) == {"three", "two"}
    three = openings[0]["tasks"]["three"]
    truth = pd.read_parquet(results / "lockbox" / "predictions.parquet")
    truth = truth[truth["task"] == "three"]
    for label in CLASSES:
        rows = truth[truth["y_true"] == label]
        assert three["recall"][label] == pytest.approx((rows["y_pred"] == label).mean())
    low, high = three["macro_f1_ci"]
    assert low <= three["macro_f1"] <= high
    summary = (results / "summary.md").read_text()
    assert "opened once" in summary and "two: accuracy" in summary
    line = one_line_error(karyobench("lockbox", path, cwd=tmp_path))
    assert "--reopen" in line


def test_tune_takes_the_registry_folder_and_refuses_an_undeclared_study(manifest, tmp_path):
    registry = tmp_path / "registry"
    declared = write(tmp_path, study_dict(manifest))
    done = karyobench("run", declared, "--lockboxes", registry, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tuned = write(tmp_path, study_dict(
        manifest, name="renamed_tune", lockbox=None,
        estimators=[{"kind": "svm_linear_pixels", "tuning": SVM_TUNING}],
        primary="svm_linear_pixels"))
    entry = next(registry.glob("*.json"))
    line = one_line_error(karyobench("tune", tuned, "--lockboxes", registry, cwd=tmp_path))
    assert entry.name in line and "dataset.lockbox" in line
    # the default registry (./lockboxes) holds nothing: there the same study may tune
    done = karyobench("tune", tuned, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("lockbox, expected", [
    ({"fraction": 0.7, "seed": 1}, "'dataset.lockbox.fraction' = 0.7"),
    ({"fraction": "0.2", "seed": 1}, "'dataset.lockbox.fraction' = '0.2'"),
    ({"fraction": 0.2, "seed": True}, "'dataset.lockbox.seed' = True"),
    ({"fraction": 0.2}, "missing required key 'dataset.lockbox.seed'"),
])
def test_bad_lockbox_values_give_one_line(manifest, tmp_path, lockbox, expected):
    study = study_dict(manifest)
    study["dataset"]["lockbox"] = lockbox
    line = one_line_error(karyobench("run", write(tmp_path, study), cwd=tmp_path))
    assert expected in line
    assert not (tmp_path / "lockboxes").exists()
