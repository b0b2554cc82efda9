"""Report tables built from a :class:`Results`: summary, per-class, pairs, t-tests, ranks, gap.

Every table says under which protocol its numbers were obtained, because a leaky
image-level split and a patient-level split answer different questions.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from karyobench.report.openings import describe_opening, read_openings
from karyobench.results_schema import LOCKBOX_DIR
from karyobench.study import shuffle_seed
from karyobench.stats import corrected_resampled_ttest, friedman_nemenyi, group_bootstrap_ci, holm_adjust

from .noise import FLOOR_RULE, difference_floor, noise_floors
from .render import Section, Table, best_mask, fmt, fmt_ci, fmt_mean_std
from .results import Results
from .scores import decoded_accuracy, decoding_applies, per_class_scores, pooled_scores, reported_estimator
from .seed import SeedReported, load_seed_reported
from .swaps import pair_swaps

FOLD_METRICS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced acc.",
    "macro_f1": "macro-F1",
    "roc_auc": "AUC",
}


def _seed_caption(seed: SeedReported, seed_task) -> str:
    if seed_task is None:
        return ""
    numbers = ", ".join(f"{seed.model_label(m)} {v:.2%}" for m, v in seed_task.accuracy.items())
    return (
        f"Seed study ({seed.citation}) on the same class set ({seed_task.description}): "
        f"pooled accuracy {numbers}; image-level, not patient-grouped, so optimistic."
    )


def _seed_value(seed: SeedReported, values: dict[str, float], estimator: str) -> float:
    model = seed.match_model(estimator)
    return float(values[model]) if model in values else float("nan")


def summary_table(results: Results, n_boot: int = 2000, alpha: float = 0.05) -> Table:
    """Estimators x metrics per (split, task): fold mean ± std, pooled accuracy, group-bootstrap CIs."""
    seed = load_seed_reported()
    seed_rng = int(results.protocol.get("seed", 0) or 0)
    level = f"{1 - alpha:.0%}"
    numbers, sections = [], []
    for split in results.splits:
        for task in results.task_names():
            classes = results.classes(task)
            seed_task = seed.match_task(classes)
            folds = results.fold_scores(split, task)
            if folds.empty:
                continue
            rows = []
            for estimator in [e for e in results.estimators if e in set(folds["estimator"])]:
                fold = folds[folds["estimator"] == estimator]
                oof = results.oof(split, task, estimator)
                row = {"split": split, "task": task, "estimator": estimator, "n_folds": len(fold)}
                for metric in FOLD_METRICS:
                    values = fold[metric].astype(float)
                    row[f"{metric}_mean"] = values.mean()
                    row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
                pooled = pooled_scores(results, oof, task) if len(oof) else {}
                row["pooled_accuracy"] = pooled.get("accuracy", np.nan)
                row["pooled_macro_f1"] = pooled.get("macro_f1", np.nan)
                row["pooled_roc_auc"] = pooled.get("roc_auc", np.nan)
                has_groups = len(oof) and oof["group"].notna().any()
                row["ci_unit"] = (results.protocol.get("group_column") or "group") if has_groups else "image"
                for metric in ("accuracy", "macro_f1"):
                    if len(oof):
                        ci = group_bootstrap_ci(
                            oof["y_true"],
                            oof["y_pred"],
                            oof["group"].to_numpy(dtype=object),
                            metric,
                            n_boot=n_boot,
                            alpha=alpha,
                            seed=seed_rng,
                        )
                        row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = ci.low, ci.high
                        row["ci_n_groups"] = ci.n_groups
                    else:
                        row[f"{metric}_ci_low"] = row[f"{metric}_ci_high"] = np.nan
                row["decoded_accuracy"] = (
                    decoded_accuracy(results, oof, task) if len(oof) and decoding_applies(oof, classes) else np.nan
                )
                row["fit_seconds_mean"] = fold["fit_seconds"].astype(float).mean()
                row["seed_model"] = seed.match_model(estimator) if seed_task else None
                row["seed_accuracy"] = _seed_value(seed, seed_task.accuracy, estimator) if seed_task else np.nan
                rows.append(row)
            frame = pd.DataFrame(rows)
            numbers.append(frame)
            sections.append(_summary_section(results, split, task, frame, seed, seed_task, level))
    numbers_frame = pd.concat(numbers, ignore_index=True) if numbers else pd.DataFrame()
    return Table(
        name="summary",
        title=f"Summary: {results.name}",
        sections=sections,
        numbers=numbers_frame,
        caption=results.protocol_text(),
        notes=[
            "Fold columns: mean ± std over folds. Pooled acc.: accuracy of all out-of-fold "
            "predictions together (as the seed study reports it). CIs: percentile bootstrap "
            "resampling whole groups, not images.",
            *_seed_note(results.n_train_seeds),
            *_lockbox_note(results),
            *_primary_note(results.protocol.get("primary")),
            *_ensemble_notes(results.protocol.get("ensembles") or {}),
        ],
    )


def _lockbox_note(results: Results) -> list[str]:
    """The one score no model choice has seen, and how often it was looked at."""
    openings = read_openings(results.path / LOCKBOX_DIR)
    if not openings:
        if results.protocol.get("lockbox"):
            return ["A lockbox of whole groups is set aside (protocol.json) and was not "
                    "opened: no number here comes from it."]
        return []
    last = openings[-1]
    times = "once" if len(openings) == 1 else f"{len(openings)} times (reopened)"
    return [f"Lockbox (whole groups never trained or scored on by any run): "
            f"{describe_opening(last)}; opened {times}, last on "
            f"{last['opened_utc']}."]


def _seed_note(n_train_seeds: int) -> list[str]:
    if n_train_seeds < 2:
        return []
    return [f"Every fold was trained under {n_train_seeds} training seeds: fold columns "
            "average each fold over the seeds; pooled accuracy, CIs and decoding are "
            "training seed 0's predictions; noise_floor.md gives the spread over seeds."]


def _primary_note(primary: str | None) -> list[str]:
    """Name the model the study declared as its result, so no row is read as picked later."""
    if not primary:
        return []
    return [f"{primary}: the study's declared primary result (`primary:` in the study file, "
            "fixed before the run); the other rows are comparisons, and a higher score among "
            "them was not declared in advance."]


def _ensemble_notes(ensembles: dict) -> list[str]:
    """Say what an ensemble row is, so its fit seconds are not read as one model's."""
    return [f"{name}: soft vote ({spec.get('rule', 'mean of member probabilities')}) of "
            f"{', '.join(spec['members'])}"
            + (f" with weights {spec['weights']}" if spec.get("weights") else "")
            + "; trained nothing itself, its fit s is the sum of its members'."
            for name, spec in ensembles.items()]


def _summary_section(results, split, task, frame, seed, seed_task, level) -> Section:
    display = pd.DataFrame(index=pd.Index(frame["estimator"], name="estimator"))
    raw = pd.DataFrame(index=display.index)
    for metric, label in FOLD_METRICS.items():
        display[label] = [
            fmt_mean_std(m, s) for m, s in zip(frame[f"{metric}_mean"], frame[f"{metric}_std"], strict=True)
        ]
        raw[label] = frame[f"{metric}_mean"].to_numpy()
    display["pooled acc."] = [fmt(v) for v in frame["pooled_accuracy"]]
    raw["pooled acc."] = frame["pooled_accuracy"].to_numpy()
    display[f"acc. {level} CI"] = [
        fmt_ci(a, b) for a, b in zip(frame["accuracy_ci_low"], frame["accuracy_ci_high"], strict=True)
    ]
    display[f"macro-F1 {level} CI"] = [
        fmt_ci(a, b) for a, b in zip(frame["macro_f1_ci_low"], frame["macro_f1_ci_high"], strict=True)
    ]
    if frame["decoded_accuracy"].notna().any():
        display["karyotype-decoded acc."] = [fmt(v) for v in frame["decoded_accuracy"]]
        raw["karyotype-decoded acc."] = frame["decoded_accuracy"].to_numpy()
    display["fit s"] = [fmt(v, 2) for v in frame["fit_seconds_mean"]]
    raw["fit s"] = frame["fit_seconds_mean"].to_numpy()
    if seed_task is not None:
        display["seed reported acc."] = [fmt(v, 4) for v in frame["seed_accuracy"]]
        raw["seed reported acc."] = np.nan
    higher = {label: True for label in raw.columns if label not in ("fit s", "seed reported acc.")}
    higher["fit s"] = False
    bold = best_mask(raw, higher).reindex(columns=display.columns, fill_value=False)
    unit = frame["ci_unit"].iloc[0] if len(frame) else "image"
    n_units = int(frame["ci_n_groups"].max()) if "ci_n_groups" in frame and len(frame) else 0
    if unit != "image":
        resampled = f"whole groups ({unit}, {n_units} groups)"
    else:
        resampled = f"images ({n_units}; no groups known)"
    caption = f"{len(results.classes(task))} classes. {results.protocol_text(split)}. CIs resample {resampled}."
    return Section(
        title=f"{task} — {split} split",
        frame=display,
        bold=bold,
        caption=caption,
        note=_seed_caption(seed, seed_task),
    )


def per_class_tables(results: Results) -> list[Table]:
    """One table per (split, task): precision / recall / F1 per estimator and support."""
    seed = load_seed_reported()
    tables = []
    for split in results.splits:
        for task in results.task_names():
            classes = results.classes(task)
            seed_task = seed.match_task(classes)
            estimators = [e for e in results.estimators if len(results.oof(split, task, e))]
            if not estimators:
                continue
            display = pd.DataFrame(index=pd.Index(classes, name="class"))
            numbers = []
            f1_columns = []
            support = None
            for estimator in estimators:
                scores = per_class_scores(results.oof(split, task, estimator), classes)
                support = scores["support"]
                for metric, label in (("precision", "P"), ("recall", "R"), ("f1", "F1")):
                    display[f"{estimator} {label}"] = [fmt(v) for v in scores[metric]]
                f1_columns.append(f"{estimator} F1")
                numbers.append(scores.reset_index().assign(split=split, task=task, estimator=estimator))
            display["support"] = [str(int(v)) for v in support]
            if seed_task is not None and seed_task.recall:
                for model, recalls in seed_task.recall.items():
                    display[f"seed {model.upper()} R"] = [fmt(recalls.get(c, np.nan)) for c in classes]
            macro = {}
            for column in display.columns:
                if column == "support":
                    macro[column] = str(int(support.sum()))
                elif column.startswith("seed "):
                    model = column.split()[1].lower()
                    macro[column] = fmt(seed_task.macro_recall.get(model, np.nan))
                else:
                    estimator, label = column.rsplit(" ", 1)
                    metric = {"P": "precision", "R": "recall", "F1": "f1"}[label]
                    values = [n for n in numbers if n["estimator"].iloc[0] == estimator][0][metric]
                    macro[column] = fmt(values.mean())
            display.loc["macro avg"] = pd.Series(macro)
            bold = pd.DataFrame(False, index=display.index, columns=display.columns)
            if len(f1_columns) > 1:
                f1 = display[f1_columns].apply(pd.to_numeric, errors="coerce")
                bold[f1_columns] = f1.eq(f1.max(axis=1), axis=0).to_numpy()
            note = _seed_caption(seed, seed_task) if seed_task and seed_task.recall else ""
            frame = pd.concat(numbers, ignore_index=True)
            frame = frame[["split", "task", "estimator", "class", "precision", "recall", "f1", "support"]]
            tables.append(
                Table(
                    name=f"{split}__{task}",
                    title=f"Per-class scores: {task} ({split} split)",
                    sections=[Section("", display, bold, note=note)],
                    numbers=frame,
                    caption=f"From pooled out-of-fold predictions; best F1 per class in bold. "
                    f"{results.protocol_text(split)}",
                )
            )
    return tables


def pair_table(results: Results) -> Table | None:
    """Binary tasks (abnormal pairs): pooled accuracy and AUC per estimator, seed beside."""
    seed = load_seed_reported()
    binary = [t for t in results.task_names() if results.is_binary(t)]
    if not binary:
        return None
    sections, numbers = [], []
    for split in results.splits:
        display_rows, raw_rows = [], []
        for task in binary:
            seed_task = seed.match_task(results.classes(task))
            shown, raw = {}, {}
            for estimator in results.estimators:
                oof = results.oof(split, task, estimator)
                if not len(oof):
                    continue
                pooled = pooled_scores(results, oof, task)
                shown[f"{estimator} acc."] = fmt(pooled["accuracy"])
                shown[f"{estimator} AUC"] = fmt(pooled["roc_auc"])
                raw[f"{estimator} acc."] = pooled["accuracy"]
                numbers.append(
                    {
                        "split": split,
                        "task": task,
                        "classes": " vs ".join(results.classes(task)),
                        "estimator": estimator,
                        "accuracy": pooled["accuracy"],
                        "roc_auc": pooled["roc_auc"],
                        "n_images": len(oof[oof["repeat"] == oof["repeat"].min()]),
                        "seed_task": seed_task.key if seed_task else None,
                        "seed_dcnn_accuracy": seed_task.accuracy.get("dcnn", np.nan) if seed_task else np.nan,
                        "seed_dcnn_roc_auc": seed_task.roc_auc.get("dcnn", np.nan) if seed_task else np.nan,
                    }
                )
            if not shown:
                continue
            shown["seed DCNN acc."] = fmt(seed_task.accuracy.get("dcnn", np.nan), 4) if seed_task else "—"
            shown["seed DCNN AUC"] = fmt(seed_task.roc_auc.get("dcnn", np.nan), 4) if seed_task else "—"
            label = f"{task} ({' vs '.join(results.classes(task))})"
            display_rows.append(pd.Series(shown, name=label))
            raw_rows.append(pd.Series(raw, name=label))
        if not display_rows:
            continue
        display = pd.DataFrame(display_rows).fillna("—")
        display.index.name = "pair"
        raw = pd.DataFrame(raw_rows).reindex(columns=display.columns)
        bold = pd.DataFrame(False, index=display.index, columns=display.columns)
        acc_columns = [c for c in raw.columns if c.endswith(" acc.") and not c.startswith("seed")]
        if len(acc_columns) > 1:
            values = raw[acc_columns].astype(float)
            bold[acc_columns] = values.eq(values.max(axis=1), axis=0).to_numpy()
        sections.append(Section(f"{split} split", display, bold, caption=results.protocol_text(split)))
    return Table(
        name="pairs",
        title="Abnormal pairs (binary tasks)",
        sections=sections,
        numbers=pd.DataFrame(numbers),
        caption="Pooled out-of-fold accuracy and AUC (positive class = second class). Seed values: "
        f"{load_seed_reported().citation}, image-level protocol.",
    )


def ttest_table(results: Results, metric: str = "accuracy") -> Table:
    """All estimator pairs per (split, task): Nadeau-Bengio corrected resampled t-test."""
    n_repeats = int(results.protocol.get("n_repeats", 1) or 1)
    floors = noise_floors(results, metric)
    sections, numbers = [], []
    for split in results.splits:
        for task in results.task_names():
            folds = results.fold_scores(split, task)
            estimators = [e for e in results.estimators if e in set(folds["estimator"])]
            rows = []
            for a, b in combinations(estimators, 2):
                fa = folds[folds["estimator"] == a].set_index(["repeat", "fold"])
                fb = folds[folds["estimator"] == b].set_index(["repeat", "fold"])
                paired = fa.merge(fb, how="inner", left_index=True, right_index=True, suffixes=("_a", "_b"))
                row = {
                    "split": split,
                    "task": task,
                    "estimator_a": a,
                    "estimator_b": b,
                    "metric": metric,
                    "n_scores": len(paired),
                    f"{metric}_a": fa[metric].mean(),
                    f"{metric}_b": fb[metric].mean(),
                }
                valid = paired[[f"{metric}_a", f"{metric}_b"]].notna().all(axis=1)
                paired = paired[valid]
                if len(paired) >= 2 and len(paired) % n_repeats == 0:
                    result = corrected_resampled_ttest(
                        paired[f"{metric}_a"],
                        paired[f"{metric}_b"],
                        paired["n_train_a"],
                        paired["n_test_a"],
                        n_repeats=n_repeats,
                    )
                    row.update(mean_diff=result.mean_diff, t=result.t, df=result.df, p=result.p)
                else:
                    row.update(mean_diff=np.nan, t=np.nan, df=np.nan, p=np.nan)
                row["noise_floor"] = difference_floor(floors, split, task, a, b)
                row["under_floor"] = (bool(abs(row["mean_diff"]) < row["noise_floor"])
                                      if np.isfinite(row["noise_floor"])
                                      and np.isfinite(row["mean_diff"]) else None)
                rows.append(row)
            if not rows:
                continue
            frame = pd.DataFrame(rows)
            frame["p_holm"] = holm_adjust(frame["p"].to_numpy())
            numbers.append(frame)
            display = pd.DataFrame(
                {
                    f"{metric} A": [fmt(v) for v in frame[f"{metric}_a"]],
                    f"{metric} B": [fmt(v) for v in frame[f"{metric}_b"]],
                    "mean diff (A−B)": [fmt(v) for v in frame["mean_diff"]],
                    "t": [fmt(v, 2) for v in frame["t"]],
                    "df": [fmt(int(v)) if not np.isnan(v) else "—" for v in frame["df"].astype(float)],
                    "p": [fmt(v, 4) for v in frame["p"]],
                    "p (Holm)": [fmt(v, 4) for v in frame["p_holm"]],
                    "noise floor": [fmt(v) for v in frame["noise_floor"]],
                    "vs floor": [{True: "under floor", False: "exceeds"}.get(v, "not measured")
                                 for v in frame["under_floor"]],
                },
                index=pd.Index(
                    [f"{a} vs {b}" for a, b in zip(frame["estimator_a"], frame["estimator_b"], strict=True)],
                    name="A vs B",
                ),
            )
            bold = pd.DataFrame(False, index=display.index, columns=display.columns)
            bold["p (Holm)"] = (frame["p_holm"] < 0.05).to_numpy()
            sections.append(Section(f"{task} — {split} split", display, bold))
    note = (
        "Nadeau & Bengio (2003) corrected resampled t-test on paired fold scores "
        "(variance x (1/J + n_test/n_train), df = J − 1; Bouckaert & Frank 2004 for repeats). "
        "Holm adjustment within each task; adjusted p < 0.05 in bold. "
        + ("Fold scores are averaged over training seeds first. A difference under the "
           f"retraining-noise floor is not a finding, whatever its p ({FLOOR_RULE})."
           if not floors.empty else
           "Retraining noise not measured in this study (cv.train_seeds: 1): a "
           "difference inside another study's measured floor is not a finding.")
    )
    if not sections:
        note = "No task has two estimators to compare. " + note
    return Table(
        name="ttests",
        title=f"Pairwise corrected t-tests ({metric})",
        sections=sections,
        numbers=pd.concat(numbers, ignore_index=True) if numbers else pd.DataFrame(),
        caption=results.protocol_text(),
        notes=[note],
    )


def ranking_table(results: Results, metric: str = "accuracy") -> Table:
    """Friedman test + Nemenyi CD over tasks, per split (says when it does not apply)."""
    sections, numbers, notes = [], [], []
    for split in results.splits:
        folds = results.folds[results.folds["split"] == split]
        scores = folds.pivot_table(index="task", columns="estimator", values=metric, aggfunc="mean")
        scores = scores.reindex(columns=[e for e in results.estimators if e in scores.columns])
        result = friedman_nemenyi(scores)
        ranks = result.average_ranks
        display = pd.DataFrame(
            {
                "average rank": [fmt(v, 2) for v in ranks],
                f"mean {metric}": [fmt(scores[e].mean()) for e in ranks.index],
            },
            index=pd.Index(ranks.index, name="estimator"),
        )
        bold = pd.DataFrame(False, index=display.index, columns=display.columns)
        if len(display):
            bold.iloc[0, 0] = True
        if result.applicable:
            caption = (
                f"Friedman chi² = {result.statistic:.3f}, p = {result.p:.4g} over {result.n_tasks} tasks; "
                f"Nemenyi critical difference (alpha {result.alpha}) = {result.critical_difference:.3f} ranks."
            )
            if result.reason != "ok":
                caption += f" Note: {result.reason}."
        else:
            caption = f"Not applicable: {result.reason}."
        sections.append(Section(f"{split} split", display, bold, caption=caption))
        for estimator, rank in ranks.items():
            numbers.append(
                {
                    "split": split,
                    "estimator": estimator,
                    "average_rank": rank,
                    "n_tasks": result.n_tasks,
                    "applicable": result.applicable,
                    "friedman_statistic": result.statistic,
                    "friedman_p": result.p,
                    "nemenyi_cd": result.critical_difference,
                    "reason": result.reason,
                }
            )
    notes.append(
        "Ranks of mean fold " + metric + " within each task (1 = best), averaged over tasks "
        "(Demšar 2006). Two estimators differ when their average ranks differ by more than the CD."
    )
    return Table(
        "ranking", "Ranking across tasks", sections, pd.DataFrame(numbers), caption=results.protocol_text(), notes=notes
    )


def gap_table(results: Results) -> Table | None:
    """Leakier splits vs the group-level split for the same estimator: how much leakage
    flatters. The image-level split (the seed's) and any finer grouping (``group:<column>``,
    e.g. cells of one patient on both sides) are each set against ``group``."""
    leaky = [s for s in results.splits if s == "image" or s.startswith("group:")]
    if "group" not in results.splits or not leaky:
        return None
    seed = load_seed_reported()
    rows = []
    for task in results.task_names():
        seed_task = seed.match_task(results.classes(task))
        for estimator in results.estimators:
            group = results.oof("group", task, estimator)
            others = {s: results.oof(s, task, estimator) for s in leaky}
            if not len(group) or not all(len(o) for o in others.values()):
                continue
            group_acc = pooled_scores(results, group, task)["accuracy"]
            row = {"task": task, "estimator": estimator}
            for split, oof in others.items():
                name = _split_column(split)
                row[f"{name}_mean_accuracy"] = results.fold_scores(split, task, estimator)["accuracy"].mean()
            row["group_mean_accuracy"] = results.fold_scores("group", task, estimator)["accuracy"].mean()
            for split, oof in others.items():
                row[f"{_split_column(split)}_pooled_accuracy"] = pooled_scores(results, oof, task)["accuracy"]
            row["group_pooled_accuracy"] = group_acc
            for split in leaky:
                name = _split_column(split)
                key = "gap" if split == "image" else f"gap_{name}"
                row[key] = row[f"{name}_pooled_accuracy"] - group_acc
            row["seed_accuracy"] = _seed_value(seed, seed_task.accuracy, estimator) if seed_task else np.nan
            rows.append(row)
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    columns, bold_columns = {}, []
    for split in leaky:
        columns[f"{_split_label(split)} acc."] = [fmt(v) for v in frame[f"{_split_column(split)}_pooled_accuracy"]]
    columns["group-level acc."] = [fmt(v) for v in frame["group_pooled_accuracy"]]
    for split in leaky:
        label = f"gap ({_split_label(split)} − group)"
        key = "gap" if split == "image" else f"gap_{_split_column(split)}"
        columns[label] = [fmt(v) for v in frame[key]]
        bold_columns.append((label, key))
    columns["seed reported acc."] = [fmt(v, 4) for v in frame["seed_accuracy"]]
    display = pd.DataFrame(
        columns,
        index=pd.Index(
            [f"{t} / {e}" for t, e in zip(frame["task"], frame["estimator"], strict=True)], name="task / estimator"
        ),
    )
    bold = pd.DataFrame(False, index=display.index, columns=display.columns)
    for label, key in bold_columns:
        bold[label] = (frame[key] > 0.05).to_numpy()
    finer = [s.split(":", 1)[1] for s in leaky if s != "image"]
    what = "the leaky image-level split" if "image" in leaky else ""
    if finer:
        what += (" and " if what else "") + ", ".join(f"the {c}-grouped split" for c in finer)
    return Table(
        name="protocol_gap",
        title="Protocol gap: " + " / ".join(_split_label(s) for s in leaky) + " vs group-level split",
        sections=[Section("", display, bold)],
        numbers=frame,
        caption=f"Pooled out-of-fold accuracy of the same estimator under {what} "
        f"and the {results.protocol.get('group_column') or 'group'}-grouped split; gaps above 0.05 in bold. "
        f"{results.protocol_text()}",
    )


def _split_column(split: str) -> str:
    """'image' -> 'image'; 'group:cell_id' -> 'group_cell_id' (column-name safe)."""
    return split.replace(":", "_")


def _split_label(split: str) -> str:
    return "image-level" if split == "image" else f"{split.split(':', 1)[1]}-grouped"


def repeat_table(results: Results) -> Table | None:
    """Each repeat's scores side by side: a replication on a fresh partition, not a pool.

    Repeat r reshuffles the folds with seed + r, so agreement between repeats says how
    much of a score is the particular partition rather than the model.
    """
    n_repeats = int(results.protocol.get("n_repeats", 1) or 1)
    if n_repeats < 2:
        return None
    seed = int(results.protocol.get("seed", 0) or 0)
    rows, sections = [], []
    for split in results.splits:
        for task in results.task_names():
            classes = results.classes(task)
            section_rows = []
            for estimator in results.estimators:
                oof = results.oof(split, task, estimator)
                folds = results.fold_scores(split, task, estimator)
                if not len(folds):
                    continue
                decodes = len(oof) and decoding_applies(oof, classes)
                for repeat, fold in folds.groupby("repeat", sort=True):
                    part = oof[oof["repeat"] == repeat]
                    section_rows.append({
                        "split": split, "task": task, "estimator": estimator,
                        "repeat": int(repeat), "shuffle_seed": shuffle_seed(seed, int(repeat)),
                        "n_folds": len(fold),
                        "accuracy_mean": fold["accuracy"].astype(float).mean(),
                        "accuracy_std": fold["accuracy"].astype(float).std(ddof=1)
                        if len(fold) > 1 else np.nan,
                        "pooled_accuracy": pooled_scores(results, part, task)["accuracy"]
                        if len(part) else np.nan,
                        "decoded_accuracy": decoded_accuracy(results, part, task) if decodes else np.nan,
                    })
            if not section_rows:
                continue
            rows += section_rows
            sections.append(_repeat_section(split, task, pd.DataFrame(section_rows)))
    if not rows:
        return None
    return Table(
        name="repeats",
        title=f"Per repeat: {results.name}",
        sections=sections,
        numbers=pd.DataFrame(rows),
        caption=results.protocol_text(),
        notes=["Each repeat deals the groups into new folds (its shuffle seed in the header); "
               "accuracy is mean ± std over that repeat's folds, decoded is the pooled "
               "accuracy after karyotype-level assignment decoding. The summary averages "
               "the repeats."],
    )


def _repeat_section(split: str, task: str, frame: pd.DataFrame) -> Section:
    display = pd.DataFrame(index=pd.Index(list(dict.fromkeys(frame["estimator"])), name="estimator"))
    for repeat, part in frame.groupby("repeat", sort=True):
        part = part.set_index("estimator").reindex(display.index)
        label = f"repeat {repeat + 1} (seed {int(part['shuffle_seed'].max())})"
        display[f"{label} acc."] = [fmt_mean_std(m, s) for m, s in
                                    zip(part["accuracy_mean"], part["accuracy_std"], strict=True)]
        if part["decoded_accuracy"].notna().any():
            display[f"{label} decoded"] = [fmt(v) for v in part["decoded_accuracy"]]
    means = frame.groupby("estimator", sort=False)["accuracy_mean"].mean().reindex(display.index)
    spread = frame.groupby("estimator", sort=False)["accuracy_mean"].agg(np.ptp).reindex(display.index)
    display["mean of repeats"] = [fmt(v) for v in means]
    display["max − min"] = [fmt(v) for v in spread]
    return Section(title=f"{task} — {split} split", frame=display)


def swap_table(results: Results) -> Table | None:
    """Cells in which two classes are predicted wholly as each other, and how many models agree."""
    rows, sections = [], []
    for split in results.splits:
        for task in results.task_names():
            classes = results.classes(task)
            found = {}
            for estimator in results.estimators:
                oof = results.oof(split, task, estimator)
                if not len(oof) or not decoding_applies(oof, classes):
                    continue
                first = oof[oof["repeat"] == oof["repeat"].min()]
                found[estimator] = pair_swaps(first, results.proba(first, task), classes)
            if not found:
                continue
            model = reported_estimator(results, split, task)
            swaps = found.get(model, pd.DataFrame())
            if not len(swaps):
                continue
            cells = ["group", "class_a", "class_b"]
            found_by = [set(f[cells].itertuples(index=False, name=None)) for f in found.values()]
            agree = [sum(cell in each for each in found_by)
                     for cell in swaps[cells].itertuples(index=False, name=None)]
            frame = swaps.assign(split=split, task=task, estimator=model, models_agreeing=agree,
                                 n_models=len(found))
            rows.append(frame)
            display = pd.DataFrame({
                "classes": [f"{a} ↔ {b}" for a, b in zip(frame["class_a"], frame["class_b"], strict=True)],
                "images": frame["n_images"].to_numpy(),
                "lowest probability": [fmt(v) for v in frame["min_probability"]],
                "models agreeing": [f"{k} of {len(found)}" for k in agree],
            }, index=pd.Index(frame["group"], name=results.protocol.get("group_column") or "group"))
            sections.append(Section(title=f"{task} — {split} split ({model})", frame=display))
    if not rows:
        return None
    return Table(
        name="suspect_swaps",
        title=f"Suspected label swaps: {results.name}",
        sections=sections,
        numbers=pd.concat(rows, ignore_index=True),
        caption=results.protocol_text(),
        notes=["Cells (groups of a whole karyotype) in which every crop of one class is "
               "predicted as a second class and every crop of the second as the first, by the "
               "study's declared primary model, or the most accurate one when none is declared "
               "(first repeat); 'models agreeing' counts the study's models "
               "that find the same swap. These look like annotation swaps; the labels are kept "
               "as given and every score counts them as errors."],
    )
