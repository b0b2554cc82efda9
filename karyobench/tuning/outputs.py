"""What a tuning run leaves under ``<results>/tuning/``.

* ``folds/<job key>.json``   one record per outer fold (written as each fold finishes);
* ``best_params.csv|md``     best parameters (layer widths ...) per outer fold, the inner
                             best score (optimistic) beside the outer score (honest), gap;
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

IDENT = ["split", "task", "estimator", "repeat", "fold"]


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
        row.update(metric=r["metric"], inner_best=r["inner_best"], outer=r["outer_score"],
                   gap=r["gap"], n_trials=r["n_trials"], n_pruned=r["n_pruned"],
                   epochs_trained=r["epochs_trained"], epochs_saved=r["epochs_saved"],
                   search_s=r["search_seconds"])
        for name, value in r["best_params"].items():
            row[name] = _show(value)
        rows.append(row)
    return pd.DataFrame(rows)


def gap_table(table: pd.DataFrame) -> pd.DataFrame:
    group = ["split", "task", "estimator", "metric"]
    return (table.groupby(group, sort=False)
            .agg(folds=("fold", "size"), inner_best=("inner_best", "mean"),
                 outer=("outer", "mean"), gap=("gap", "mean"),
                 trials=("n_trials", "sum"), pruned=("n_pruned", "sum"),
                 epochs_saved=("epochs_saved", "sum"))
            .reset_index())


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

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
            *_inner_params_lines(records),
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
