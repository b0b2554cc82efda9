"""Nested cross-validation: an Optuna search inside each outer training fold.

For one outer fold (a :class:`FoldJob` with ``tuning`` set):

1. inner folds of the outer *training* rows (``StratifiedGroupKFold`` by the dataset's
   groups under the grouped protocol, ``StratifiedKFold`` otherwise), or one hold-out
   (the first of those folds) with ``inner_holdout``;
2. an Optuna study (seeded TPE, median / successive-halving / Hyperband pruning on
   per-epoch inner validation scores) whose objective is the mean inner-fold score; its
   first trial is the estimator's own parameters (``enqueue_trial``), never pruned, so
   the winner's inner score is at least the default's;
3. the best parameters refitted on the whole outer training set and scored once on the
   outer test fold: that is the honest number; the inner best score is optimistic.

The Optuna study lives in a storage URL (default: SQLite in the results folder), is named
after (study, task, estimator, split, repeat, fold) plus a digest of everything the search
depends on, and is resumed on re-runs: only the missing trials are run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import uuid
import warnings
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from karyobench.compat.optuna import study_storage, trial_id
from karyobench.errors import ConfigError, KaryobenchError
from karyobench.estimators import build
from karyobench.evaluation.fold import FoldJob, FoldResult, fit_and_score, is_keras, predictions
from karyobench.tuning.scoring import score
from karyobench.search_space import (TuningConfig, default_params, params_from_optuna,
                                     suggest_params)
from karyobench.tuning.storage import Heartbeat, claim_lock, get_storage, portable

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
POLL_SECONDS = 5.0


# ---------------------------------------------------------------- jobs ----------------

def tuning_payload(config: TuningConfig, study_name: str, n_trials: int | None = None,
                   timeout: float | None = None) -> dict:
    """What a FoldJob carries: the TuningConfig (with CLI overrides) and the study name."""
    payload = config.dump_compat()
    if payload.get("sampler") == "tpe":  # the default: keeps earlier tuned job keys valid
        del payload["sampler"]
    if not payload.get("inner_params"):  # likewise for the default: no inner-only params
        payload.pop("inner_params", None)
    if n_trials is not None:
        if config.sampler == "grid" and n_trials > config.grid_size():
            raise ConfigError(f"--n-trials {n_trials} exceeds the grid's "
                              f"{config.grid_size()} combinations (study '{study_name}', "
                              "sampler: grid); ask for fewer.")
        payload["n_trials"] = int(n_trials)
    if timeout is not None:
        payload["timeout"] = float(timeout)
    payload["study"] = study_name
    return payload


def attach_tuning(jobs: list[FoldJob], study, groups: np.ndarray | None,
                  storage: str, n_trials: int | None = None,
                  timeout: float | None = None) -> list[FoldJob]:
    """Give the jobs of estimators with a ``tuning`` block their tuning fields.

    ``groups`` are the dataset's group labels (all rows) or None; inner folds are grouped
    under the grouped outer protocol only (the image-level protocol stays image-level).
    """
    tuned = {e.label: e.tuning for e in study.estimators if getattr(e, "tuning", None)}
    out = []
    for job in jobs:
        config = tuned.get(job.estimator)
        if config is None:
            out.append(job)
            continue
        train_groups = groups[job.train] if groups is not None and job.split == "group" \
            else None
        out.append(dataclasses.replace(
            job, tuning=tuning_payload(config, study.name, n_trials, timeout),
            train_groups=train_groups, storage=storage))
    return out


def check_tuning(study) -> None:
    """Fail early on tuning spaces naming parameters the estimator does not have."""
    from karyobench.search_space import check_space

    for estimator in study.estimators:
        if getattr(estimator, "tuning", None):
            check_space(estimator.kind, estimator.params, estimator.tuning,
                        where=f"estimator '{estimator.label}'")


# ------------------------------------------------------------ context -----------------

@dataclass
class SearchContext:
    """Everything the objective needs for one outer fold."""

    job: FoldJob
    config: TuningConfig
    X: np.ndarray
    y: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    classes: list[str]
    study_name: str
    sampler_seed: int
    max_epochs: int
    default_params: dict | None = None  # Optuna's flat params of the default trial

    @property
    def where(self) -> str:
        return f"estimator '{self.job.estimator}'"


def make_context(job: FoldJob, images: np.ndarray, labels: np.ndarray) -> SearchContext:
    payload = dict(job.tuning)
    study_label = payload.pop("study", "study")
    config = TuningConfig.from_compat(payload)
    X, y = images[job.train], np.asarray(labels[job.train]).astype(str)
    base_seed = config.seed if config.seed is not None else job.seed
    splits = inner_splits(y, job.train_groups, config.inner_folds,
                          seed=base_seed + 1000 * job.repeat + job.fold, task=job.task,
                          holdout=config.inner_holdout, repeats=config.inner_repeats)
    digest = search_digest(job, config)
    name = f"{study_label}.{job.task}.{job.estimator}.{job.split}.r{job.repeat}f{job.fold}." \
           f"{digest}"
    sampler_seed = int.from_bytes(hashlib.sha256(f"{base_seed}:{name}".encode())
                                  .digest()[:4], "big") % (2**31 - 1)
    defaults = None
    if config.default_trial:
        values = build(job.kind, job.params).get_params(deep=True)
        try:
            defaults = default_params(config.space, values)
        except ValueError as err:
            raise ConfigError(f"estimator '{job.estimator}': {err}; widen the space or set "
                              "tuning.default_trial: false.") from None
    return SearchContext(job, config, X, y, splits, list(job.classes), name, sampler_seed,
                         max_epochs=_max_epochs(job, config), default_params=defaults)


def search_digest(job: FoldJob, config: TuningConfig) -> str:
    """Hash of what the search depends on; n_trials and timeout are left out so a larger
    budget continues the same Optuna study."""
    spec = config.dump_compat()
    spec.pop("n_trials"), spec.pop("timeout")
    if not spec["inner_params"]:  # keeps earlier searches' Optuna study names
        del spec["inner_params"]
    spec.update(kind=job.kind, params=job.params, seed=job.seed, classes=list(job.classes),
                data=job.data_fingerprint)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
    digest.update(np.asarray(job.train, dtype=np.int64).tobytes())
    if job.train_groups is not None:
        digest.update("\0".join(map(str, job.train_groups)).encode())
    return digest.hexdigest()[:10]


def inner_splits(y: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int,
                 task: str = "", holdout: float | None = None, repeats: int = 1
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner folds of an outer training set, grouped when groups are given.

    With ``holdout`` (a fraction): only the first ``repeats`` (default one) of
    ``round(1 / holdout)`` such folds, stratified hold-outs of whole groups of about that
    fraction, so every inner fit trains on most of the outer training set instead of
    (k-1)/k of it k times; several disjoint hold-outs average away the luck of one.
    """
    setting, fix = "tuning.inner_folds", "lower inner_folds"
    if holdout is not None:
        n_folds, setting = max(2, round(1 / holdout)), "tuning.inner_holdout"
        fix = "raise inner_holdout (a larger fraction needs fewer folds)"
    zeros = np.zeros(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small classes: sklearn warns, we check below
        if groups is not None:
            if len(np.unique(groups)) < n_folds:
                raise ConfigError(f"task '{task}': the outer training set has only "
                                  f"{len(np.unique(groups))} groups for {setting} "
                                  f"({n_folds} folds); {fix}.")
            splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed % 2**31)
            parts = list(splitter.split(zeros, y, groups))
            for train, test in parts:
                shared = set(groups[train]) & set(groups[test])
                if shared:
                    raise AssertionError(f"inner split leaks groups {sorted(shared)[:5]}")
        else:
            counts = np.unique(y, return_counts=True)[1]
            if counts.max() < n_folds:
                raise ConfigError(f"task '{task}': too few images per class for "
                                  f"{setting} ({n_folds} folds); {fix}.")
            splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed % 2**31)
            parts = list(splitter.split(zeros, y))
    if holdout is not None:
        parts = parts[:repeats]
    return [(np.sort(a), np.sort(b)) for a, b in parts]


def _max_epochs(job: FoldJob, config: TuningConfig) -> int:
    """Upper bound of epochs per fit: spaces the pruning steps of successive inner folds."""
    spec = config.space.get("epochs")
    if spec is not None and spec.upper:
        return int(spec.upper)
    try:
        inner = {**job.params, **config.inner_params}
        value = build(job.kind, inner).get_params().get("epochs")
    except Exception:
        value = None
    return int(value) if value else 1


# ---------------------------------------------------------- objective -----------------

def evaluate_trial(trial, ctx: SearchContext) -> float:
    """Mean inner-fold score of the trial's parameters; raises TrialPruned when pruned."""
    tuned = suggest_params(trial, ctx.config.space)
    params = {**ctx.job.params, **ctx.config.inner_params, **tuned}
    trial.set_user_attr("estimator_params", _jsonable(tuned))
    # the default trial is the floor the search must beat: it always runs to the end
    prunable = not trial.user_attrs.get("default_trial", False)
    scores, epochs_trained, epochs_planned = [], 0, 0
    for index, (train, valid) in enumerate(ctx.splits):
        estimator = build(ctx.job.kind, params, random_state=ctx.job.seed, where=ctx.where)
        keras_fit, callback = is_keras(estimator), None
        if keras_fit and ctx.config.pruner != "none":
            # per-epoch validation scores only serve a pruner: without one they would
            # cost an inference pass over the validation fold every epoch
            from karyobench.tuning.pruning import OptunaPruningCallback

            callback = OptunaPruningCallback(
                trial, estimator, ctx.X[valid], ctx.y[valid], ctx.classes, ctx.config.metric,
                step_offset=index * ctx.max_epochs, prunable=prunable)
            estimator.set_params(callbacks=[callback])
        estimator.fit(ctx.X[train], ctx.y[train])
        if keras_fit:
            epochs_planned = int(estimator.epochs) * len(ctx.splits)
            epochs_trained += (callback.epochs_run if callback is not None
                               else len(estimator.history_.get("loss", [])))
            trial.set_user_attr("epochs_trained", epochs_trained)
            trial.set_user_attr("epochs_planned", epochs_planned)
            if callback is not None and callback.pruned:
                trial.set_user_attr("fold_scores", scores + callback.scores[-1:])
                raise optuna.TrialPruned(f"pruned in inner fold {index} after "
                                         f"{callback.epochs_run} epoch(s)")
        y_pred, proba = predictions(estimator, ctx.X[valid], ctx.classes)
        scores.append(score(ctx.config.metric, ctx.y[valid], proba, ctx.classes, y_pred))
        trial.set_user_attr("fold_scores", scores)
        if not keras_fit:  # no epochs: one report per inner fold (running mean)
            running = float(np.nanmean(scores)) if np.isfinite(scores).any() else math.nan
            if np.isfinite(running):
                trial.report(running, index)
                if prunable and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after inner fold {index}")
    if not np.isfinite(scores).any():
        raise KaryobenchError(f"metric '{ctx.config.metric}' is undefined on every inner "
                              "fold (a class missing from the validation folds?)")
    return float(np.nanmean(scores))


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item")
                                 else str(v)))


# ------------------------------------------------------------- search -----------------

def make_sampler(config: TuningConfig, seed: int) -> optuna.samplers.BaseSampler:
    if config.sampler == "grid":  # visits each combination not yet tried (or running)
        return _AskTellGridSampler(config.grid(), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant_liar is marked experimental
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=config.startup_trials,
                                          constant_liar=True)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is covered: that
    call is only legal inside ``optimize``, and ``search`` (ask/tell) stops at n_trials,
    which the study file caps at the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def make_pruner(config: TuningConfig, max_steps: int = 1) -> optuna.pruners.BasePruner:
    """Optuna's pruner for ``config``; ``max_steps`` is a full trial's number of reported
    steps (epochs x inner fits for Keras), Hyperband's default ``max_resource``."""
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=config.min_resource or 1,
            max_resource=config.max_resource or max(max_steps, config.min_resource or 1),
            reduction_factor=config.reduction_factor)
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.pruner_startup_trials,
                                           n_warmup_steps=config.warmup_steps)
    if config.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.min_resource or "auto",
            reduction_factor=config.reduction_factor)
    return optuna.pruners.NopPruner()


def open_study(ctx: SearchContext, storage_url: str) -> optuna.Study:
    storage = get_storage(storage_url)
    with claim_lock(storage_url, ctx.study_name):  # creation races between workers
        study = optuna.create_study(
            storage=storage, study_name=ctx.study_name, direction="maximize",
            sampler=make_sampler(ctx.config, ctx.sampler_seed),
            pruner=make_pruner(ctx.config, ctx.max_epochs * len(ctx.splits)),
            load_if_exists=True)
        if "karyobench" not in study.user_attrs:
            study.set_user_attr("karyobench", {
                "task": ctx.job.task, "estimator": ctx.job.estimator, "kind": ctx.job.kind,
                "split": ctx.job.split, "repeat": ctx.job.repeat, "fold": ctx.job.fold,
                "metric": ctx.config.metric, "space": ctx.config.model_dump(mode="json")
                ["space"], "base_params": _jsonable(ctx.job.params)})
    return study


def enqueue_default(study: optuna.Study, ctx: SearchContext, trials: list) -> bool:
    """Enqueue the default trial unless the study has one that is waiting, running,
    finished, or failed in the objective (a default lost with a killed worker is
    enqueued again). Call under the claim lock, with ``trials`` fresh from the storage.

    Optuna's ``skip_if_exists`` would also skip a default that died with its worker, so
    the "already there" test is this one; ``user_attrs`` marks the trial as the default.
    """
    if ctx.default_params is None:
        return False
    if sum(t.state in ACTIVE for t in trials) >= ctx.config.n_trials:
        return False
    for t in trials:
        if t.user_attrs.get("default_trial") and (
                t.state != TrialState.FAIL or "error" in t.user_attrs):
            return False
    study.enqueue_trial(ctx.default_params, user_attrs={"default_trial": True},
                        skip_if_exists=False)
    return True


def reap_running(study: optuna.Study) -> int:
    """Mark RUNNING trials FAIL: only when no other worker can be using the study."""
    n = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        try:
            study_storage(study).set_trial_user_attr(trial_id(trial), "reaped", True)
            if study_storage(study).set_trial_state_values(trial_id(trial),
                                                           state=TrialState.FAIL):
                n += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    return n


def search(ctx: SearchContext, storage_url: str, *, wait_for_running: bool = True,
           reap: bool = False, log=None) -> optuna.Study:
    """Run trials until ``n_trials`` are finished (or claimed by other workers).

    ``wait_for_running``: also wait for other workers' running trials (needed before the
    refit); without it a worker moves on as soon as every trial is claimed.
    """
    config = ctx.config
    study = open_study(ctx, storage_url)
    if reap:
        reap_running(study)
    started = time.monotonic()
    deadline = started + config.timeout if config.timeout else None
    max_failures = max(3, config.n_trials)
    while True:
        if deadline is not None and time.monotonic() > deadline:
            break
        trial = None
        with claim_lock(storage_url, ctx.study_name):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning
                optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            if enqueue_default(study, ctx, trials):
                trials = study.get_trials(deepcopy=False)
            active = sum(t.state in ACTIVE for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            # objective errors (not trials of killed or crashed workers) cap the retries
            errors = [t for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs]
            failed = len(errors)
            if failed >= max_failures:
                last = errors[-1]
                raise KaryobenchError(
                    f"{ctx.where}: {failed} tuning trials failed in Optuna study "
                    f"'{ctx.study_name}'; last error: {last.user_attrs.get('error', '?')}")
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if active < config.n_trials or waiting:  # an enqueued trial counts as active
                # a grid's order is drawn from its seed: one seed for the whole study
                study.sampler = make_sampler(config, ctx.sampler_seed + (
                    0 if config.sampler == "grid" else len(trials)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "heartbeat ... with optimize"
                    trial = study.ask()
                storage = study_storage(study)
                if getattr(storage, "get_heartbeat_interval", lambda: None)():
                    storage.record_heartbeat(trial_id(trial))  # alive from birth
        if trial is None:
            if wait_for_running and running:
                time.sleep(POLL_SECONDS)
                continue
            break
        _run_trial(study, trial, ctx, log)
        if log:
            log(progress(study, config.n_trials, time.monotonic() - started))
    return study


def progress(study: optuna.Study, n_trials: int, elapsed: float) -> str:
    """One line of search progress: trials done / running / pruned, best so far."""
    trials = study.get_trials(deepcopy=False)
    count = {state: sum(t.state == state for t in trials) for state in TrialState}
    done = count[TrialState.COMPLETE] + count[TrialState.PRUNED]
    best = max((t for t in trials if t.state == TrialState.COMPLETE),
               key=lambda t: t.value, default=None)
    default = next((t for t in trials if t.user_attrs.get("default_trial")
                    and t.state == TrialState.COMPLETE), None)
    text = (f"  {done}/{n_trials} trials done, {count[TrialState.RUNNING]} running, "
            f"{count[TrialState.PRUNED]} pruned, {count[TrialState.FAIL]} failed")
    if best is not None:
        text += f"; best so far {best.value:.4f} (trial {best.number}"
        text += ", the default)" if best.user_attrs.get("default_trial") else ")"
    if default is not None and default is not best:
        text += f", default {default.value:.4f}"
    return text + f"; {elapsed:.0f} s"


_WORKER_IDS: dict[int, str] = {}


def worker_id() -> str:
    """A random name per worker process, recorded on its trials: tells workers apart in
    the committed storage without recording a host name or a process id."""
    return _WORKER_IDS.setdefault(os.getpid(), f"worker-{uuid.uuid4().hex[:8]}")


def _run_trial(study, trial, ctx, log) -> None:
    trial.set_user_attr("worker", worker_id())
    with Heartbeat(study_storage(study), trial_id(trial)):
        try:
            value = evaluate_trial(trial, ctx)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            state = "pruned"
        except (KeyboardInterrupt, SystemExit):
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as err:  # a bad combination: record, go on, cap the failures
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            state = f"failed ({type(err).__name__}: {err})"
        else:
            study.tell(trial, value)
            state = f"{ctx.config.metric} {value:.4f}"
    if log:
        log(f"{ctx.study_name} trial {trial.number}: {state}")


# -------------------------------------------------------------- fold ------------------

def summarize(study: optuna.Study, ctx: SearchContext) -> dict:
    """What the fold record keeps about its search (counts come from the storage)."""
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    if not complete:
        raise KaryobenchError(f"{ctx.where}: no tuning trial of Optuna study "
                              f"'{ctx.study_name}' completed; raise n_trials or timeout.")
    best = study.best_trial
    default = next((t for t in complete if t.user_attrs.get("default_trial")), None)
    fits = len(ctx.splits)
    trained = sum(int(t.user_attrs.get("epochs_trained", 0)) for t in finished)
    planned = sum(int(t.user_attrs.get("epochs_planned", 0)) for t in finished)
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds()
                  for t in finished if t.datetime_complete and t.datetime_start)
    return {
        "study_name": ctx.study_name, "metric": ctx.config.metric,
        "inner_folds": None if ctx.config.inner_holdout else ctx.config.inner_folds,
        "inner_holdout": ctx.config.inner_holdout,
        "inner_repeats": ctx.config.inner_repeats if ctx.config.inner_holdout else None,
        "inner_protocol": ctx.config.inner_protocol, "inner_fits_per_trial": fits,
        # what each inner fit sees, measured on this outer training set's splits
        "inner_train_fraction": round(float(np.mean([len(a) for a, _ in ctx.splits]))
                                      / len(ctx.y), 4),
        "pruner": ctx.config.pruner,
        "n_trials": len(finished), "n_complete": len(complete), "n_pruned": len(pruned),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
        "best_trial": best.number, "inner_best": float(best.value),
        "default_trial": default.number if default is not None else None,
        "inner_default": float(default.value) if default is not None else None,
        "best_params": params_from_optuna(best.params, ctx.config.space),
        "epochs_trained": trained, "epochs_planned": planned,
        "epochs_saved": max(0, planned - trained), "search_seconds": round(seconds, 3),
        "inner_params": _jsonable(ctx.config.inner_params),
        "trial_budgets": trial_budgets(finished),
    }


def trial_budgets(trials) -> list[list]:
    """[inner epochs trained, "complete" | "pruned"] per finished trial: how far each
    trial got on Hyperband's budget (an estimator without epochs records 0)."""
    return [[int(t.user_attrs.get("epochs_trained", 0)),
             "complete" if t.state == TrialState.COMPLETE else "pruned"]
            for t in trials if t.state in FINISHED]


def tune_fold(job: FoldJob, images: np.ndarray, labels: np.ndarray, *, log=None,
              reap: bool = False) -> FoldResult:
    """Nested CV for one outer fold: search (resuming), refit the best, score the test."""
    ctx = make_context(job, images, labels)
    storage_url = job.storage
    if not storage_url:
        raise ConfigError("a tuned fold job needs an Optuna storage URL (FoldJob.storage).")
    started = time.perf_counter()
    study = search(ctx, storage_url, wait_for_running=True, reap=reap, log=log)
    summary = summarize(study, ctx)
    params = {**job.params, **summary["best_params"]}
    scored, estimator = fit_and_score(job, params, images, labels)
    metrics, refit_seconds = scored.metrics, scored.fit_seconds
    history = getattr(estimator, "history_", None)
    refit_epochs = len(history.get("loss", [])) if history else None
    outer = float(metrics[ctx.config.metric])
    summary.update(
        storage=portable(storage_url), refit_epochs=refit_epochs,
        refit_seconds=round(refit_seconds, 3), outer_score=outer,
        gap=float(summary["inner_best"] - outer),
        this_run_seconds=round(time.perf_counter() - started, 3))
    if refit_epochs:
        summary["epochs_trained"] += refit_epochs
    fit_seconds = summary["search_seconds"] + refit_seconds  # the tuned model's true cost
    return FoldResult(job, metrics, scored.y_pred, scored.proba, fit_seconds,
                      scored.predict_seconds, extra={"tuning": summary})
