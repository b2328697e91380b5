"""Is a difference between two means more than noise? Welch's t-test, in plain Python.

A sweep's seeds are repeats of one experiment (docs/sweeps.md): two configurations differ only when their means
are apart by more than their standard errors explain. Welch's test does not assume equal spreads. scipy would
answer this, but it is not a dependency of a plain install (only the optuna extra brings it, and torchmetrics
then imports it into every run), so Student's t distribution is computed here from the regularized incomplete
beta function, by its continued fraction (Numerical Recipes, 3rd ed., 6.4: `betacf` with the modified Lentz
method); tests hold it to scipy's where scipy is installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, stdev

LEVEL = 0.05  # two-sided: a difference is significant when p < LEVEL
_EPSILON = 1e-15  # the continued fraction's relative precision
_TINY = 1e-300  # keeps Lentz's method away from a division by zero
_MAX_TERMS = 10_000  # far more than needed: a + b <= a few hundred converges in tens of terms


@dataclass(frozen=True)
class Sample:
    """What the test needs of one configuration's repeats: their mean, sample standard deviation and count."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Sample:
        """The sample standard deviation (n - 1 in the denominator) is NaN for a single value."""
        return cls(fmean(values), stdev(values) if len(values) > 1 else math.nan, len(values))


@dataclass(frozen=True)
class Welch:
    """Welch's t statistic, its degrees of freedom (Welch-Satterthwaite) and the two-sided p-value."""

    t: float
    df: float
    p: float

    @property
    def significant(self) -> bool:
        return self.p < LEVEL


def welch(a: Sample, b: Sample) -> Welch:
    """Welch's two-sided t-test of `a.mean == b.mean`; each sample needs at least two values.

    Without spread in either sample (every repeat gave the same number) the means differ exactly when they are
    not equal: t is infinite and p is 0, or t is 0 and p is 1.
    """
    if a.n < 2 or b.n < 2:
        raise ValueError(f"Welch's t-test needs at least two values per sample, got n = {a.n} and {b.n}")
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    difference = a.mean - b.mean
    if va + vb == 0:
        return Welch(math.copysign(math.inf, difference) if difference else 0.0, math.inf, 0.0 if difference else 1.0)
    t = difference / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return Welch(t, df, student_t_two_sided(t, df))


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom: I_x(df/2, 1/2) at x = df / (df + t^2)."""
    if math.isinf(t):
        return 0.0
    if math.isinf(df):  # the normal limit: erfc(|t| / sqrt 2)
        return math.erfc(abs(t) / math.sqrt(2))
    return regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t))


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1; the continued fraction where it converges fast, else by symmetry."""
    if not (a > 0 and b > 0 and 0 <= x <= 1):
        raise ValueError(f"regularized incomplete beta: needs a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x in (0, 1):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_continued_fraction(b, a, 1 - x) / b


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (without its front factor), evaluated by the modified Lentz method."""
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, _MAX_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # the even step
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),  # the odd step
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > _TINY else _TINY)
            c = 1 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1) < _EPSILON:
            return fraction
    raise ArithmeticError(f"the incomplete beta's continued fraction did not converge for a={a}, b={b}, x={x}")
