"""CLV: expected purchases, spend and discounting combined."""

from __future__ import annotations

import numpy as np
import pytest

from mailwright_profile.predict.clv import ClvModel, customer_lifetime_value, fit_clv
from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.simulate import SimulatedCustomers
from mailwright_profile.predict.summary import CustomerSummary

from .conftest import CDNOW_BGNBD, CDNOW_GAMMA_GAMMA

SUMMARY = CustomerSummary.from_arrays(
    [0, 2, 7, 1], [0.0, 30.43, 29.43, 1.71], [38.86, 38.86, 38.86, 38.86], [0.0, 25.0, 40.0, 9.0]
)
MODEL = ClvModel(CDNOW_BGNBD, CDNOW_GAMMA_GAMMA, "week")


def test_undiscounted_clv_is_expected_spend_times_expected_purchases() -> None:
    prediction = MODEL.predict(SUMMARY, horizon=52.0)
    assert prediction.clv is not None
    assert prediction.expected_average_spend is not None
    np.testing.assert_allclose(
        prediction.clv, prediction.expected_average_spend * prediction.expected_purchases
    )


def test_splitting_the_horizon_into_periods_changes_nothing_without_discounting() -> None:
    whole = MODEL.predict(SUMMARY, horizon=52.0).clv
    monthly = MODEL.predict(SUMMARY, horizon=52.0, period=52.0 / 12).clv
    assert whole is not None
    assert monthly is not None
    np.testing.assert_allclose(whole, monthly, rtol=1e-12)


def test_discounting_lowers_clv_and_more_so_for_higher_rates() -> None:
    values = [
        MODEL.predict(SUMMARY, horizon=52.0, period=4.0, discount_rate=rate).clv
        for rate in (0.0, 0.01, 0.05)
    ]
    assert all(v is not None for v in values)
    assert np.all(values[0] > values[1])  # type: ignore[operator]
    assert np.all(values[1] > values[2])  # type: ignore[operator]


def test_discounted_clv_matches_the_sum_over_periods() -> None:
    spend = np.array([30.0])
    x, tx, T = np.array([3.0]), np.array([20.0]), np.array([30.0])
    cumulative = [float(CDNOW_BGNBD.expected_purchases(t, x, tx, T)[0]) for t in (0, 10, 20, 25)]
    expected = 30.0 * sum((cumulative[k] - cumulative[k - 1]) / 1.02**k for k in range(1, 4))
    value = customer_lifetime_value(
        CDNOW_BGNBD, spend, x, tx, T, horizon=25.0, period=10.0, discount_rate=0.02
    )
    assert float(value[0]) == pytest.approx(expected, rel=1e-12)


def test_without_monetary_values_there_is_no_clv_but_purchases_and_p_alive() -> None:
    bare = CustomerSummary.from_arrays(SUMMARY.frequency, SUMMARY.recency, SUMMARY.T)
    prediction = MODEL.predict(bare, horizon=52.0)
    assert prediction.clv is None
    assert prediction.expected_average_spend is None
    assert prediction.probability_alive.shape == (4,)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon": 0.0}, "horizon"),
        ({"horizon": 52.0, "period": -1.0}, "period"),
        ({"horizon": 52.0, "discount_rate": -0.1}, "discount_rate"),
        ({"horizon": 52.0, "period": 1e-6}, "period"),
    ],
)
def test_bad_clv_arguments_are_data_errors(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(DataError, match=f"^{field}:"):
        MODEL.predict(SUMMARY, **kwargs)


def test_fit_clv_fits_both_models_when_amounts_are_known(cdnow_like: SimulatedCustomers) -> None:
    fit = fit_clv(cdnow_like.summary, time_unit="week")
    assert fit.gamma_gamma is not None
    model = fit.model
    assert model.time_unit == "week"
    assert model.gamma_gamma == fit.gamma_gamma.model


def test_repeat_customers_who_spent_nothing_are_left_out_of_the_spend_fit(
    cdnow_like: SimulatedCustomers,
) -> None:
    summary = cdnow_like.summary
    assert summary.monetary_value is not None
    repeaters = np.flatnonzero(summary.frequency > 0)[:5]
    spend = summary.monetary_value.copy()
    spend[repeaters] = 0.0  # free reorders, as in real shops' logs (CDNOW has one)
    with_free = CustomerSummary.from_arrays(summary.frequency, summary.recency, summary.T, spend)
    fit = fit_clv(with_free, time_unit="week")
    assert fit.free_repeaters == 5
    assert fit.gamma_gamma is not None
    spend[repeaters[0]] = -1.0
    with pytest.raises(DataError, match="monetary_value"):
        fit_clv(
            CustomerSummary.from_arrays(summary.frequency, summary.recency, summary.T, spend),
            time_unit="week",
        )
