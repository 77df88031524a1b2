"""Gamma-Gamma: the density, the gradient, recovery, and the expected spend."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import chi2

from mailwright_profile.predict.errors import ConvergenceError, DataError
from mailwright_profile.predict.gammagamma import (
    GammaGamma,
    _loglik,
    fit_gamma_gamma,
    log_parameter_covariance,
)
from mailwright_profile.predict.simulate import SimulatedCustomers

from .conftest import CDNOW_GAMMA_GAMMA


def test_density_of_the_mean_spend_integrates_to_one() -> None:
    model = GammaGamma(6.25, 3.74, 15.44)
    for x in (1.0, 3.0):
        total, _ = quad(lambda m, x=x: float(np.exp(model.log_likelihood([x], [m])[0])), 0, np.inf)
        assert total == pytest.approx(1.0, abs=1e-7)


def test_log_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(1, 10, size=100).astype(float)
    m = rng.gamma(3.0, 10.0, size=100)
    theta = np.log([4.0, 3.0, 20.0])
    _, grad = _loglik(theta, x, m, True)
    assert grad is not None
    h = 1e-6
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        up, _ = _loglik(theta + step, x, m, False)
        down, _ = _loglik(theta - step, x, m, False)
        np.testing.assert_allclose(grad[:, j], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


def test_fit_recovers_parameters_within_sampling_error(cdnow_like: SimulatedCustomers) -> None:
    s = cdnow_like.summary
    assert s.monetary_value is not None
    fit = fit_gamma_gamma(s.frequency, s.monetary_value)
    covariance = log_parameter_covariance(fit.model, s.frequency, s.monetary_value)
    error = np.log(list(fit.model.as_dict().values())) - np.log(
        list(CDNOW_GAMMA_GAMMA.as_dict().values())
    )
    assert error @ np.linalg.solve(covariance, error) < chi2.ppf(0.999, df=3)
    assert fit.n_customers == int(np.count_nonzero(s.frequency))


def test_fit_reports_frequency_spend_correlation_near_zero_for_independent_data(
    cdnow_like: SimulatedCustomers,
) -> None:
    s = cdnow_like.summary
    assert s.monetary_value is not None
    fit = fit_gamma_gamma(s.frequency, s.monetary_value)
    # Under independence the sample correlation of n pairs has sd about 1/sqrt(n).
    assert abs(fit.frequency_spend_correlation) < 4 / np.sqrt(fit.n_customers)


def test_expected_spend_without_repeat_purchases_is_the_population_mean() -> None:
    model = GammaGamma(6.25, 3.74, 15.44)
    assert float(model.expected_average_spend(0, 0)) == pytest.approx(6.25 * 15.44 / 2.74)


def test_expected_spend_moves_toward_the_customers_own_mean_with_more_purchases() -> None:
    model = GammaGamma(6.25, 3.74, 15.44)
    own = 100.0
    spends = model.expected_average_spend([1, 5, 50, 5000], [own] * 4)
    assert np.all(np.diff(spends) > 0)
    assert spends[-1] == pytest.approx(own, rel=1e-3)


def test_infinite_population_mean_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"q = 0\.9 <= 1"):
        GammaGamma(2.0, 0.9, 10.0).expected_average_spend([0], [0])


def test_non_positive_spend_of_a_repeat_customer_is_a_data_error() -> None:
    with pytest.raises(DataError, match="monetary_value: must be positive"):
        fit_gamma_gamma([1, 2, 3] * 5, [10.0, 0.0, 5.0] * 5)


def test_too_few_repeat_customers_is_a_data_error() -> None:
    with pytest.raises(DataError, match="at least 10 customers with repeat purchases"):
        fit_gamma_gamma([0, 0, 1, 2], [0, 0, 10.0, 12.0])


def test_identical_spend_everywhere_does_not_identify_the_model() -> None:
    # No spread between customers: q and v run off to infinity together.
    with pytest.raises(ConvergenceError, match="Gamma-Gamma fit did not converge"):
        fit_gamma_gamma([1, 2, 3, 4] * 10, [20.0] * 40)
