"""``karyobench tune``: ``karyobench run`` plus search workers sharing one Optuna storage.

``tune`` runs the study through the same run loop as ``run``
(:func:`karyobench.evaluation.runner.run_study`: same fold jobs and keys, ensembles,
``--reuse``, ``fold_keys.csv``, report), with a :class:`TuneSearch` as its tuner:

1. the study must have an estimator with a ``tuning`` block;
2. before the refits, marks trials of an interrupted run FAIL (default storage only: the
   results lock makes this process its only user) and, with ``--workers K > 1``, runs K
   worker processes that search every pending outer fold against the same storage (the
   claim lock keeps each study at ``n_trials``);
3. every fold job is then finished in this process: a tuned fold waits for its study's
   running trials, refits the best parameters on the outer training set and scores the
   outer test fold;
4. tables and Optuna plots under ``<out>/tuning/``.

Re-running resumes: finished folds are reused and each Optuna study only runs the trials
it is missing. Several ``karyobench tune --storage postgresql://...`` processes (other
machines) may share the same studies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from karyobench.errors import ConfigError, KaryobenchError
from karyobench.tuning.tuner import NestedSearch


def _echo(message: str) -> None:
    typer.echo(message, err=True)


def _load_tuned_study(study_path: Path, n_trials: int | None):
    from karyobench.study import load_study

    config = load_study(study_path)
    if not any(e.tuning for e in config.estimators):
        raise ConfigError(f"{study_path}: no estimator has a 'tuning' block; nothing to "
                          "tune (use `karyobench run`).")
    if n_trials is not None and n_trials < 1:
        raise ConfigError("--n-trials must be at least 1.")
    return config


def prepare(study_path: Path, storage: str | None, n_trials: int | None,
            timeout: float | None, out: Path | None, lockboxes: Path | None = None,
            cache_dir: Path | None = None):
    """(study, out_dir, storage URL, dataset, jobs): the fold jobs ``tune`` plans, for a
    search worker (same plan, same tuned keys, hence the same Optuna studies).

    ``lockboxes``: the lockbox registry folder (None: ``./lockboxes``)."""
    from karyobench.evaluation import lockbox
    from karyobench.evaluation.plan import group_column_of, load_study_dataset, plan_jobs

    config = _load_tuned_study(study_path, n_trials)
    out_dir = Path(out) if out else Path("results") / config.name
    dataset = load_study_dataset(config, cache_dir)
    group_column = group_column_of(config, dataset)
    lockbox.guard(config, dataset, group_column, lockboxes or lockbox.DEFAULT_REGISTRY,
                  lockbox.study_lockbox(config, dataset, group_column))
    jobs, _, _ = plan_jobs(config, dataset)
    groups = dataset.groups.get(group_column) if group_column else None
    search = NestedSearch(storage, n_trials, timeout)
    jobs = search.attach(jobs, config, groups, out_dir)
    return config, out_dir, search.url, dataset, jobs


def _labels_by_task(config, dataset):
    from karyobench import tasks as task_selection

    return {t.name: task_selection.relabel(t, dataset.labels) for t in config.tasks}


def search_all(study_path: Path, storage: str | None, n_trials: int | None,
               timeout: float | None, out: Path | None, log=_echo,
               lockboxes: Path | None = None, cache_dir: Path | None = None) -> int:
    """A search worker: run trials of every pending tuned fold, then return."""
    from karyobench.evaluation.store import ResultsStore
    from karyobench.tuning.nested import make_context, search
    from karyobench.context import RunContext, using
    from karyobench.tuning.storage import optuna_warnings_only

    config, out_dir, url, dataset, jobs = prepare(study_path, storage, n_trials, timeout,
                                                  out, lockboxes, cache_dir)
    store = ResultsStore(out_dir)
    labels = _labels_by_task(config, dataset)
    n = 0
    with using(RunContext(cache_dir=cache_dir)), optuna_warnings_only():
        for job in jobs:
            if job.tuning is None or store.has(job):
                continue
            ctx = make_context(job, dataset.images_for(job.canvas), labels[job.task])
            search(ctx, url, wait_for_running=False, log=log)
            n += 1
    return n


@dataclass
class TuneSearch(NestedSearch):
    """``tune``'s tuner: nested search that reaps interrupted trials and starts workers.

    ``study_path``, ``lockboxes``, ``cache_dir``: what a worker process needs to plan
    the same jobs; ``workers``: worker processes (1: search in this process only);
    ``reap``: mark trials left RUNNING by an interrupted run FAIL (only when no other
    process can be using the storage).
    """

    study_path: Path | None = None
    workers: int = 1
    reap: bool = False
    lockboxes: Path | None = None
    cache_dir: Path | None = None

    def attach(self, jobs, study, groups, out_dir):
        """As NestedSearch's, then say where the searches go (once the study has passed
        the lockbox check and planned)."""
        from karyobench.tuning.storage import redact, sqlite_path

        jobs = super().attach(jobs, study, groups, out_dir)
        if self.workers > 1 and sqlite_path(self.url) is not None:
            _echo(f"warning: {self.workers} workers share one SQLite file; writers wait "
                  "for each other's lock. For many workers use --storage postgresql://...")
        _echo(f"Optuna storage: {redact(self.url)}")
        return jobs

    def before_fits(self, pending, images_for, labels_by_task, out_dir) -> None:
        from karyobench.tuning.nested import make_context, open_study, reap_running

        tuned = [job for job in pending if job.tuning is not None]
        if self.reap:  # the results lock makes this process the only user of the file
            for job in tuned:
                ctx = make_context(job, images_for(job.canvas), labels_by_task[job.task])
                n = reap_running(open_study(ctx, self.url))
                if n:
                    _echo(f"{ctx.study_name}: {n} trial(s) of an interrupted run marked "
                          "FAIL; they will be replaced")
        if self.workers > 1 and tuned:
            _run_workers(self.study_path, self.url, self.n_trials, self.timeout, out_dir,
                         self.workers, self.lockboxes, self.cache_dir)

    def finish(self, root, jobs) -> dict:
        return {**super().finish(root, jobs), "backend": f"tune ({self.workers} worker(s))"}


class _FoldLog:
    """``tune``'s progress: one line per finished fold (the run loop's progress hooks)."""

    def start(self, total: int, reused: int, running=None) -> None:
        pass

    def advance(self, result) -> None:
        job = result.job
        where = f"{job.task} · {job.estimator} · {job.split} fold {job.fold}"
        info = result.extra.get("tuning")
        if info is None:
            _echo(f"{where}: accuracy {result.metrics['accuracy']:.4f}")
            return
        default = info.get("inner_default")
        _echo(f"{where}: inner "
              + (f"default {default:.4f}, " if default is not None else "")
              + f"best {info['inner_best']:.4f}, outer {info['outer_score']:.4f} "
              f"({info['n_trials']} trials, {info['n_pruned']} pruned, "
              f"{info['inner_protocol']} inner)")


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
    reuse: Annotated[Optional[list[Path]], typer.Option(
        "--reuse", help="a results folder whose committed untuned folds are reused "
        "instead of retrained (same job key only); repeatable")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="decoded-image cache (default ~/.cache/karyobench)")] = None,
):
    """Nested-CV hyper-parameter search (Optuna) for the study's tuned estimators."""
    from karyobench.evaluation import lockbox
    from karyobench.evaluation.runner import run_study
    from karyobench.tuning.storage import default_storage_url, optuna_warnings_only

    started = time.perf_counter()
    config = _load_tuned_study(study, n_trials)
    out_dir = Path(out) if out else Path("results") / config.name
    url = storage or default_storage_url(out_dir)
    tuner = TuneSearch(storage=url, n_trials=n_trials, timeout=timeout, log=_echo,
                       study_path=study, workers=workers,
                       reap=storage is None or url == default_storage_url(out_dir),
                       lockboxes=lockboxes, cache_dir=cache_dir)
    # tuned folds are fitted in this process, one after another: the search workers
    # are the parallelism
    with optuna_warnings_only():
        summary = run_study(config, out_dir, backend="sequential", workers=1,
                            cache_dir=cache_dir, progress=_FoldLog(), tuner=tuner,
                            reuse=reuse or (),
                            lockbox_registry=lockboxes or lockbox.DEFAULT_REGISTRY)
    for folder, count in (summary.restored or {}).items():
        _echo(f"recovered {count} finished fold(s) from the committed results in {folder}")
    _echo(f"{summary.n_jobs} folds ({summary.n_reused} reused) in "
          f"{time.perf_counter() - started:.1f} s → {out_dir}; tuning tables and plots: "
          f"{len(tuner.written)} files under {out_dir / 'tuning'}")


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
                 lockboxes: Path | None = None, cache_dir: Path | None = None) -> None:
    from karyobench.evaluation.backends import resolve

    threads = resolve("loky", workers, workers).threads  # workers x threads <= cores
    env = dict(os.environ, KARYOBENCH_TF_THREADS=str(threads),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(threads)))
    args = worker_args(study, url, n_trials, timeout, out_dir)
    if lockboxes is not None:  # the workers plan the same folds under the same registry
        args += ["--lockboxes", str(lockboxes)]
    if cache_dir is not None:
        args += ["--cache-dir", str(cache_dir)]
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
