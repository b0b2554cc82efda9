"""``write_report``: every table, plot and the HTML page for one results folder.

Reports are regenerated from saved predictions only (no retraining), so they can be
rebuilt after changing the report code or on another machine.
"""

from __future__ import annotations

from pathlib import Path

from karyobench import atomic
from karyobench.results_schema import REPORT
from .html_page import build_html
from .plots import all_figures
from .render import Table, write_table
from .results import describe_unused, load_results
from .seed import load_seed_reported
from .external import external_tables
from .noise import noise_table
from .tables import (gap_table, pair_table, per_class_tables, ranking_table, repeat_table, summary_table,
                     swap_table, ttest_table)


# Tables written only when they apply; a re-run where one no longer applies removes it.
OPTIONAL_TABLES = ("repeats", "protocol_gap", "pairs", "suspect_swaps", "noise_floor",
                   "external", "external_per_class")


def build_tables(results, n_boot: int = 2000) -> tuple[list[Table], list[Table]]:
    """Main tables (summary, repeats, gap, pairs, swaps, t-tests, ranking) and per-class tables."""
    main = [summary_table(results, n_boot=n_boot)]
    for optional in (noise_table(results), repeat_table(results), gap_table(results),
                     pair_table(results), swap_table(results), *external_tables(results)):
        if optional is not None:
            main.append(optional)
    main += [ttest_table(results), ranking_table(results)]
    return main, per_class_tables(results)


def _remove_stale(folder: Path, written: list[Path], suffixes: set[str],
                  stems: tuple[str, ...] | None = None) -> None:
    """Drop report files this run did not write (e.g. plots of an estimator since removed
    from the study, or a table that no longer applies), so a results folder never shows
    what its results no longer hold. ``stems`` limits it to those file names."""
    keep = {Path(p).resolve() for p in written}
    for path in folder.glob("*"):
        if (path.is_file() and path.suffix in suffixes and path.resolve() not in keep
                and (stems is None or path.stem in stems)):
            path.unlink()


def write_report(results_dir: str | Path, n_boot: int = 2000, plots: bool = True) -> list[Path]:
    """Write ``summary.*``, ``repeats.*``, ``suspect_swaps.*``, ``protocol_gap.*``,
    ``pairs.*`` (those four when they apply), ``ttests.*``, ``ranking.*``, ``per_class/*``,
    ``plots/*`` and ``report.html`` into ``results_dir``; return the paths.
    """
    results = load_results(results_dir)
    folder = results.path
    main, per_class = build_tables(results, n_boot=n_boot)
    written: list[Path] = []
    for table in main:
        written += write_table(table, folder)
    _remove_stale(folder, written, {".md", ".csv", ".tex"}, stems=OPTIONAL_TABLES)
    for table in per_class:
        written += write_table(table, folder / "per_class")
    _remove_stale(folder / "per_class", written, {".md", ".csv", ".tex"})
    figures = all_figures(results, folder / "plots") if plots else []
    for figure in figures:
        written += [figure.png_path, figure.svg_path]
    if plots:
        _remove_stale(folder / "plots", written, {".png", ".svg"})

    warnings = []
    if "image" in results.splits:
        warnings.append(
            "The image-level split keeps images of one patient/karyotype on both sides of a fold "
            "(as in the seed study); its scores are optimistic. Trust the group-level numbers."
        )
    unused = describe_unused(results.skipped, results.tasks)
    if unused:
        warnings.append(unused[0].upper() + unused[1:])
    protocol = dict(results.protocol)
    protocol["seed study"] = load_seed_reported().citation
    page = build_html(
        f"karyobench report: {results.name}", protocol, results.environment, main, per_class, figures, warnings
    )
    written.append(atomic.write_text(folder / REPORT, page))
    return written
