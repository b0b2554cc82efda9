"""What a tuning run leaves under ``<results>/tuning/``.

* ``folds/<job key>.json``   one record per outer fold (written as each fold finishes);
* ``best_params.csv|md``     best parameters (layer widths ...) per outer fold, the default
                             trial's and the winner's inner scores, the inner best
                             (optimistic) beside the outer score (honest), gap; the
                             inner protocol and its cost;
* ``gap.csv``                mean inner-best vs outer score per (split, task, estimator);
* ``importances.csv``        Optuna's parameter importances per outer fold;
* ``<estimator>.<split>.r<r>f<f>.history.png|importances.png`` Optuna's own plots.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from karyobench.evaluation.store import atomic_write_text
from karyobench.results_schema import CELL

IDENT = list(CELL)


def save_fold_record(out_dir: Path, job, result) -> Path:
    """``tuning/folds/<key>.json``: the fold's identity, outer metrics and search summary."""
    record = {**{k: getattr(job, k) for k in IDENT}, "key": job.key,
              "metrics": result.metrics, **result.extra.get("tuning", {})}
    path = Path(out_dir) / "tuning" / "folds" / f"{job.key}.json"
    atomic_write_text(path, json.dumps(record, indent=1, default=_default))
    return path


def _default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def load_records(out_dir: Path, keys: list[str] | None = None) -> list[dict]:
    folder = Path(out_dir) / "tuning" / "folds"
    if not folder.is_dir():
        return []
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if keys is not None:
        wanted = set(keys)
        records = [r for r in records if r["key"] in wanted]
    return sorted(records, key=lambda r: tuple(str(r[k]) for k in IDENT))


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def best_params_table(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        row = {k: r[k] for k in IDENT}
        default = r.get("inner_default")
        row.update(metric=r["metric"], inner_default=np.nan if default is None else default,
                   inner_best=r["inner_best"], winner=_winner(r), outer=r["outer_score"],
                   gap=r["gap"], n_trials=r["n_trials"], n_pruned=r["n_pruned"],
                   epochs_trained=r["epochs_trained"], epochs_saved=r["epochs_saved"],
                   search_s=r["search_seconds"])
        for name, value in r["best_params"].items():
            row[name] = _show(value)
        rows.append(row)
    return pd.DataFrame(rows)


def _winner(record: dict) -> str:
    """Which trial won: "default" (the enqueued default trial) or "trial <number>"."""
    if record.get("default_trial") is None:
        return f"trial {record['best_trial']}"
    return "default" if record["best_trial"] == record["default_trial"] \
        else f"trial {record['best_trial']}"


def gap_table(table: pd.DataFrame) -> pd.DataFrame:
    group = ["split", "task", "estimator", "metric"]
    return (table.groupby(group, sort=False)
            .agg(folds=("fold", "size"), inner_default=("inner_default", "mean"),
                 inner_best=("inner_best", "mean"),
                 outer=("outer", "mean"), gap=("gap", "mean"),
                 trials=("n_trials", "sum"), pruned=("n_pruned", "sum"),
                 epochs_saved=("epochs_saved", "sum"))
            .reset_index())


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "-" if np.isnan(v) else f"{v:.4f}"
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _inner_params_lines(records: list[dict]) -> list[str]:
    """Say which estimators searched with cheaper inner fits than the refit they report."""
    inner = {r["estimator"]: r.get("inner_params") for r in records if r.get("inner_params")}
    if not inner:
        return []
    shown = "; ".join(f"{name}: {json.dumps(params, sort_keys=True)}"
                      for name, params in sorted(inner.items()))
    return [f"Inner fits only (`inner_params`): {shown}. `inner_best` comes from those "
            "cheaper fits; `outer` from the refit with the estimator's own parameters.", ""]


def _protocol_lines(records: list[dict]) -> list[str]:
    """The inner protocol of each estimator and what it costs per trial."""
    lines = []
    for name in sorted({r["estimator"] for r in records}):
        mine = [r for r in records if r["estimator"] == name]
        r = mine[0]
        if "inner_protocol" not in r:  # records written before the protocol was recorded
            lines.append(f"- {name}: {r['inner_folds']}-fold inner CV "
                         f"({r['inner_folds']} inner fits per trial).")
            continue
        seen = np.mean([m["inner_train_fraction"] for m in mine])
        fits = r["inner_fits_per_trial"]
        repeats = r.get("inner_repeats") or 1
        if not r.get("inner_holdout"):
            protocol = f"{r['inner_folds']}-fold inner CV"
        elif repeats == 1:
            protocol = f"grouped stratified hold-out of about {r['inner_holdout']:.0%}"
        else:
            protocol = (f"{repeats} disjoint grouped stratified hold-outs of about "
                        f"{r['inner_holdout']:.0%} each (score: their mean)")
        lines.append(f"- {name}: {protocol}, pruner {r['pruner']}: {fits} inner "
                     f"fit{'s' if fits != 1 else ''} per trial, each on {seen:.0%} of the "
                     "outer training set.")
    return ["Inner protocol and cost per trial:", "", *lines, ""]


def _default_lines(records: list[dict]) -> list[str]:
    with_default = [r for r in records if r.get("default_trial") is not None]
    if not with_default:
        return ["No default trial was enqueued (`default_trial: false` or a grid): the",
                "search may pick a model whose inner score is below the default's.", ""]
    kept = sum(r["best_trial"] == r["default_trial"] for r in with_default)
    return ["`inner_default` is the inner score of the estimator's own parameters, the",
            "first trial of every search (never pruned): the winner's `inner_best` is at",
            f"least that. The default won {kept} of {len(with_default)} searches.", ""]


def _budget_lines(records: list[dict], storage_url: str | None) -> list[str]:
    """Trials per budget: how many trials stopped at each number of inner epochs (from
    the fold records; records written before they kept it are read from the storage)."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for r in records:
        budgets = r.get("trial_budgets")
        if budgets is None and storage_url:
            budgets = _stored_budgets(r["study_name"], storage_url)
        if budgets:
            counts.setdefault(r["estimator"], Counter()).update(
                (int(epochs), state) for epochs, state in budgets)
    if not any(epochs for count in counts.values() for epochs, _ in count):
        return []  # no epochs (baselines): nothing to say per budget
    rows = [f"| {name} | {epochs} | {count[(epochs, 'complete')]} | "
            f"{count[(epochs, 'pruned')]} |"
            for name, count in sorted(counts.items())
            for epochs in sorted({e for e, _ in count})]
    return ["Trials per budget (inner epochs a trial trained before it finished or was "
            "pruned, summed over outer folds):", "",
            "| estimator | inner epochs | complete | pruned |", "|---|---|---|---|", *rows, ""]


def _stored_budgets(study_name: str, storage_url: str) -> list[list] | None:
    import optuna

    from karyobench.tuning.nested import trial_budgets
    from karyobench.tuning.storage import get_storage

    try:
        study = optuna.load_study(study_name=study_name, storage=get_storage(storage_url))
    except KeyError:
        return None
    return trial_budgets(study.get_trials(deepcopy=False))


def write_tuning_outputs(out_dir: Path, storage_url: str | None = None,
                         keys: list[str] | None = None) -> list[Path]:
    """Tables from the fold records; plots from the Optuna studies (if ``storage_url``)."""
    out_dir = Path(out_dir)
    folder = out_dir / "tuning"
    records = load_records(out_dir, keys)
    if not records:
        return []
    written = []
    table = best_params_table(records)
    gaps = gap_table(table)
    atomic_write_text(folder / "best_params.csv", table.to_csv(index=False))
    atomic_write_text(folder / "gap.csv", gaps.to_csv(index=False))
    text = ["# Nested-CV tuning: best parameters per outer fold", "",
            "`inner_best` is the best mean inner-CV score the search found (optimistic: it",
            "selected the maximum); `outer` is the refitted best model on the untouched",
            "outer test fold (honest); `gap` = inner_best - outer.", "",
            *_protocol_lines(records), *_default_lines(records),
            *_inner_params_lines(records), *_budget_lines(records, storage_url),
            _markdown(table), "## Inner best vs outer score", "", _markdown(gaps)]
    atomic_write_text(folder / "best_params.md", "\n".join(text))
    written += [folder / "best_params.csv", folder / "gap.csv", folder / "best_params.md"]
    if storage_url:
        written += _study_plots(records, storage_url, folder)
    return written


def _study_plots(records, storage_url, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    from karyobench.tuning.storage import get_storage

    storage = get_storage(storage_url)
    written, importance_rows = [], []
    for r in records:
        stem = f"{r['estimator']}.{r['task']}.{r['split']}.r{r['repeat']}f{r['fold']}"
        try:
            study = optuna.load_study(study_name=r["study_name"], storage=storage)
        except KeyError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna's matplotlib API is "experimental"
            written += _save_optuna_plot(ovm.plot_optimization_history, study,
                                         f"optimisation history: {stem}",
                                         folder / f"{stem}.history.png")
            complete = study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.COMPLETE,))
            if len(complete) < 2:
                continue
            try:
                importances = optuna.importance.get_param_importances(study)
            except Exception as err:  # noqa: BLE001 — e.g. a single distinct value
                logging.getLogger(__name__).warning("importances %s: %s", stem, err)
                continue
            for name, value in importances.items():
                importance_rows.append({**{k: r[k] for k in IDENT}, "param": name,
                                        "importance": float(value)})
            written += _save_optuna_plot(ovm.plot_param_importances, study,
                                         f"parameter importances: {stem}",
                                         folder / f"{stem}.importances.png")
    plt.close("all")
    if importance_rows:
        path = folder / "importances.csv"
        atomic_write_text(path, pd.DataFrame(importance_rows).to_csv(index=False))
        written.append(path)
    return written


def _save_optuna_plot(plot, study, title: str, path: Path) -> list[Path]:
    """One of Optuna's matplotlib plots as a PNG; a plot never fails a run."""
    import matplotlib.pyplot as plt

    try:
        ax = plot(study)
        ax.set_title(title, fontsize=9)
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        return [path]
    except Exception as err:  # noqa: BLE001 - e.g. too few trials for the plot
        logging.getLogger(__name__).warning("%s: %s", title, err)
        return []
