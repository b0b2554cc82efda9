import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from karyobench.report import load_results, load_seed_reported
from karyobench.report.tables import ranking_table, summary_table


@pytest.fixture(scope="module")
def written(report_dir):
    return report_dir[0]


def test_seed_file_has_the_papers_numbers():
    seed = load_seed_reported()
    assert "Med Eng Phys 2023;121:104064" in seed.citation
    assert seed.tasks["normal24"].accuracy == {"svm": 0.8601, "dcnn": 0.9175}
    assert seed.tasks["all32"].accuracy == {"svm": 0.8537, "dcnn": 0.8776}
    assert len(seed.tasks["all32"].classes) == 32
    pairs = [t for t in seed.tasks.values() if len(t.classes) == 2]
    assert len(pairs) == 8
    assert min(t.accuracy["dcnn"] for t in pairs) == 0.9084
    assert seed.match_task(["X", "del(X)(q22)"]).roc_auc == {"dcnn": 0.9309}
    assert seed.match_task(["01", "02"]) is None
    assert seed.match_task([f"{i:02d}" for i in range(1, 23)] + ["X", "Y"]).key == "normal24"
    assert seed.tasks["normal24"].recall["dcnn"]["7"] == 0.814


def test_summary_numbers_match_predictions(written):
    results = load_results(written)
    summary = pd.read_csv(written / "summary.csv")
    assert len(summary) == 2 * 2 * 3
    for row in summary.itertuples():
        oof = results.oof(row.split, row.task, row.estimator)
        assert row.pooled_accuracy == pytest.approx(accuracy_score(oof["y_true"], oof["y_pred"]))
        folds = results.fold_scores(row.split, row.task, row.estimator)
        assert row.accuracy_mean == pytest.approx(folds["accuracy"].mean())
        assert row.accuracy_std == pytest.approx(folds["accuracy"].std(ddof=1))
        assert row.accuracy_ci_low <= row.pooled_accuracy <= row.accuracy_ci_high
        assert row.macro_f1_ci_low <= row.pooled_macro_f1 <= row.macro_f1_ci_high
    dcnn24 = summary[(summary.task == "normal24") & (summary.estimator == "dcnn")]
    assert (dcnn24.seed_accuracy == 0.9175).all()
    assert summary.loc[summary.estimator == "rf_features", "seed_accuracy"].isna().all()
    # normal24 groups are whole 46-chromosome karyotypes, so the decoded column exists
    assert summary.loc[summary.task == "normal24", "decoded_accuracy"].notna().all()
    assert summary.loc[summary.task == "pair5", "decoded_accuracy"].isna().all()
    assert set(summary.ci_n_groups[summary.task == "normal24"]) == {10}


def test_summary_markdown_bolds_best_and_states_protocol(written):
    text = (written / "summary.md").read_text()
    summary = pd.read_csv(written / "summary.csv")
    best = summary[(summary.split == "group") & (summary.task == "normal24")].sort_values("pooled_accuracy").iloc[-1]
    section = text.split("### normal24 — group split")[1].split("###")[0]
    best_line = next(line for line in section.splitlines() if line.startswith(f"| {best.estimator} |"))
    assert f"**{best.pooled_accuracy:.3f}**" in best_line
    assert "StratifiedGroupKFold" in section and "karyotype_id" in section and "seed 1" in section
    assert "5-fold CV x 1 repeat(s)" in text
    assert "91.75%" in text and "Med Eng Phys" in text


def test_latex_is_booktabs_and_escaped(written):
    tex = (written / "summary.tex").read_text()
    assert tex.count(r"\begin{table}") == 4
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"svm\_linear" in tex and r"\textbf{" in tex and r"$\pm$" in tex
    assert "svm_linear" not in tex.replace(r"svm\_linear", "")


def test_per_class_table(written):
    results = load_results(written)
    per_class = pd.read_csv(written / "per_class" / "group__normal24.csv")
    oof = results.oof("group", "normal24", "svm_linear")
    expected = recall_score(
        oof["y_true"], oof["y_pred"], labels=results.classes("normal24"), average=None, zero_division=0
    )
    mine = per_class[per_class.estimator == "svm_linear"].set_index("class").loc[results.classes("normal24")]
    np.testing.assert_allclose(mine["recall"].to_numpy(), expected)
    assert mine.loc["1", "support"] == 20 and mine.loc["Y", "support"] == 5
    md = (written / "per_class" / "group__normal24.md").read_text()
    assert "| 7 |" in md and "seed DCNN R" in md
    assert next(line for line in md.splitlines() if line.startswith("| 7 |")).endswith("| 0.814 |")
    macro_line = next(line for line in md.splitlines() if line.startswith("| macro avg |"))
    assert macro_line.endswith("| 460 | 0.917 |")  # support total, seed macro recall
    assert f"| {mine['f1'].mean():.3f} |" in macro_line
    for suffix in ("md", "csv", "tex"):
        assert (written / "per_class" / f"image__pair5.{suffix}").is_file()


def test_pair_table(written):
    results = load_results(written)
    pairs = pd.read_csv(written / "pairs.csv")
    assert set(pairs.task) == {"pair5"} and len(pairs) == 2 * 3
    row = pairs[(pairs.split == "group") & (pairs.estimator == "dcnn")].iloc[0]
    oof = results.oof("group", "pair5", "dcnn")
    assert row.roc_auc == pytest.approx(roc_auc_score(oof["y_true"] == "del(5)(p14)", oof["p_del(5)(p14)"]))
    assert row.seed_dcnn_accuracy == 0.9278 and row.seed_dcnn_roc_auc == 0.9706
    assert "0.9706" in (written / "pairs.md").read_text()


def test_ttest_table_uses_the_corrected_formula(written):
    results = load_results(written)
    tests = pd.read_csv(written / "ttests.csv")
    assert len(tests) == 2 * 2 * 3  # splits x tasks x pairs of 3 estimators
    row = tests[
        (tests.split == "group")
        & (tests.task == "normal24")
        & (tests.estimator_a == "svm_linear")
        & (tests.estimator_b == "dcnn")
    ].iloc[0]
    a = results.fold_scores("group", "normal24", "svm_linear").sort_values("fold")
    b = results.fold_scores("group", "normal24", "dcnn").sort_values("fold")
    d = a["accuracy"].to_numpy() - b["accuracy"].to_numpy()
    factor = 1 / 5 + a["n_test"].mean() / a["n_train"].mean()
    assert row.mean_diff == pytest.approx(d.mean())
    assert row.t == pytest.approx(d.mean() / np.sqrt(factor * d.var(ddof=1)))
    assert row.df == 4
    assert (tests.p_holm >= tests.p).all()


def test_protocol_gap(written):
    gap = pd.read_csv(written / "protocol_gap.csv")
    assert len(gap) == 2 * 3
    np.testing.assert_allclose(gap.gap, gap.image_pooled_accuracy - gap.group_pooled_accuracy)
    summary = pd.read_csv(written / "summary.csv").set_index(["split", "task", "estimator"])
    row = gap.iloc[0]
    expected = summary.loc[("group", row.task, row.estimator), "pooled_accuracy"]
    assert row.group_pooled_accuracy == pytest.approx(expected)


def test_ranking_applies_and_says_when_not(written):
    ranking = pd.read_csv(written / "ranking.csv")
    assert ranking.applicable.all() and (ranking.n_tasks == 2).all()
    results = load_results(written)
    results.folds = results.folds[results.folds.task == "normal24"]
    table = ranking_table(results)
    assert all("Not applicable" in s.caption for s in table.sections)
    assert "2 tasks" in table.sections[0].caption


def test_single_split_has_no_gap_table(make_results):
    from karyobench.report import write_report

    folder = make_results("group_only", splits=("group",))
    written = write_report(folder, n_boot=50, plots=False)
    names = {p.name for p in written}
    assert "summary.md" in names and "report.html" in names
    assert not (folder / "protocol_gap.md").exists()
    table = summary_table(load_results(folder), n_boot=50)
    assert [s.title for s in table.sections] == ["normal24 — group split", "pair5 — group split"]


def test_repeats_are_pooled_per_repeat(make_results):
    from karyobench.report.tables import per_class_tables, ttest_table

    results = load_results(make_results("repeated", splits=("group",), n_repeats=2))
    tests = ttest_table(results).numbers
    assert (tests.df == 9).all() and (tests.n_scores == 10).all()
    per_class = per_class_tables(results)[0].numbers
    assert per_class.loc[per_class["class"] == "1", "support"].eq(20).all()  # not doubled
    summary = summary_table(results, n_boot=50).numbers
    row = summary[(summary.task == "pair5") & (summary.estimator == "dcnn")].iloc[0]
    oof = results.oof("group", "pair5", "dcnn")
    per_repeat = [accuracy_score(r["y_true"], r["y_pred"]) for _, r in oof.groupby("repeat")]
    assert row.pooled_accuracy == pytest.approx(np.mean(per_repeat))


def test_seed_model_matching_is_narrow():
    seed = load_seed_reported()
    assert seed.match_model("svm_linear_pixels") == "svm"
    assert seed.match_model("DCNN") == "dcnn"
    assert seed.match_model("svm_rbf_hog") is None
    assert seed.match_model("rf_hog") is None


def test_repeat_table_reports_each_partition_separately(make_results):
    from karyobench.report.tables import repeat_table

    results = load_results(make_results("repeated_table", splits=("group",), n_repeats=2))
    numbers = repeat_table(results).numbers
    seed = int(results.protocol["seed"])
    assert set(numbers.repeat) == {0, 1} and set(numbers.shuffle_seed) == {seed, seed + 1}
    for row in numbers.itertuples():
        folds = results.fold_scores("group", row.task, row.estimator)
        folds = folds[folds.repeat == row.repeat]
        assert row.accuracy_mean == pytest.approx(folds["accuracy"].mean())
        oof = results.oof("group", row.task, row.estimator)
        part = oof[oof.repeat == row.repeat]
        assert row.pooled_accuracy == pytest.approx(accuracy_score(part["y_true"], part["y_pred"]))
        assert np.isnan(row.decoded_accuracy) == (row.task == "pair5")
    # the summary's fold mean is the mean of the repeats' fold means (equal fold counts)
    summary = summary_table(results, n_boot=20).numbers.set_index(["task", "estimator"])
    means = numbers.groupby(["task", "estimator"])["accuracy_mean"].mean()
    np.testing.assert_allclose(means.to_numpy(), summary.loc[means.index, "accuracy_mean"].to_numpy())
    section = repeat_table(results).sections[0].frame
    assert [c for c in section.columns if c.endswith("acc.")] == [
        f"repeat {r + 1} (seed {seed + r}) acc." for r in (0, 1)]


def test_repeat_table_only_with_repeats_and_removed_when_gone(make_results):
    from karyobench.report import write_report
    from karyobench.report.tables import repeat_table

    assert repeat_table(load_results(make_results("single", splits=("group",)))) is None
    folder = make_results("repeats_then_not", splits=("group",), n_repeats=2)
    write_report(folder, n_boot=20, plots=False)
    text = (folder / "repeats.md").read_text()
    assert "repeat 2 (seed" in text and "mean of repeats" in text
    # the same folder re-written from a single-repeat run drops the stale table
    make_results("repeats_then_not", splits=("group",), n_repeats=1)
    write_report(folder, n_boot=20, plots=False)
    assert not list(folder.glob("repeats.*"))
