"""Put two results folders side by side (e.g. two data sets, two code versions, two protocols)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from karyobench import results_schema as schema
from karyobench.errors import DataError

from karyobench import atomic
from .html_page import build_html
from .render import Section, Table, best_mask, fmt, fmt_mean_std, table_markdown
from .results import Results, load_results
from .scores import pooled_scores


def _protocol_section(a: Results, b: Results) -> Section:
    keys = list(dict.fromkeys([*a.protocol, *b.protocol]))
    display = pd.DataFrame(
        {"A": [str(a.protocol.get(k, "—")) for k in keys], "B": [str(b.protocol.get(k, "—")) for k in keys]},
        index=pd.Index(keys, name="protocol"),
    )
    bold = pd.DataFrame(False, index=display.index, columns=display.columns)
    differs = (display["A"] != display["B"]).to_numpy()
    bold["A"], bold["B"] = differs, differs
    return Section("Protocols (differences in bold)", display, bold)


def _split_pairs(a: Results, b: Results) -> list[tuple[str, str]]:
    common = [s for s in a.splits if s in b.splits]
    if common:
        return [(s, s) for s in common]
    return [(a.splits[0], b.splits[0])] if a.splits and b.splits else []


def _agreement(a: Results, b: Results, oof_a: pd.DataFrame, oof_b: pd.DataFrame,
               task: str) -> dict:
    """How far two runs of one model differ image by image, on the (repeat, fold, image)
    cells both predicted: the share of identical predicted classes and the largest
    probability difference (0 at the stored 1e-6 rounding: bit-identical training)."""
    keys = ["repeat", "fold", "sample"]
    merged = oof_a.merge(oof_b, on=keys, suffixes=("_a", "_b"))
    if merged.empty:
        return {"n_shared_predictions": 0, "same_predictions": np.nan,
                "max_abs_probability_diff": np.nan}
    columns = [c for c in schema.probability_columns(a.classes(task)) if c in oof_b.columns]
    difference = np.abs(merged[[f"{c}_a" for c in columns]].to_numpy(dtype=float)
                        - merged[[f"{c}_b" for c in columns]].to_numpy(dtype=float))
    return {"n_shared_predictions": int(len(merged)),
            "same_predictions": float((merged["y_pred_a"] == merged["y_pred_b"]).mean()),
            "max_abs_probability_diff": float(difference.max()) if difference.size else np.nan}


def comparison_table(a: Results, b: Results) -> Table:
    """One section per common (split, task): estimators in both runs, A vs B scores and change."""
    sections = [_protocol_section(a, b)]
    numbers = []
    for split_a, split_b in _split_pairs(a, b):
        for task in [t for t in a.task_names() if t in b.task_names()]:
            same_classes = set(a.classes(task)) == set(b.classes(task))
            rows = []
            for estimator in [e for e in a.estimators if e in b.estimators]:
                oof_a, oof_b = a.oof(split_a, task, estimator), b.oof(split_b, task, estimator)
                if not len(oof_a) or not len(oof_b):
                    continue
                fold_a = a.fold_scores(split_a, task, estimator)["accuracy"].astype(float)
                fold_b = b.fold_scores(split_b, task, estimator)["accuracy"].astype(float)
                pooled_a, pooled_b = pooled_scores(a, oof_a, task), pooled_scores(b, oof_b, task)
                rows.append(
                    {
                        "split_a": split_a,
                        "split_b": split_b,
                        "task": task,
                        "estimator": estimator,
                        "same_classes": same_classes,
                        "accuracy_mean_a": fold_a.mean(),
                        "accuracy_std_a": fold_a.std(ddof=1),
                        "accuracy_mean_b": fold_b.mean(),
                        "accuracy_std_b": fold_b.std(ddof=1),
                        "pooled_accuracy_a": pooled_a["accuracy"],
                        "pooled_accuracy_b": pooled_b["accuracy"],
                        "pooled_macro_f1_a": pooled_a["macro_f1"],
                        "pooled_macro_f1_b": pooled_b["macro_f1"],
                        "pooled_accuracy_diff": pooled_b["accuracy"] - pooled_a["accuracy"],
                        **_agreement(a, b, oof_a, oof_b, task),
                    }
                )
            if not rows:
                continue
            frame = pd.DataFrame(rows)
            numbers.append(frame)
            display = pd.DataFrame(
                {
                    "A acc. (folds)": [
                        fmt_mean_std(m, s) for m, s in zip(frame.accuracy_mean_a, frame.accuracy_std_a, strict=True)
                    ],
                    "B acc. (folds)": [
                        fmt_mean_std(m, s) for m, s in zip(frame.accuracy_mean_b, frame.accuracy_std_b, strict=True)
                    ],
                    "A pooled acc.": [fmt(v) for v in frame.pooled_accuracy_a],
                    "B pooled acc.": [fmt(v) for v in frame.pooled_accuracy_b],
                    "B − A pooled acc.": [f"{v:+.3f}" if not np.isnan(v) else "—" for v in frame.pooled_accuracy_diff],
                    "A macro-F1": [fmt(v) for v in frame.pooled_macro_f1_a],
                    "B macro-F1": [fmt(v) for v in frame.pooled_macro_f1_b],
                    "same predictions": [f"{v:.1%}" if np.isfinite(v) else "—"
                                         for v in frame.same_predictions],
                    "max |Δp|": [fmt(v, 6) for v in frame.max_abs_probability_diff],
                },
                index=pd.Index(frame["estimator"], name="estimator"),
            )
            raw = pd.DataFrame(
                {
                    "A pooled acc.": frame.pooled_accuracy_a.to_numpy(),
                    "B pooled acc.": frame.pooled_accuracy_b.to_numpy(),
                },
                index=display.index,
            )
            bold = best_mask(raw, {"A pooled acc.": True, "B pooled acc.": True})
            bold = bold.reindex(columns=display.columns, fill_value=False)
            split_text = split_a if split_a == split_b else f"A {split_a} / B {split_b}"
            note = "" if same_classes else "Warning: the two runs define this task with different classes."
            sections.append(Section(f"{task} — {split_text} split", display, bold, note=note))
    if not numbers:
        raise DataError(f"{a.path} and {b.path} share no (task, estimator) with predictions; nothing to compare")
    return Table(
        name="comparison",
        title=f"Comparison: A = {a.name} ({a.path}), B = {b.name} ({b.path})",
        sections=sections,
        numbers=pd.concat(numbers, ignore_index=True),
        caption=f"A: {a.protocol_text()}. B: {b.protocol_text()}.",
        notes=["Best pooled accuracy of each run in bold. Pooled acc. = accuracy of all out-of-fold predictions."],
    )


def compare(dir_a: str | Path, dir_b: str | Path, out: str | Path) -> Path:
    """Write ``comparison.md/.csv/.html`` and return the HTML path.

    ``out`` is a folder, or a file name ending in ``.md`` or ``.html`` whose stem is used
    for all three files (then that file is returned).
    """
    a, b = load_results(dir_a), load_results(dir_b)
    table = comparison_table(a, b)
    out = Path(out)
    if out.suffix.lower() in {".md", ".html", ".htm"}:
        folder, stem = out.parent, out.stem
    else:
        folder, stem = out, "comparison"
    atomic.write_text(folder / f"{stem}.md", table_markdown(table))
    atomic.write_text(folder / f"{stem}.csv", table.numbers.to_csv(index=False))
    page = build_html(
        table.title,
        {"A": str(a.path), "B": str(b.path), "A protocol": a.protocol_text(), "B protocol": b.protocol_text()},
        {"A": a.environment, "B": b.environment},
        [table],
        [],
        [],
    )
    html_path = atomic.write_text(folder / f"{stem}.html", page)
    return out if out.suffix.lower() in {".md", ".html", ".htm"} else html_path
