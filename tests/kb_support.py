"""Plain test helpers (paths to the shared data, tiny studies, the CLI), importable by
name from any test module; ``conftest.py`` holds only fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BIOIMLAB = SHARED_DATA / "bioimlab_qband"
BIOIMLAB_MANIFEST = BIOIMLAB / "labels.csv"

#: the tiny DCNN every test trains (a few seconds per fit on one core)
TINY_DCNN = {"conv_filters": [4], "dense_units": [8], "padding": "same", "epochs": 1,
             "batch_size": 16}


def write_subset_manifest(table: pd.DataFrame, out_csv: Path, *, karyotypes=None,
                          classes=None, extra_rows: list[dict] | None = None) -> Path:
    """A manifest of a subset of the real images with absolute paths (no copying)."""
    rows = table
    if karyotypes is not None:
        rows = rows[rows["karyotype_id"].isin([str(k) for k in karyotypes])]
    if classes is not None:
        rows = rows[rows["label"].isin(list(classes))]
    rows = rows[["path", "label", "karyotype_id"]].copy()
    rows["path"] = [str(BIOIMLAB / p) for p in rows["path"]]
    if extra_rows:
        rows = pd.concat([rows, pd.DataFrame(extra_rows)], ignore_index=True)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out_csv, index=False)
    return out_csv



def tiny_study(dataset: dict, *, name: str = "tiny", tasks=None, estimators=None,
               cv=None, seed: int = 1, **extra) -> dict:
    """A study dict small enough to run in seconds."""
    study = {
        "name": name,
        "seed": seed,
        "dataset": dataset,
        "tasks": tasks or [{"name": "t", "classes": ["1", "2", "3"]}],
        "estimators": estimators or [{"kind": "svm_linear_pixels"}],
        "cv": cv or {"split": "group", "folds": 3},
    }
    study.update(extra)
    return study



def bioimlab_dataset(**overrides) -> dict:
    dataset = {"source": "manifest", "path": str(BIOIMLAB_MANIFEST),
               "group_column": "karyotype_id", "limit_groups": 6,
               "canvas": {"mode": "native", "size": 24}}
    dataset.update(overrides)
    return dataset



def synthetic_dataset(**overrides) -> dict:
    """A tiny generated cohort (4 patients, one cell each: 8 crops of each of classes 1-3,
    grouped by patient), so tests of the run machinery need no real images."""
    dataset = {"source": "synthetic", "group_column": "patient_id",
               "synthetic": {"normal_patients": 4, "cells_per_patient": 1, "seed": 5,
                             "abnormalities": {}},
               "canvas": {"mode": "native", "size": 24}}
    dataset.update(overrides)
    return dataset



def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "karyobench.cli", *map(str, args)]



def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``karyobench ARGS`` in a fresh process, capturing text output."""
    env = dict(os.environ, KARYOBENCH_TF_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
               COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return subprocess.run(cli_command(*args), capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)



def error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` message of a failed run (asserts the format)."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, f"exit {result.returncode}; output:\n{output}"
    assert "Traceback" not in output, output
    assert not output.startswith("\n"), f"output starts with an empty line:\n{output}"
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 1, f"expected one 'error:' line, got:\n{output}"
    return errors[0]
