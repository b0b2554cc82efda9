from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from karyobench.stats import assignment_decode, counterpart, normalise_label

NORMAL24 = [str(i) for i in range(1, 23)] + ["X", "Y"]


def cell(sex: str) -> list[str]:
    return [c for c in NORMAL24[:22] for _ in range(2)] + (["X", "X"] if sex == "XX" else ["X", "Y"])


def confident(labels, classes, p=0.9):
    proba = np.full((len(labels), len(classes)), (1 - p) / (len(classes) - 1))
    for i, label in enumerate(labels):
        proba[i, classes.index(label)] = p
    return proba


def test_three_ones_and_no_two_is_fixed():
    truth = cell("XY")
    proba = confident(truth, NORMAL24)
    twos = [i for i, t in enumerate(truth) if t == "2"]
    # First "2" looks like a "1", second like a "3"; the true 1s and 3s are more certain.
    proba[twos[0]] = 0.1 / 22
    proba[twos[0], [0, 1]] = [0.5, 0.4]
    proba[twos[1]] = 0.1 / 22
    proba[twos[1], [2, 1]] = [0.5, 0.4]
    argmax = np.asarray(NORMAL24)[proba.argmax(axis=1)]
    assert Counter(argmax)["1"] == 3 and Counter(argmax)["2"] == 0
    decoded = assignment_decode(proba, NORMAL24, ["cell"] * len(truth))
    assert list(decoded) == truth


def test_sex_slots_stop_a_third_x():
    truth = cell("XX")
    proba = confident(truth, NORMAL24)
    seven = truth.index("7")
    proba[seven] = 0.05 / 22
    proba[seven, [NORMAL24.index("X"), NORMAL24.index("7")]] = [0.6, 0.35]
    assert Counter(np.asarray(NORMAL24)[proba.argmax(axis=1)])["X"] == 3
    decoded = assignment_decode(proba, NORMAL24, ["c"] * 46)
    assert list(decoded) == truth


def test_male_cell_keeps_its_y():
    truth = cell("XY")
    decoded = assignment_decode(confident(truth, NORMAL24, p=0.6), NORMAL24, ["c"] * 46)
    assert list(decoded) == truth


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_full_cell_always_decodes_to_a_valid_karyotype(seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(24) * 0.3, size=46)
    counts = Counter(assignment_decode(proba, NORMAL24, np.zeros(46)))
    assert all(counts[c] == 2 for c in NORMAL24[:22])
    assert (counts["X"], counts["Y"]) in {(2, 0), (1, 1)}


def test_abnormal_class_shares_its_counterparts_slots():
    classes = NORMAL24 + ["del(5)(p14)"]
    truth = cell("XX")
    truth[truth.index("5")] = "del(5)(p14)"
    proba = confident(truth, classes)
    # A chromosome 6 looks like del(5): argmax gives three in the 5 family.
    six = truth.index("6")
    proba[six] = 0.05 / 23
    proba[six, [classes.index("del(5)(p14)"), classes.index("6")]] = [0.55, 0.4]
    decoded = assignment_decode(proba, classes, ["c"] * 46)
    assert list(decoded) == truth


def test_short_and_long_groups_never_fail():
    rng = np.random.default_rng(0)
    # Three chromosomes all called "1": capacity 2 moves the least sure one.
    proba = np.full((3, 24), 0.01)
    proba[:, 0] = [0.9, 0.8, 0.5]
    proba[2, 5] = 0.4
    decoded = assignment_decode(proba, NORMAL24, ["g"] * 3)
    assert list(decoded) == ["1", "1", "6"]
    # Two cells pooled in one group (92 rows): 4 places per class.
    truth = cell("XX") + cell("XY")
    decoded = assignment_decode(confident(truth, NORMAL24), NORMAL24, ["g"] * 92)
    assert sorted(decoded) == sorted(truth)
    # 50 rows: more than one karyotype, not a multiple; still one label per row.
    odd = rng.dirichlet(np.ones(24), size=50)
    assert len(assignment_decode(odd, NORMAL24, ["g"] * 50)) == 50


def test_rows_without_group_keep_argmax_and_groups_are_independent():
    truth = cell("XY")
    proba = confident(truth, NORMAL24)
    extra = np.full((2, 24), 0.01)
    extra[:, 0] = 0.9
    groups = ["a"] * 46 + [None, None]
    decoded = assignment_decode(np.vstack([proba, extra]), NORMAL24, groups)
    assert list(decoded[:46]) == truth
    assert list(decoded[46:]) == ["1", "1"]


def test_labels_and_counterparts():
    assert normalise_label("01") == "1"
    assert normalise_label("x") == "X"
    assert counterpart("del(5)(p14)") == "5"
    assert counterpart("inv(9)(p12q13)") == "9"
    assert counterpart("i(X)(q10)") == "X"
    assert counterpart("t(11;22)(q23;q11)") == "11"
    assert counterpart("22") == "22"


def test_shape_is_checked():
    with pytest.raises(ValueError):
        assignment_decode(np.ones((3, 5)), NORMAL24, None)
