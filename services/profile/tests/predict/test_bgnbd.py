"""BG/NBD: the published CDNOW figures, numerical care, the gradient, parameter recovery."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import hyp2f1
from scipy.stats import chi2

from mailwright_profile.predict.bgnbd import (
    BgNbd,
    _loglik,
    fit_bgnbd,
    log_parameter_covariance,
    objective,
)
from mailwright_profile.predict.errors import ConvergenceError, DataError
from mailwright_profile.predict.simulate import SimulatedCustomers, simulate_customers

from .conftest import CDNOW_BGNBD

# Published parameters are rounded to 3 decimals: a published figure must lie within the
# range of the model over the box of parameters that round to them.
ROUNDING = 0.0005


def _rounding_box(model: BgNbd) -> list[BgNbd]:
    corners = itertools.product(*[(v - ROUNDING, v + ROUNDING) for v in model.as_dict().values()])
    return [BgNbd(*corner) for corner in corners]


def test_conditional_expectation_matches_the_published_cdnow_example() -> None:
    # Fader, Hardie & Lee (2005): customer with x=2, t_x=30.43, T=38.86 buys 1.226 times
    # in the next 39 weeks.
    values = [m.expected_purchases(39.0, 2, 30.43, 38.86) for m in _rounding_box(CDNOW_BGNBD)]
    assert min(values) <= 1.226 <= max(values)
    assert float(CDNOW_BGNBD.expected_purchases(39.0, 2, 30.43, 38.86)) == pytest.approx(
        1.226, abs=5e-4
    )


def test_unconditional_expectation_matches_the_published_cdnow_curve() -> None:
    # Hardie's spreadsheet: E[X(t)] for a new customer at these times (weeks).
    t = np.array([0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0])
    published = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    values = np.array([m.expected_purchases_new(t) for m in _rounding_box(CDNOW_BGNBD)])
    assert np.all(values.min(axis=0) - 5e-5 <= published)
    assert np.all(published <= values.max(axis=0) + 5e-5)


def test_conditional_expectation_equals_the_textbook_formula_where_that_is_stable() -> None:
    m = CDNOW_BGNBD
    x = np.array([0.0, 1.0, 2.0, 5.0, 10.0])
    tx = np.array([0.0, 5.0, 30.43, 20.0, 35.0])
    T = np.full(5, 38.86)
    t = 52.0
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    textbook_numerator = (
        (a + b + x - 1)
        / (a - 1)
        * (
            1
            - ((alpha + T) / (alpha + T + t)) ** (r + x)
            * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        )
    )
    textbook_denominator = 1 + (x > 0) * a / (b + np.maximum(x, 1) - 1) * (
        (alpha + T) / (alpha + tx)
    ) ** (r + x)
    expected = textbook_numerator / textbook_denominator
    np.testing.assert_allclose(m.expected_purchases(t, x, tx, T), expected, rtol=1e-10)


def test_conditional_expectation_stays_finite_and_right_for_heavy_buyers() -> None:
    # The textbook form multiplies an underflowing power by an overflowing 2F1 here.
    m = BgNbd(r=0.5, alpha=2.0, a=0.8, b=3.0)
    x, tx, T, t = 2000.0, 51.9, 52.0, 52.0
    value = float(m.expected_purchases(t, x, tx, T))
    # Monte Carlo from the posterior given alive: rate ~ Gamma(r+x, alpha+T),
    # p ~ Beta(a, b+x);
    # future purchases are min(Poisson(λt), Geometric(p)).
    rng = np.random.default_rng(11)
    n = 400_000
    rate = rng.gamma(m.r + x, 1.0 / (m.alpha + T), size=n)
    dropout = rng.beta(m.a, m.b + x, size=n)
    purchases = np.minimum(rng.poisson(rate * t), rng.geometric(dropout))
    monte_carlo = float(m.probability_alive(x, tx, T)) * purchases.mean()
    standard_error = float(m.probability_alive(x, tx, T)) * purchases.std() / np.sqrt(n)
    assert np.isfinite(value)
    assert abs(value - monte_carlo) < 4 * standard_error


def test_conditional_expectation_is_continuous_through_a_equal_one() -> None:
    args = (39.0, 3.0, 20.0, 38.0)
    at_one = BgNbd(0.3, 4.0, 1.0, 2.5).expected_purchases(*args)
    near = [BgNbd(0.3, 4.0, 1.0 + d, 2.5).expected_purchases(*args) for d in (-1e-4, 1e-4)]
    assert np.isfinite(at_one)
    assert float(at_one) == pytest.approx(float(np.mean(near)), rel=1e-6)


def test_probability_alive_is_one_without_repeat_purchases() -> None:
    assert CDNOW_BGNBD.probability_alive(0, 0, 38.0) == 1.0


def test_probability_alive_falls_as_silence_since_the_last_purchase_grows() -> None:
    T = np.array([10.0, 20.0, 40.0, 80.0])
    alive = CDNOW_BGNBD.probability_alive(np.full(4, 4.0), np.full(4, 10.0), T)
    assert np.all(np.diff(alive) < 0)


def test_log_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 8, size=200).astype(float)
    T = rng.uniform(5, 40, size=200)
    tx = np.where(x > 0, rng.uniform(0.1, 1, size=200) * T, 0.0)
    theta = np.log([0.4, 3.0, 0.9, 2.2])
    _, grad = _loglik(theta, x, tx, T, True)
    assert grad is not None
    h = 1e-6
    for j in range(4):
        step = np.zeros(4)
        step[j] = h
        up, _ = _loglik(theta + step, x, tx, T, False)
        down, _ = _loglik(theta - step, x, tx, T, False)
        np.testing.assert_allclose(grad[:, j], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


def test_log_likelihood_matches_the_direct_formula() -> None:
    from scipy.special import beta, gamma

    m = BgNbd(0.7, 3.0, 1.2, 2.5)
    x, tx, T = 3.0, 12.0, 20.0
    direct = beta(m.a, m.b + x) / beta(m.a, m.b) * gamma(m.r + x) * m.alpha**m.r / (
        gamma(m.r) * (m.alpha + T) ** (m.r + x)
    ) + beta(m.a + 1, m.b + x - 1) / beta(m.a, m.b) * gamma(m.r + x) * m.alpha**m.r / (
        gamma(m.r) * (m.alpha + tx) ** (m.r + x)
    )
    assert float(m.log_likelihood(x, tx, T)) == pytest.approx(np.log(direct), rel=1e-12)


def test_fit_recovers_parameters_within_sampling_error(cdnow_like: SimulatedCustomers) -> None:
    s = cdnow_like.summary
    fit = fit_bgnbd(s.frequency, s.recency, s.T)
    covariance = log_parameter_covariance(fit.model, s.frequency, s.recency, s.T)
    error = np.log(list(fit.model.as_dict().values())) - np.log(
        list(CDNOW_BGNBD.as_dict().values())
    )
    # The MLE is asymptotically normal: its squared Mahalanobis distance from the truth is
    # chi-squared with 4 degrees of freedom; exceeding the 99.9% point fails 1 time in 1000.
    assert error @ np.linalg.solve(covariance, error) < chi2.ppf(0.999, df=4)


def test_fit_with_numerical_gradient_reaches_the_same_optimum(
    cdnow_like: SimulatedCustomers,
) -> None:
    s = cdnow_like.summary
    analytic = fit_bgnbd(s.frequency, s.recency, s.T)
    numerical = fit_bgnbd(s.frequency, s.recency, s.T, gradient="numerical")
    se = np.sqrt(np.diag(log_parameter_covariance(analytic.model, s.frequency, s.recency, s.T)))
    gap = np.log(list(analytic.model.as_dict().values())) - np.log(
        list(numerical.model.as_dict().values())
    )
    assert np.all(np.abs(gap) < se / 100)
    assert analytic.log_likelihood >= numerical.log_likelihood - 1e-6


def test_fit_reports_the_log_likelihood_at_its_parameters(cdnow_like: SimulatedCustomers) -> None:
    s = cdnow_like.summary
    fit = fit_bgnbd(s.frequency, s.recency, s.T)
    assert fit.log_likelihood == pytest.approx(
        float(fit.model.log_likelihood(s.frequency, s.recency, s.T).sum()), rel=1e-10
    )


def test_objective_compression_keeps_the_likelihood() -> None:
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0])
    tx = np.array([0.0, 0.0, 3.0, 3.0, 5.0])
    T = np.array([10.0, 10.0, 10.0, 10.0, 12.0])
    theta = np.log([0.5, 2.0, 1.0, 2.0])
    full, _ = objective(x, tx, T, np.ones(5))(theta)
    compressed, _ = objective(x[[0, 2, 4]], tx[[0, 2, 4]], T[[0, 2, 4]], np.array([2.0, 2, 1]))(
        theta
    )
    assert compressed == pytest.approx(full, rel=1e-14)


def test_too_few_customers_is_a_data_error() -> None:
    with pytest.raises(DataError, match="at least 10 customers"):
        fit_bgnbd([1, 0, 2], [3.0, 0, 4], [5.0, 5, 5])


def test_no_repeat_purchases_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no customer has a repeat purchase"):
        fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 30.0))


def test_a_fit_cut_short_raises_instead_of_returning_numbers(
    cdnow_like: SimulatedCustomers,
) -> None:
    s = cdnow_like.summary
    with pytest.raises(ConvergenceError, match="BG/NBD fit did not converge"):
        fit_bgnbd(s.frequency, s.recency, s.T, max_iterations=2)


def test_unidentified_parameters_raise_a_convergence_error() -> None:
    # Every customer repeats at the same steady rate and nobody drops out: the dropout
    # probability runs to zero (b to infinity) and the fit must say so.
    sim = simulate_customers(BgNbd(50.0, 10.0, 0.01, 1e6), np.full(300, 30.0), seed=1)
    s = sim.summary
    with pytest.raises(ConvergenceError, match=r"ran to its bound|did not converge"):
        fit_bgnbd(s.frequency, s.recency, s.T)


def test_duplicating_every_customer_keeps_the_estimates_and_doubles_the_likelihood(
    cdnow_like: SimulatedCustomers,
) -> None:
    s = cdnow_like.summary
    once = fit_bgnbd(s.frequency[:800], s.recency[:800], s.T[:800])
    twice = fit_bgnbd(
        np.tile(s.frequency[:800], 2), np.tile(s.recency[:800], 2), np.tile(s.T[:800], 2)
    )
    for name, value in once.model.as_dict().items():
        assert twice.model.as_dict()[name] == pytest.approx(value, rel=1e-5)
    assert twice.log_likelihood == pytest.approx(2 * once.log_likelihood, rel=1e-9)
