"""Welch's t-test without scipy: Student's t from the regularized incomplete beta, held to printed tables and,
where scipy is installed (the optuna extra), to scipy."""

import math
import statistics

import pytest

from linreg.significance import Sample, regularized_incomplete_beta, student_t_two_sided, welch

# Two-sided 5% critical values of Student's t, as printed in every statistics table (df: t_0.975)
CRITICAL_5_PERCENT = {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 30: 2.042, 120: 1.980}


@pytest.mark.parametrize(("df", "critical"), CRITICAL_5_PERCENT.items())
def test_the_printed_critical_values_have_a_two_sided_p_of_5_percent(df, critical):
    """The tables round to 3 decimals: the 5% point lies within half a unit of the last one."""
    assert student_t_two_sided(critical - 0.0005, df) > 0.05 > student_t_two_sided(critical + 0.0005, df)


def test_welch_on_a_textbook_pair_and_the_limits_without_spread():
    a, b = Sample.of([0.1, 0.2, 0.35]), Sample.of([0.3, 0.33, 0.5, 0.41])
    va, vb = statistics.variance([0.1, 0.2, 0.35]) / 3, statistics.variance([0.3, 0.33, 0.5, 0.41]) / 4
    test = welch(a, b)
    assert test.t == pytest.approx((a.mean - b.mean) / math.sqrt(va + vb))
    assert test.df == pytest.approx((va + vb) ** 2 / (va**2 / 2 + vb**2 / 3))
    assert welch(Sample(1.0, 0.0, 3), Sample(2.0, 0.0, 3)).p == 0.0  # identical seeds, different configurations
    assert welch(Sample(1.0, 0.0, 3), Sample(1.0, 0.0, 3)).p == 1.0
    with pytest.raises(ValueError, match="at least two values"):
        welch(Sample.of([1.0]), b)


def test_the_t_distribution_and_the_incomplete_beta_equal_scipys():
    scipy = pytest.importorskip("scipy")  # the optuna extra brings it; a plain install has none
    from scipy import special, stats

    assert scipy
    for df in (1, 1.5, 2.7, 4, 8.3, 33.3, 1000, 1e6):
        for t in (0.0, 0.01, 0.7, 1.96, 2.5, 4.0, 12.0, 60.0):
            assert student_t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-8, abs=1e-300)
    for a in (0.05, 0.5, 1.0, 3.3, 20.0, 150.0):
        for b in (0.5, 1.0, 7.0, 90.0):
            for x in (0.001, 0.2, 0.5, 0.77, 0.999):
                assert regularized_incomplete_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), abs=1e-12)
    a, b = [0.00717, 0.00732, 0.00756, 0.00745], [0.00719, 0.00732, 0.00769, 0.0075]
    reference = stats.ttest_ind(a, b, equal_var=False)
    test = welch(Sample.of(a), Sample.of(b))
    assert (test.t, test.p) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-9)
