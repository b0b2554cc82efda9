import json

import numpy as np
import pandas as pd
import pytest

from karyobench.report import load_results, write_report
from karyobench.report.swaps import pair_swaps
from karyobench.report.tables import swap_table

CLASSES = ["6", "7", "9", "10", "X"]


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["group", "y_true", "y_pred"])
    proba = np.full((len(frame), len(CLASSES)), 0.01)
    for i, predicted in enumerate(frame["y_pred"]):
        proba[i, CLASSES.index(predicted)] = 0.9 - 0.01 * i
    return frame, proba


def test_only_whole_two_way_swaps_within_one_cell_count():
    frame, proba = _frame([
        # k1: both 9s read as 10, both 10s as 9 -> a swap, listed in class order (9 before 10)
        ("k1", "9", "10"), ("k1", "9", "10"), ("k1", "10", "9"), ("k1", "10", "9"),
        # k2: both 6s read as 7 but the 7s are right -> a one-way error, not a swap
        ("k2", "6", "7"), ("k2", "6", "7"), ("k2", "7", "7"), ("k2", "7", "7"),
        # k3: one 6 read as 7 and one 7 as 6, the other copies right -> not whole
        ("k3", "6", "7"), ("k3", "6", "6"), ("k3", "7", "6"), ("k3", "7", "7"),
        # k4: the 6s split between 7 and X -> not a swap
        ("k4", "6", "7"), ("k4", "6", "X"), ("k4", "7", "6"), ("k4", "7", "6"),
        # k5 and k6 hold the two halves of a swap: across cells it is not one
        ("k5", "6", "X"), ("k6", "X", "6"),
    ])
    swaps = pair_swaps(frame, proba, CLASSES)
    assert swaps[["group", "class_a", "class_b", "n_images"]].values.tolist() == [["k1", "9", "10", 4]]
    assert swaps.min_probability.iloc[0] == pytest.approx(0.9 - 0.03)
    assert pair_swaps(frame[frame.group != "k1"], proba[4:], CLASSES).empty


def _inject_swap(folder, estimators=None):
    """Predict K03's two 5s as 6 and its two 6s as 5 (all estimators, or those given)."""
    predictions = pd.read_parquet(folder / "predictions.parquet")
    cell = (predictions.task == "normal24") & (predictions.group == "K03")
    if estimators is not None:
        cell &= predictions.estimator.isin(estimators)
    for true, read_as in (("5", "6"), ("6", "5")):
        rows = cell & (predictions.y_true == true)
        predictions.loc[rows, "y_pred"] = read_as
        predictions.loc[rows, "p_" + read_as] = 5.0  # the most probable class, as in a real swap
    predictions.to_parquet(folder / "predictions.parquet", index=False)


def test_swap_table_lists_an_injected_annotation_swap(make_results):
    folder = make_results("swapped", splits=("group",))
    _inject_swap(folder)
    numbers = swap_table(load_results(folder)).numbers
    injected = numbers[(numbers.group == "K03") & (numbers.class_a == "5")]
    assert injected[["class_b", "n_images", "models_agreeing", "n_models"]].values.tolist() == [["6", 4, 3, 3]]
    assert (numbers.task == "normal24").all()  # pair5's groups are not whole karyotypes
    write_report(folder, n_boot=20, plots=False)
    assert "| K03 | 5 ↔ 6 | 4 |" in (folder / "suspect_swaps.md").read_text()


def test_no_swap_table_without_swaps(make_results):
    # the synthetic predictions' errors are independent noise; none is a whole two-way swap
    results = load_results(make_results("clean", splits=("group",)))
    assert swap_table(results) is None


def test_a_declared_primary_model_is_the_one_examined_not_the_most_accurate(make_results):
    from karyobench.report.plots import confident_errors
    from karyobench.report.scores import best_estimator

    folder = make_results("primary", splits=("group",))
    _inject_swap(folder, estimators=["rf_features"])  # the weakest model alone swaps
    results = load_results(folder)
    assert best_estimator(results, "group", "normal24") == "dcnn"
    assert swap_table(results) is None  # undeclared: the most accurate model is examined

    protocol_path = folder / "protocol.json"
    protocol_path.write_text(json.dumps({**json.loads(protocol_path.read_text()),
                                         "primary": "rf_features"}))
    results = load_results(folder)
    numbers = swap_table(results).numbers
    assert numbers[["estimator", "group", "models_agreeing", "n_models"]].values.tolist() == [
        ["rf_features", "K03", 1, 3]]
    model, shown, n_wrong = confident_errors(results, "group", "normal24")
    oof = results.oof("group", "normal24", "rf_features")
    assert model == "rf_features"
    assert n_wrong == int((oof.y_true.astype(str) != oof.y_pred.astype(str)).sum())
