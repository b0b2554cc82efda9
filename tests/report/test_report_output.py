import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from karyobench.errors import DataError
from karyobench.report import compare, write_report

CHROMIUM = Path("/usr/bin/chromium")


def test_report_writes_every_file(report_dir):
    folder, written = report_dir
    assert all(p.is_file() for p in written)
    assert all(folder in p.parents for p in written)
    for stem in ("summary", "pairs", "ttests", "ranking", "protocol_gap"):
        for suffix in ("md", "csv", "tex"):
            assert folder / f"{stem}.{suffix}" in written
    plots = folder / "plots"
    assert len(list(plots.glob("confusion__*.png"))) == 2 * 2 * 3
    assert len(list(plots.glob("roc__*.png"))) == 2  # binary task only, per split
    assert len(list(plots.glob("f1__*.png"))) == 4 and len(list(plots.glob("folds__*.png"))) == 4
    assert len(list(plots.glob("cost__*.png"))) == 4  # accuracy vs training seconds
    for png in plots.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    assert not list(folder.rglob("*.tmp"))


def test_html_is_self_contained(report_dir):
    folder, _ = report_dir
    page = (folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<img src="data:image/png;base64,') == len(list((folder / "plots").glob("*.png")))
    assert "<table>" in page and "normal24 — group split" in page and "Per-class scores" in page
    assert "StratifiedGroupKFold" in page and "wall_seconds" in page and "Med Eng Phys" in page
    assert "optimistic" in page  # warning about the leaky image-level split
    for external in ('src="http', 'href="http', "<script", "<link"):
        assert external not in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed at /usr/bin/chromium")
def test_html_renders_in_headless_chromium(report_dir, tmp_path):
    from PIL import Image

    folder, _ = report_dir
    screenshot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,2000",
            (folder / "report.html").as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    pixels = np.asarray(Image.open(screenshot).convert("L"))
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 5 and (pixels < 128).mean() > 0.002  # text and tables, not a blank page


def test_report_is_regenerated_in_place(make_results):
    folder = make_results("again")
    first = write_report(folder, n_boot=50, plots=False)
    (folder / "summary.md").write_text("stale")
    second = write_report(folder, n_boot=50, plots=False)
    assert sorted(first) == sorted(second)
    assert (folder / "summary.md").read_text().startswith("## Summary")
    assert not list(folder.rglob("*.tmp"))


def test_report_drops_figures_and_tables_of_models_no_longer_in_the_results(make_results):
    folder = make_results("stale")
    write_report(folder, n_boot=50)
    stale = [folder / "plots" / "confusion__group__t__removed_model.png",
             folder / "per_class" / "group__old_task.csv"]
    for path in stale:
        path.write_text("from an earlier run")
    kept = folder / "plots" / "notes.txt"
    kept.write_text("a user's file")
    written = write_report(folder, n_boot=50)
    assert not any(path.exists() for path in stale)
    assert kept.exists()
    assert sorted((folder / "plots").glob("*.png")) == sorted(
        p for p in written if p.suffix == ".png" and p.parent.name == "plots")


def test_compare_two_runs(make_results, tmp_path):
    a = make_results("run_a", seed=1)
    b = make_results("run_b", seed=2, splits=("group",))
    out = compare(a, b, tmp_path / "cmp")
    assert out == tmp_path / "cmp" / "comparison.html"
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert set(table.split_a) == {"group"}  # only the common split
    assert len(table) == 2 * 3
    pa = pd.read_parquet(a / "predictions.parquet")
    sel = pa[(pa.split == "group") & (pa.task == "pair5") & (pa.estimator == "dcnn")]
    row = table[(table.task == "pair5") & (table.estimator == "dcnn")].iloc[0]
    assert row.pooled_accuracy_a == pytest.approx((sel.y_true == sel.y_pred).mean())
    assert row.pooled_accuracy_diff == pytest.approx(row.pooled_accuracy_b - row.pooled_accuracy_a)
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "run_a" in md and "run_b" in md and "| dcnn |" in md
    assert "<table>" in out.read_text()
    # A file name picks the stem.
    assert compare(a, b, tmp_path / "side_by_side.md") == tmp_path / "side_by_side.md"
    assert (tmp_path / "side_by_side.html").is_file()


def test_compare_without_common_tasks(make_results, tmp_path):
    a = make_results("left")
    b = make_results("right")
    predictions = pd.read_parquet(b / "predictions.parquet")
    predictions["estimator"] = "other_" + predictions["estimator"]
    predictions.to_parquet(b / "predictions.parquet")
    folds = pd.read_parquet(b / "folds.parquet")
    folds["estimator"] = "other_" + folds["estimator"]
    folds.to_parquet(b / "folds.parquet")
    with pytest.raises(DataError, match="nothing to compare"):
        compare(a, b, tmp_path / "cmp")
    shutil.rmtree(b)
    with pytest.raises(DataError, match="does not exist"):
        compare(a, b, tmp_path / "cmp")


def test_plotting_leaves_no_open_pyplot_figures(report_dir):
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_confident_errors_gallery_shows_the_best_models_surest_mistakes(make_results, bioimlab_dir,
                                                                        bioimlab_table):
    from karyobench.report import load_results
    from karyobench.report.plots import confident_errors, errors_figure

    folder = make_results("errors", splits=("group",))
    results = load_results(folder)
    # no readable crops (paths are placeholders): the selection works, the gallery is skipped
    best, shown, n_wrong = confident_errors(results, "group", "normal24", n_images=10)
    assert errors_figure(results, "group", "normal24", folder / "plots") is None
    accuracy = {e: np.mean(results.oof("group", "normal24", e).eval("y_true == y_pred"))
                for e in results.estimators}
    assert best == max(accuracy, key=accuracy.get)
    oof = results.oof("group", "normal24", best)
    assert n_wrong == int((oof.y_true != oof.y_pred).sum()) and len(shown) == 10
    assert (shown.y_true != shown.y_pred).all()
    assert np.all(np.diff(shown.confidence.to_numpy()) <= 0)
    everything = confident_errors(results, "group", "normal24", n_images=n_wrong)[1]
    assert shown.confidence.min() >= everything.confidence.iloc[10:].max()
    np.testing.assert_allclose(shown.confidence, results.proba(shown, "normal24").max(axis=1))

    # point the predictions at real BioImLab crops: the gallery is drawn from the files
    predictions = pd.read_parquet(folder / "predictions.parquet")
    crops = [str(bioimlab_dir / p) for p in bioimlab_table["path"]]
    predictions["path"] = [crops[s % len(crops)] for s in predictions["sample"]]
    predictions.to_parquet(folder / "predictions.parquet", index=False)
    figure = errors_figure(load_results(folder), "group", "normal24", folder / "plots", n_images=10)
    assert figure.kind == "errors" and figure.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{best}, group split" in figure.title and f"{n_wrong} errors in all" in figure.title
    write_report(folder, n_boot=20)
    assert "Most confident errors" in (folder / "report.html").read_text()
    assert (folder / "plots" / "errors__group__normal24.png").is_file()


def test_rebuilt_report_is_byte_identical(make_results):
    folder = make_results("twice", splits=("group",))
    first = {p: p.read_bytes() for p in write_report(folder, n_boot=20)}
    second = {p: p.read_bytes() for p in write_report(folder, n_boot=20)}
    assert first.keys() == second.keys() and any(p.suffix == ".svg" for p in first)
    changed = [p.name for p in first if first[p] != second[p]]
    assert changed == []


def test_compare_says_how_many_predictions_two_runs_share(make_results, tmp_path):
    """A run compared with an identical copy agrees 100% with max |dp| 0; flipping some
    predictions of the copy shows up image by image."""
    a = make_results("same_a", seed=1)
    b = make_results("same_b", seed=1)
    compare(a, b, tmp_path / "cmp")
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert (table["same_predictions"] == 1.0).all()
    assert (table["max_abs_probability_diff"] == 0).all()
    predictions = pd.read_parquet(b / "predictions.parquet")
    flip = predictions.index[:10]
    predictions.loc[flip, "y_pred"] = predictions.loc[flip, "y_pred"] + "_other"
    predictions.to_parquet(b / "predictions.parquet")
    compare(a, b, tmp_path / "cmp2")
    changed = pd.read_csv(tmp_path / "cmp2" / "comparison.csv")
    assert (changed["same_predictions"] < 1).any()
    assert "same predictions" in (tmp_path / "cmp2" / "comparison.md").read_text()


def test_estimators_differing_only_in_non_ascii_letters_get_their_own_plots(make_results):
    folder = make_results("accents")
    names = {"svm_linear": "réseau", "dcnn": "rèseau"}
    for table in ("folds.parquet", "predictions.parquet"):
        frame = pd.read_parquet(folder / table)
        frame["estimator"] = frame["estimator"].replace(names)
        frame.to_parquet(folder / table)
    written = write_report(folder, n_boot=50)
    confusion = [p.name for p in written if p.name.startswith("confusion__group__normal24")
                 and p.suffix == ".png"]
    assert len(confusion) == len(set(confusion)) == 3, confusion
    assert "confusion__group__normal24__rf_features.png" in confusion  # safe names kept


def test_report_on_a_file_says_it_is_not_a_folder(tmp_path):
    afile = tmp_path / "summary.md"
    afile.write_text("x")
    with pytest.raises(DataError, match="is a file, not a results folder"):
        write_report(afile)
