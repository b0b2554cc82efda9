"""A results folder is the same on every machine: no absolute path, host name or pid, and
the same fold keys and config digest wherever the data and the checkout live."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kb_support import tiny_study

from karyobench.evaluation.environment import _git_revision, portable_record
from karyobench.evaluation.runner import run_study
from karyobench.study import load_study
from karyobench.synth import SynthConfig, write_dataset

COHORT = SynthConfig(normal_patients=4, cells_per_patient=1, seed=5, abnormalities={})
ABSOLUTE = re.compile(r'"/(work|root|home|tmp)/|sqlite:////')


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A small generated cohort: ``<label>/<file>.png`` plus ``manifest.csv``."""
    folder = tmp_path_factory.mktemp("cohort") / "data"
    write_dataset(folder, COHORT)
    return folder


def _checkout(where: Path, cohort: Path) -> Path:
    """A copy of the data beside a study file that names it relative to itself."""
    shutil.copytree(cohort, where / "data")
    study = tiny_study({"source": "manifest", "path": "../data/manifest.csv",
                        "group_column": "patient_id", "canvas": {"size": 16}},
                       name="portable", tasks=[{"name": "t", "classes": ["1", "2", "3"]}],
                       estimators=[{"kind": "logreg_pixels"}],
                       cv={"split": "group", "folds": 2})
    (where / "studies").mkdir()
    path = where / "studies" / "portable.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _run(study_file: Path, tmp: Path) -> Path:
    """Run from the checkout's folder (digests take paths relative to it)."""
    checkout = study_file.parents[1]
    cwd = os.getcwd()
    os.chdir(checkout)
    try:
        run_study(load_study(study_file), Path("results") / "portable",
                  cache_dir=tmp / "cache")
    finally:
        os.chdir(cwd)
    return checkout / "results" / "portable"


@pytest.fixture(scope="module")
def two_machines(cohort, tmp_path_factory):
    """The same study run from two checkouts in different folders (two 'machines')."""
    runs = []
    for name in ("machine_a", "deeper/machine_b"):
        where = tmp_path_factory.mktemp("runs") / name
        where.mkdir(parents=True)
        runs.append(_run(_checkout(where, cohort), where))
    return runs


def test_predictions_name_each_image_relative_to_the_dataset_root(two_machines, cohort):
    a, b = (pd.read_parquet(out / "predictions.parquet") for out in two_machines)
    manifest = pd.read_csv(cohort / "manifest.csv")
    assert set(a["path"]) <= set(manifest["path"])  # as the manifest lists them
    assert not any(Path(p).is_absolute() for p in a["path"])
    pd.testing.assert_frame_equal(a, b)


def test_config_protocol_and_fold_keys_are_the_same_on_both_machines(two_machines):
    a, b = two_machines
    for name in ("config.yaml", "protocol.json", "fold_keys.csv", "tasks.json"):
        assert (a / name).read_text() == (b / name).read_text(), name
    config = yaml.safe_load((a / "config.yaml").read_text())
    assert config["dataset"]["path"] == "../../data/manifest.csv"  # from the results folder
    protocol = json.loads((a / "protocol.json").read_text())
    assert protocol["dataset_root"] == "../../data"


def test_no_text_file_of_a_results_folder_holds_an_absolute_path(two_machines):
    out = two_machines[0]
    for path in out.rglob("*"):
        if path.is_file() and "jobs" not in path.parts and path.suffix in {
                ".json", ".yaml", ".csv", ".md", ".tex", ".html"}:
            assert not ABSOLUTE.search(path.read_text()), path
            assert str(out.parents[1]) not in path.read_text(), path
    environment = json.loads((out / "environment.json").read_text())
    assert not Path(environment["command"].split()[0]).is_absolute()


def test_reused_folds_with_absolute_paths_are_written_relative(cohort, tmp_path):
    """Folds restored from (or cached by) an older run that recorded absolute paths."""
    study_file = _checkout(tmp_path, cohort)
    out = _run(study_file, tmp_path)
    predictions = pd.read_parquet(out / "predictions.parquet")
    relative = predictions["path"].copy()
    predictions["path"] = [str(tmp_path / "data" / p) for p in relative]
    predictions.to_parquet(out / "predictions.parquet")
    shutil.rmtree(out / "jobs")
    environment = json.loads((out / "environment.json").read_text())
    environment["command"] = "/root/.pyenv/versions/3.11.7/bin/karyobench run x.yaml"
    (out / "environment.json").write_text(json.dumps(environment))  # an older record
    summary = run_study(load_study(study_file), out, cache_dir=tmp_path / "cache",
                        reuse=[out])
    assert sum(summary.restored.values()) == summary.n_jobs  # nothing retrained
    assert pd.read_parquet(out / "predictions.parquet")["path"].tolist() == relative.tolist()
    earlier = json.loads((out / "environment.json").read_text())["previous_runs"]
    assert earlier[-1]["command"] == "karyobench run x.yaml"


def test_earlier_runs_keep_their_record_without_the_executable_path():
    run = {"command": "/root/.pyenv/versions/3.11.7/bin/karyobench run studies/x.yaml",
           "wall_seconds": 3.0}
    assert portable_record(run) == {"command": "karyobench run studies/x.yaml",
                                    "wall_seconds": 3.0}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)


def test_git_revision_is_not_dirty_for_results_being_written(tmp_path):
    repo = tmp_path / "checkout"
    (repo / "karyobench").mkdir(parents=True)
    (repo / "results" / "study").mkdir(parents=True)
    (repo / "karyobench" / "code.py").write_text("x = 1\n")
    (repo / "results" / "study" / "summary.md").write_text("old\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "code and results")
    clean = _git_revision(repo.resolve())
    assert re.fullmatch(r"[0-9a-f]{40}", clean)
    (repo / "results" / "study" / "summary.md").write_text("new\n")  # a run writing
    assert _git_revision(repo.resolve()) == clean
    (repo / "karyobench" / "code.py").write_text("x = 2\n")  # the code changed
    assert _git_revision(repo.resolve()) == clean + "-dirty"


def test_git_revision_of_an_installed_copy_inside_another_repository_is_none(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "site-packages").mkdir()
    assert _git_revision((tmp_path / "site-packages").resolve()) is None


def test_tuning_trials_name_their_worker_without_host_or_pid():
    from karyobench.tuning.nested import worker_id

    assert worker_id() == worker_id()
    assert str(os.getpid()) not in worker_id() and os.uname().nodename not in worker_id()
