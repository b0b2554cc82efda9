"""Real worker processes: PostgreSQL-shared studies, and kill -9 / resume on SQLite."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from .conftest import write_study

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "setup-postgres.sh"


@pytest.fixture(scope="module")
def postgres_url():
    """``KARYOBENCH_TEST_POSTGRES_URL`` if set, else a server started by the CI script."""
    url = os.environ.get("KARYOBENCH_TEST_POSTGRES_URL")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed (pip install 'karyobench[postgres]')")
    if url:
        yield url
        return
    env = dict(os.environ, KARYOBENCH_PG_NO_INSTALL="1")
    proc = subprocess.run(["bash", "-c", f"source '{SCRIPT}' >/dev/null && "
                           "echo \"$KARYOBENCH_TEST_POSTGRES_URL\" && "
                           "echo \"$KARYOBENCH_TEST_POSTGRES_DATA\""],
                          capture_output=True, text=True, env=env, timeout=120)
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2:
        pytest.skip("no PostgreSQL: KARYOBENCH_TEST_POSTGRES_URL is unset and "
                    f".ci/setup-postgres.sh could not start a server ({proc.stderr.strip()})")
    url, data = lines
    yield url
    pg_ctl = subprocess.run(["bash", "-c", "readlink -f \"$(command -v pg_ctl || "
                             "ls /usr/lib/postgresql/*/bin/pg_ctl | tail -n1)\""],
                            capture_output=True, text=True).stdout.strip()
    stop = [pg_ctl, "-D", f"{data}/data", "stop", "-m", "fast"]
    if os.geteuid() == 0:
        stop = ["runuser", "-u", "postgres", "--"] + stop
    subprocess.run(stop, capture_output=True)
    subprocess.run(["rm", "-rf", data])


def _env(cache: Path) -> dict:
    return dict(os.environ, KARYOBENCH_CACHE=str(cache), KARYOBENCH_TF_THREADS="1",
                OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _preload(study: Path, cache: Path, monkeypatch):
    """Decode the images once so concurrent workers only read the cache."""
    from karyobench.evaluation.runner import load_study_dataset
    from karyobench.study import load_study

    monkeypatch.setenv("KARYOBENCH_CACHE", str(cache))
    load_study_dataset(load_study(study))


@pytest.mark.slow
def test_three_workers_share_postgres_studies_without_losing_trials(
        postgres_url, tmp_path, tiny_manifest, monkeypatch):
    n_trials = 24
    tuning = {"n_trials": n_trials, "inner_folds": 2, "pruner": "none",
              "startup_trials": 4,
              "space": {"svc__C": {"type": "float", "low": 1.0e-3, "high": 10.0,
                                   "log": True}}}
    name = f"pg{os.getpid()}{int(time.time())}"  # fresh studies in a reused database
    study = write_study(tmp_path, tiny_manifest,
                        [{"kind": "svm_linear_pixels", "name": "svm_tuned",
                          "tuning": tuning}], name=name)
    cache = tmp_path / "cache"
    _preload(study, cache, monkeypatch)
    args = [sys.executable, "-m", "karyobench.tuning.worker", str(study), "--storage",
            postgres_url, "--out", str(tmp_path / "out")]
    workers = [subprocess.Popen(args, env=_env(cache), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], "\n".join(outputs)

    from karyobench.tuning.storage import get_storage

    storage = get_storage(postgres_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)
             if s.study_name.startswith(f"{name}.")]
    assert len(names) == 2  # one Optuna study per outer fold
    contributors = set()
    for study_name in names:
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials()
        assert sorted(t.number for t in trials) == list(range(n_trials))
        assert all(t.state == TrialState.COMPLETE for t in trials)
        contributors |= {t.user_attrs["worker"] for t in trials}
    assert len(contributors) >= 2, "the workers never overlapped; the test proved nothing"


def _complete_trials(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state='COMPLETE'"
                               ).fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sqlite_study_resumes_after_kill_9(tmp_path, tiny_manifest, monkeypatch):
    n_trials = 2
    tuning = {"n_trials": n_trials, "inner_folds": 2, "pruner": "none", "startup_trials": 2,
              "default_trial": False,  # the tiny widths exclude the DCNN's default
              "space": {"dense_units": {"type": "widths", "depth": [1, 2], "low": 4,
                                        "high": 16, "log": True},
                        "learning_rate": {"type": "float", "low": 1.0e-3, "high": 1.0e-2,
                                          "log": True}}}
    params = {"epochs": 1, "batch_size": 16, "padding": "same", "conv_filters": [4]}
    study = write_study(tmp_path, tiny_manifest,
                        [{"kind": "dcnn", "name": "dcnn_tuned", "params": params,
                          "tuning": tuning}], name="resume")
    cache = tmp_path / "cache"
    _preload(study, cache, monkeypatch)
    out = tmp_path / "out"
    db = out / "tuning.sqlite3"
    args = [sys.executable, "-m", "karyobench.tuning.command", str(study), "--out", str(out)]
    proc = subprocess.Popen(args, env=_env(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _complete_trials(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "run ended before it could be killed: " + proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()

    from karyobench.tuning.storage import get_storage

    storage = get_storage(f"sqlite:///{db}")
    (first,) = [s for s in optuna.get_all_study_summaries(storage) if ".r0f0." in s.study_name]
    before = {t.number: t.params for t in optuna.load_study(
        study_name=first.study_name, storage=storage).get_trials()
        if t.state == TrialState.COMPLETE}
    assert 1 <= len(before) < n_trials or len(optuna.get_all_study_summaries(storage)) == 1

    rerun = subprocess.run(args, env=_env(cache), capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    for summary in optuna.get_all_study_summaries(storage):
        trials = optuna.load_study(study_name=summary.study_name,
                                   storage=storage).get_trials()
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == n_trials
        assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
        assert all(t.user_attrs.get("reaped") for t in trials if t.state == TrialState.FAIL)
        if summary.study_name == first.study_name:
            kept = {t.number: t.params for t in complete if t.number in before}
            assert kept == before  # the trials of the killed run are kept, not redone
    assert (out / "tuning" / "best_params.csv").is_file()


@pytest.mark.slow
def test_tune_command_with_two_workers_on_postgres(postgres_url, tmp_path, tiny_manifest,
                                                   monkeypatch):
    tuning = {"n_trials": 6, "inner_folds": 2, "pruner": "median", "startup_trials": 3,
              "space": {"svc__C": {"type": "float", "low": 1.0e-3, "high": 10.0,
                                   "log": True}}}
    name = f"cmd{os.getpid()}{int(time.time())}"
    study = write_study(tmp_path, tiny_manifest,
                        [{"kind": "svm_linear_pixels", "name": "svm"},
                         {"kind": "svm_linear_pixels", "name": "svm_tuned",
                          "tuning": tuning}], name=name)
    cache = tmp_path / "cache"
    _preload(study, cache, monkeypatch)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "karyobench.tuning.command", str(study),
                          "--storage", postgres_url, "--workers", "2", "--out", str(out)],
                         env=_env(cache), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "starting 2 search workers" in run.stderr
    import pandas as pd

    table = pd.read_csv(out / "tuning" / "best_params.csv")
    assert len(table) == 2 and (table.n_trials == 6).all()
    assert len(pd.read_parquet(out / "folds.parquet")) == 4
    assert not (out / "tuning.sqlite3").exists()  # everything went to PostgreSQL
