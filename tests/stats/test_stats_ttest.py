import numpy as np
import pytest
from scipy import stats

from karyobench.stats import corrected_resampled_ttest, holm_adjust


def test_matches_hand_computation():
    a = [0.80, 0.82, 0.79, 0.85, 0.81]
    b = [0.78, 0.80, 0.80, 0.81, 0.79]
    # d = [.02, .02, -.01, .04, .02]; mean .018; sum of squared deviations 1280e-6 -> var 320e-6
    # factor 1/5 + 20/80 = 0.45; se = sqrt(0.45 * 320e-6) = 0.012; t = 0.018 / 0.012 = 1.5
    result = corrected_resampled_ttest(a, b, n_train=80, n_test=20)
    assert result.mean_diff == pytest.approx(0.018)
    assert result.variance_factor == pytest.approx(0.45)
    assert result.t == pytest.approx(1.5)
    assert result.df == 4
    assert result.p == pytest.approx(2 * stats.t.sf(1.5, 4))


def test_correction_is_more_conservative_than_plain_paired_test():
    rng = np.random.default_rng(0)
    a = rng.normal(0.8, 0.02, 10)
    b = a - rng.normal(0.01, 0.01, 10)
    corrected = corrected_resampled_ttest(a, b, n_train=900, n_test=100, n_repeats=2)
    plain = stats.ttest_rel(a, b)
    assert abs(corrected.t) < abs(plain.statistic)
    assert corrected.p > plain.pvalue


def test_per_fold_sizes_are_averaged():
    a, b = [0.9, 0.8, 0.85], [0.8, 0.8, 0.8]
    # mean n_test 30, mean n_train 90 -> factor 1/3 + 1/3
    result = corrected_resampled_ttest(a, b, n_train=[80, 90, 100], n_test=[40, 30, 20])
    assert result.variance_factor == pytest.approx(2 / 3)


def test_swapping_estimators_flips_sign_only():
    a, b = [0.7, 0.75, 0.72, 0.71], [0.69, 0.7, 0.73, 0.68]
    forward = corrected_resampled_ttest(a, b, 75, 25)
    backward = corrected_resampled_ttest(b, a, 75, 25)
    assert forward.t == pytest.approx(-backward.t)
    assert forward.p == pytest.approx(backward.p)


def test_constant_differences():
    same = corrected_resampled_ttest([0.5, 0.6], [0.5, 0.6], 10, 5)
    assert (same.t, same.p) == (0.0, 1.0)
    shifted = corrected_resampled_ttest([0.6, 0.7], [0.5, 0.6], 10, 5)
    assert shifted.t == np.inf and shifted.p == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scores_a": [0.1, 0.2], "scores_b": [0.1], "n_train": 5, "n_test": 1},
        {"scores_a": [0.1], "scores_b": [0.1], "n_train": 5, "n_test": 1},
        {"scores_a": [0.1, 0.2, 0.3], "scores_b": [0.1, 0.2, 0.2], "n_train": 5, "n_test": 1, "n_repeats": 2},
        {"scores_a": [0.1, 0.2], "scores_b": [0.1, 0.3], "n_train": 0, "n_test": 1},
    ],
)
def test_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        corrected_resampled_ttest(**kwargs)


def test_holm_by_hand():
    # sorted p: .01 (x3 = .03), .02 (x2 = .04), .04 (x1 = .04); NaN stays NaN
    adjusted = holm_adjust([0.04, 0.01, np.nan, 0.02])
    np.testing.assert_allclose(adjusted, [0.04, 0.03, np.nan, 0.04])
