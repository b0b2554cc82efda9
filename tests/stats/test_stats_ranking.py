import numpy as np
import pandas as pd
import pytest
from scipy import stats

from karyobench.stats import friedman_nemenyi, nemenyi_q


def test_consistent_ranking_by_hand():
    # A > B > C on all 4 tasks: mean ranks 1, 2, 3.
    # chi2 = 12N/(k(k+1)) * sum(R^2) - 3N(k+1) = 12*4/12 * 14 - 3*4*4 = 8
    # CD = q(3) * sqrt(k(k+1)/(6N)) = 2.343 * sqrt(12/24)  (q from Demšar 2006, Table 5)
    table = pd.DataFrame(
        {"A": [0.9, 0.8, 0.95, 0.7], "B": [0.85, 0.75, 0.9, 0.65], "C": [0.8, 0.7, 0.85, 0.6]},
        index=["t1", "t2", "t3", "t4"],
    )
    result = friedman_nemenyi(table)
    assert result.applicable
    assert list(result.average_ranks.index) == ["A", "B", "C"]
    np.testing.assert_allclose(result.average_ranks.to_numpy(), [1, 2, 3])
    assert result.statistic == pytest.approx(8.0)
    assert result.p == pytest.approx(np.exp(-4.0))  # chi2 with 2 df: sf(x) = exp(-x/2)
    assert result.critical_difference == pytest.approx(2.343 * np.sqrt(0.5), abs=1e-3)


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table(k, q):
    assert nemenyi_q(k) == pytest.approx(q, abs=1e-3)


def test_two_estimators_use_the_formula():
    # A wins all 3 tasks: chi2 = 12*3/(2*3) * (1 + 4) - 3*3*3 = 3
    table = pd.DataFrame({"A": [0.9, 0.8, 0.7], "B": [0.5, 0.6, 0.4]})
    result = friedman_nemenyi(table)
    assert result.applicable
    assert result.statistic == pytest.approx(3.0)
    assert result.p == pytest.approx(stats.chi2.sf(3.0, 1))


def test_lower_is_better_reverses_ranks():
    table = pd.DataFrame({"fast": [1.0, 2.0], "slow": [5.0, 6.0]})
    result = friedman_nemenyi(table, higher_is_better=False)
    assert result.average_ranks["fast"] == 1.0


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame({"A": [0.9], "B": [0.8], "C": [0.7]}),  # one task
        pd.DataFrame({"A": [0.9, 0.8, 0.7]}),  # one estimator
        pd.DataFrame({"A": [0.9, np.nan], "B": [0.8, 0.7]}),  # incomplete row dropped -> one task
    ],
)
def test_says_when_not_applicable(table):
    result = friedman_nemenyi(table)
    assert not result.applicable
    assert "at least 2 tasks and 2 estimators" in result.reason
    assert np.isnan(result.p) and np.isnan(result.critical_difference)
