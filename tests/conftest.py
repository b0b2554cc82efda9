"""Shared fixtures: where the real BioImLab data lives, tiny study files, the CLI.

The real images sit at ``<repo>/../shared/data/`` and are never copied into the repo;
tests that need them skip when that folder is absent. Every TensorFlow model used in the
tests is tiny (canvas 16-32 px, one conv layer of 4 filters, 1-3 epochs): the machine has
two cores shared with long training runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One TensorFlow thread per test process: set before anything imports TensorFlow.
os.environ.setdefault("KARYOBENCH_TF_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BIOIMLAB = SHARED_DATA / "bioimlab_qband"
BIOIMLAB_MANIFEST = BIOIMLAB / "labels.csv"

#: the tiny DCNN every test trains (a few seconds per fit on one core)
TINY_DCNN = {"conv_filters": [4], "dense_units": [8], "padding": "same", "epochs": 1,
             "batch_size": 16}


def _require_bioimlab() -> None:
    if not BIOIMLAB_MANIFEST.is_file():
        pytest.skip(f"real data not found at {BIOIMLAB} (see shared/data/README.md)")


@pytest.fixture(scope="session")
def bioimlab_dir() -> Path:
    _require_bioimlab()
    return BIOIMLAB


@pytest.fixture(scope="session")
def bioimlab_manifest() -> Path:
    _require_bioimlab()
    return BIOIMLAB_MANIFEST


@pytest.fixture(scope="session")
def bioimlab_table(bioimlab_manifest) -> pd.DataFrame:
    """The real manifest as strings (paths relative to the data folder)."""
    return pd.read_csv(bioimlab_manifest, dtype=str, keep_default_na=False)


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


@pytest.fixture
def subset_manifest(bioimlab_table, tmp_path):
    """``subset_manifest(karyotypes=[1, 2], classes=['01', '02'])`` -> CSV path in tmp."""

    def make(name: str = "subset.csv", **kwargs) -> Path:
        return write_subset_manifest(bioimlab_table, tmp_path / name, **kwargs)

    return make


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


@pytest.fixture
def write_study(tmp_path):
    """``write_study(study_dict_or_text, name='study.yaml')`` -> path of the YAML file."""

    def write(study, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        text = study if isinstance(study, str) else yaml.safe_dump(study, sort_keys=False)
        path.write_text(text)
        return path

    return write


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
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 1, f"expected one 'error:' line, got:\n{output}"
    return errors[0]


@pytest.fixture(scope="session")
def small_bioimlab(bioimlab_table, tmp_path_factory):
    """64 real crops (classes 1, 2, 16, 21 of karyotypes 1-8) on a 16 px native canvas."""
    from karyobench.data import load_dataset

    folder = tmp_path_factory.mktemp("small_bioimlab")
    manifest = write_subset_manifest(bioimlab_table, folder / "labels.csv",
                                     karyotypes=range(1, 9), classes=["01", "02", "16", "21"])
    return load_dataset("manifest", path=manifest, canvas_size=16, cache_dir=folder / "cache")
