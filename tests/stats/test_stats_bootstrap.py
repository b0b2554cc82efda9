import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from karyobench.stats import group_bootstrap_ci


def test_two_groups_exact_resampling_distribution():
    # Group A: 1 image, right. Group B: 3 images, wrong. Drawing 2 groups with replacement:
    # AA -> 1 (prob 1/4), AB or BA -> 1/4 (prob 1/2), BB -> 0 (prob 1/4).
    y_true = ["1", "2", "2", "2"]
    y_pred = ["1", "3", "3", "3"]
    groups = ["A", "B", "B", "B"]
    ci = group_bootstrap_ci(y_true, y_pred, groups, "accuracy", n_boot=4000, seed=3)
    assert ci.estimate == pytest.approx(0.25)
    assert ci.n_groups == 2
    values, counts = np.unique(ci.replicates, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.25, 1.0])
    np.testing.assert_allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)
    assert (ci.low, ci.high) == (0.0, 1.0)


def test_groups_with_equal_accuracy_give_a_point_interval_images_do_not():
    # Every group is half right, so any resample of groups is half right; images are not.
    y_true = np.array(list("aabbccdd"))
    y_pred = np.array(list("axbxcxdx"))
    groups = np.repeat(["g1", "g2", "g3", "g4"], 2)
    grouped = group_bootstrap_ci(y_true, y_pred, groups, "accuracy", n_boot=500, seed=0)
    assert grouped.low == grouped.high == grouped.estimate == 0.5
    images = group_bootstrap_ci(y_true, y_pred, None, "accuracy", n_boot=500, seed=0)
    assert images.n_groups == 8
    assert images.low < 0.5 < images.high


def test_correlated_groups_widen_the_interval():
    rng = np.random.default_rng(1)
    n_groups, size = 30, 10
    # Whole groups are right or wrong together.
    correct_group = rng.random(n_groups) < 0.7
    y_true = np.zeros(n_groups * size, dtype=int)
    y_pred = np.where(np.repeat(correct_group, size), 0, 1)
    groups = np.repeat(np.arange(n_groups), size)
    grouped = group_bootstrap_ci(y_true, y_pred, groups, n_boot=1000, seed=0)
    naive = group_bootstrap_ci(y_true, y_pred, None, n_boot=1000, seed=0)
    assert (grouped.high - grouped.low) > 2 * (naive.high - naive.low)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("accuracy", lambda t, p: float(np.mean(t == p))),
        ("macro_f1", lambda t, p: f1_score(t, p, average="macro")),
        ("balanced_accuracy", balanced_accuracy_score),
    ],
)
def test_vectorised_metrics_equal_sklearn_on_every_resample(name, reference):
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 6, 120).astype(str)
    y_pred = np.where(rng.random(120) < 0.6, y_true, rng.integers(0, 7, 120).astype(str))
    groups = np.repeat(np.arange(30), 4)
    fast = group_bootstrap_ci(y_true, y_pred, groups, name, n_boot=60, seed=11)
    with warnings.catch_warnings():  # sklearn warns about classes absent from a resample
        warnings.simplefilter("ignore")
        slow = group_bootstrap_ci(y_true, y_pred, groups, reference, n_boot=60, seed=11)
        expected = reference(y_true, y_pred)
    assert fast.estimate == pytest.approx(expected)
    np.testing.assert_allclose(fast.replicates, slow.replicates, rtol=1e-12)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high))


def test_missing_groups_become_singletons_and_seed_is_reproducible():
    y_true = ["a", "a", "b", "b", "a"]
    y_pred = ["a", "b", "b", "b", "a"]
    groups = ["g", "g", None, np.nan, "h"]
    first = group_bootstrap_ci(y_true, y_pred, groups, n_boot=200, seed=9)
    again = group_bootstrap_ci(y_true, y_pred, groups, n_boot=200, seed=9)
    assert first.n_groups == 4
    np.testing.assert_array_equal(first.replicates, again.replicates)


def test_bad_inputs():
    with pytest.raises(ValueError):
        group_bootstrap_ci([], [], None)
    with pytest.raises(ValueError):
        group_bootstrap_ci(["a"], ["a", "b"], None)
    with pytest.raises(ValueError):
        group_bootstrap_ci(["a"], ["a"], ["g", "h"])
    with pytest.raises(ValueError):
        group_bootstrap_ci(["a"], ["a"], None, "auc")
