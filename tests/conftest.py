"""Shared fixtures: where the real BioImLab data lives, tiny study files, the CLI.

The real images sit at ``<repo>/../shared/data/`` and are never copied into the repo;
tests that need them skip when that folder is absent. Every TensorFlow model used in the
tests is tiny (canvas 16-32 px, one conv layer of 4 filters, 1-3 epochs): the machine has
two cores shared with long training runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# One TensorFlow thread per test process: set before anything imports TensorFlow.
os.environ.setdefault("KARYOBENCH_TF_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Caches (decoded canvases, HOG features) go to a fresh folder, never the user's cache:
# tests must not depend on, or pile up in, ~/.cache/karyobench.
os.environ["KARYOBENCH_CACHE"] = tempfile.mkdtemp(prefix="karyobench-test-cache-")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from kb_support import *  # noqa: E402,F401,F403 (names shared with test modules)
from kb_support import BIOIMLAB, BIOIMLAB_MANIFEST, write_subset_manifest  # noqa: E402



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



@pytest.fixture
def subset_manifest(bioimlab_table, tmp_path):
    """``subset_manifest(karyotypes=[1, 2], classes=['01', '02'])`` -> CSV path in tmp."""

    def make(name: str = "subset.csv", **kwargs) -> Path:
        return write_subset_manifest(bioimlab_table, tmp_path / name, **kwargs)

    return make




@pytest.fixture
def write_study(tmp_path):
    """``write_study(study_dict_or_text, name='study.yaml')`` -> path of the YAML file."""

    def write(study, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        text = study if isinstance(study, str) else yaml.safe_dump(study, sort_keys=False)
        path.write_text(text)
        return path

    return write





@pytest.fixture(scope="session")
def small_bioimlab(bioimlab_table, tmp_path_factory):
    """64 real crops (classes 1, 2, 16, 21 of karyotypes 1-8) on a 16 px native canvas."""
    from karyobench.data import load_dataset

    folder = tmp_path_factory.mktemp("small_bioimlab")
    manifest = write_subset_manifest(bioimlab_table, folder / "labels.csv",
                                     karyotypes=range(1, 9), classes=["01", "02", "16", "21"])
    return load_dataset("manifest", path=manifest, canvas_size=16, cache_dir=folder / "cache")
