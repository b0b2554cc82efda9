"""``karyobench tune``: nested-CV tuning of a study, with K search workers on one storage.

1. plan the study's fold jobs exactly as ``karyobench run`` does, and give the jobs of
   estimators with a ``tuning`` block their tuning fields (same job keys as ``run``);
2. with ``--workers K > 1``: K worker processes run Optuna trials of every outer fold's
   study against the same storage (the claim lock keeps each study at ``n_trials``);
3. every fold job (tuned and untuned) is then finished in this process: a tuned fold
   waits for its study's running trials, refits the best parameters on the outer
   training set and scores the outer test fold; results go to the usual results folder;
4. tables and Optuna plots under ``<out>/tuning/``.

Re-running resumes: finished folds are reused and each Optuna study only runs the trials
it is missing. Several ``karyobench tune --storage postgresql://...`` processes (other
machines) may share the same studies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from karyobench.errors import ConfigError, KaryobenchError


def _echo(message: str) -> None:
    typer.echo(message, err=True)


def prepare(study_path: Path, storage: str | None, n_trials: int | None,
            timeout: float | None, out: Path | None, lockboxes: Path | None = None):
    """(study, out_dir, storage URL, dataset, jobs, protocols, task_info, groups).

    ``lockboxes``: the lockbox registry folder (None: ``./lockboxes``)."""
    from karyobench.evaluation import lockbox
    from karyobench.evaluation.runner import group_column_of, load_study_dataset, plan_jobs
    from karyobench.study import load_study
    from karyobench.tuning.nested import attach_tuning, check_tuning
    from karyobench.tuning.storage import default_storage_url

    config = load_study(study_path)
    if not any(e.tuning for e in config.estimators):
        raise ConfigError(f"{study_path}: no estimator has a 'tuning' block; nothing to "
                          "tune (use `karyobench run`).")
    if n_trials is not None and n_trials < 1:
        raise ConfigError("--n-trials must be at least 1.")
    check_tuning(config)
    out_dir = Path(out) if out else Path("results") / config.name
    url = storage or default_storage_url(out_dir)
    dataset = load_study_dataset(config)
    group_column = group_column_of(config, dataset)
    lockbox.guard(config, dataset, group_column, lockboxes or lockbox.DEFAULT_REGISTRY,
                  lockbox.study_lockbox(config, dataset, group_column))
    jobs, protocols, task_info = plan_jobs(config, dataset)
    groups = dataset.groups.get(group_column) if group_column else None
    jobs = attach_tuning(jobs, config, groups, url, n_trials=n_trials, timeout=timeout)
    return config, out_dir, url, dataset, jobs, protocols, task_info, groups


def _labels_by_task(config, dataset):
    from karyobench import tasks as task_selection

    return {t.name: task_selection.relabel(t, dataset.labels) for t in config.tasks}


def search_all(study_path: Path, storage: str | None, n_trials: int | None,
               timeout: float | None, out: Path | None, log=_echo,
               lockboxes: Path | None = None) -> int:
    """A search worker: run trials of every pending tuned fold, then return."""
    from karyobench.evaluation.store import ResultsStore
    from karyobench.tuning.nested import make_context, search

    config, out_dir, url, dataset, jobs, *_ = prepare(study_path, storage, n_trials,
                                                      timeout, out, lockboxes)
    store = ResultsStore(out_dir)
    labels = _labels_by_task(config, dataset)
    n = 0
    for job in jobs:
        if job.tuning is None or store.has(job):
            continue
        ctx = make_context(job, dataset.images_for(job.canvas), labels[job.task])
        search(ctx, url, wait_for_running=False, log=log)
        n += 1
    return n


def tune_command(
    study: Path = typer.Argument(..., help="study YAML with estimators[].tuning blocks"),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Optuna storage URL, e.g. postgresql://user@host/db "
        "(default: sqlite:///<out>/tuning.sqlite3)"),
    n_trials: Optional[int] = typer.Option(None, "--n-trials",
                                           help="override every tuning.n_trials"),
    timeout: Optional[float] = typer.Option(None, "--timeout",
                                            help="override tuning.timeout (s per fold)"),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="search worker processes sharing the storage"),
    out: Optional[Path] = typer.Option(None, "--out", help="results folder "
                                       "(default: results/<study name>)"),
    lockboxes: Optional[Path] = typer.Option(None, "--lockboxes", help="folder of lockbox "
                                             "records (default: ./lockboxes)"),
):
    """Nested-CV hyper-parameter search (Optuna) for the study's tuned estimators."""
    from karyobench.evaluation.runner import _write_metadata, _write_report
    from karyobench.evaluation.environment import describe_environment
    from karyobench.evaluation.fold import run_fold
    from karyobench.evaluation.store import ResultsStore, atomic_write_text
    from karyobench.tuning.nested import make_context, open_study, reap_running, tune_fold
    from karyobench.tuning.outputs import save_fold_record, write_tuning_outputs
    from karyobench.tuning.storage import default_storage_url, portable, redact, sqlite_path

    started = time.perf_counter()
    config, out_dir, url, dataset, jobs, protocols, task_info, groups = prepare(
        study, storage, n_trials, timeout, out, lockboxes)
    default = storage is None or url == default_storage_url(out_dir)
    if workers > 1 and sqlite_path(url) is not None:
        _echo(f"warning: {workers} workers share one SQLite file; writers wait for each "
              "other's lock. For many workers use --storage postgresql://...")
    _echo(f"Optuna storage: {redact(url)}")
    store = ResultsStore(out_dir)
    labels = _labels_by_task(config, dataset)
    with store.lock():
        _write_metadata(store, config, dataset, protocols, task_info,
                        _group_column(config, dataset))
        pending = [job for job in jobs if not store.has(job)]
        tuned = [job for job in pending if job.tuning is not None]
        if default:  # the results lock makes this process the only user of the file
            for job in tuned:
                ctx = make_context(job, dataset.images_for(job.canvas), labels[job.task])
                n = reap_running(open_study(ctx, url))
                if n:
                    _echo(f"{ctx.study_name}: {n} trial(s) of an interrupted run marked "
                          "FAIL; they will be replaced")
        if workers > 1 and tuned:
            _run_workers(study, url, n_trials, timeout, out_dir, workers, lockboxes)
        for job in pending:
            if job.tuning is not None:
                result = tune_fold(job, dataset.images_for(job.canvas), labels[job.task], log=_echo)
                save_fold_record(out_dir, job, result)
                info = result.extra["tuning"]
                default = info.get("inner_default")
                _echo(f"{job.task} · {job.estimator} · {job.split} fold {job.fold}: inner "
                      + (f"default {default:.4f}, " if default is not None else "")
                      + f"best {info['inner_best']:.4f}, outer {info['outer_score']:.4f} "
                      f"({info['n_trials']} trials, {info['n_pruned']} pruned, "
                      f"{info['inner_protocol']} inner)")
            else:
                result = run_fold(job, dataset.images_for(job.canvas), labels[job.task])
                _echo(f"{job.task} · {job.estimator} · {job.split} fold {job.fold}: "
                      f"accuracy {result.metrics['accuracy']:.4f}")
            store.save(result, dataset.paths, groups, labels[job.task])
        store.assemble(jobs)
        environment = describe_environment()
        environment.update(wall_seconds=round(time.perf_counter() - started, 2),
                           folds_reused=len(jobs) - len(pending),
                           folds_computed=len(pending), backend=f"tune ({workers} worker(s))",
                           tuning_storage=portable(url))
        atomic_write_text(store.root / "environment.json", json.dumps(environment, indent=1))
        _write_report(store.root)
        written = write_tuning_outputs(out_dir, url, keys=[j.key for j in jobs if j.tuning])
    _echo(f"{len(jobs)} folds ({len(jobs) - len(pending)} reused) in "
          f"{time.perf_counter() - started:.1f} s → {out_dir}; tuning tables and plots: "
          f"{len(written)} files under {out_dir / 'tuning'}")


def _group_column(config, dataset):
    from karyobench.evaluation.runner import group_column_of

    return group_column_of(config, dataset)


def worker_args(study: Path, storage: str, n_trials: int | None, timeout: float | None,
                out: Path) -> list[str]:
    args = [sys.executable, "-m", "karyobench.tuning.worker", str(study), "--storage",
            storage, "--out", str(out)]
    if n_trials is not None:
        args += ["--n-trials", str(n_trials)]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    return args


def _run_workers(study, url, n_trials, timeout, out_dir, workers: int,
                 lockboxes: Path | None = None) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    env = dict(os.environ, KARYOBENCH_TF_THREADS=str(threads),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(threads)))
    args = worker_args(study, url, n_trials, timeout, out_dir)
    if lockboxes is not None:  # the workers plan the same folds under the same registry
        args += ["--lockboxes", str(lockboxes)]
    _echo(f"starting {workers} search workers ({threads} TF thread(s) each)")
    processes = [subprocess.Popen(args, env=env) for _ in range(workers)]
    try:
        codes = [p.wait() for p in processes]
    except BaseException:
        for p in processes:
            p.terminate()
        raise
    if any(codes):
        raise KaryobenchError(f"search worker(s) exited with codes {codes}; see their "
                              "messages above. Re-run to resume.")


def main() -> None:
    """``python -m karyobench.tuning.command`` (same as ``karyobench tune``)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(tune_command)
    try:
        app(standalone_mode=False)
    except KaryobenchError as err:
        _echo(f"error: {err}")
        sys.exit(2)


if __name__ == "__main__":
    main()
