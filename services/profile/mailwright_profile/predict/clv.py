"""Customer lifetime value: BG/NBD for how often, Gamma-Gamma for how much.

`fit_clv` fits both models to a `CustomerSummary`; `ClvModel.predict` gives, per customer,
the expected purchases over a horizon, the probability of being alive, the expected spend
per purchase and the (optionally discounted) CLV. The models themselves live in `bgnbd`
and `gammagamma`; this module combines them and is what scorers and the CLI call.

CLV over a horizon H split into periods of length P, with a discount rate d per period:
    CLV = E[spend] · Σ_k (E[Y(t_k)] - E[Y(t_(k-1))]) / (1 + d)^k,   t_k = min(kP, H),
which is E[spend] · E[Y(H)] when d = 0. Spend is the expected average spend of a
purchase (revenue or margin, whichever the amounts were).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.bgnbd import BgNbd, BgNbdFit, fit_bgnbd
from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.gammagamma import GammaGamma, GammaGammaFit, fit_gamma_gamma
from mailwright_profile.predict.mle import Gradient
from mailwright_profile.predict.summary import DAYS_PER_UNIT, CustomerSummary, TimeUnit

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "BgNbd",
    "BgNbdFit",
    "ClvFit",
    "ClvModel",
    "ClvPrediction",
    "GammaGamma",
    "GammaGammaFit",
    "customer_lifetime_value",
    "fit_bgnbd",
    "fit_clv",
    "fit_gamma_gamma",
    "units_in",
]


def units_in(days: float, time_unit: TimeUnit) -> float:
    """A duration in days expressed in the model's time unit (e.g. 365 days = 52.14 weeks)."""
    return days / DAYS_PER_UNIT[time_unit]


def _boundaries(horizon: float, period: float | None, discount_rate: float) -> FloatArray:
    """Ends of the periods (t_1, ..., t_K = horizon); one period without discounting."""
    if not (math.isfinite(horizon) and horizon > 0):
        raise DataError("horizon", f"must be a positive number, got {horizon!r}")
    step = horizon if period is None else period
    if not (math.isfinite(step) and step > 0):
        raise DataError("period", f"must be a positive number, got {period!r}")
    if not (math.isfinite(discount_rate) and discount_rate >= 0):
        raise DataError("discount_rate", f"must be >= 0, got {discount_rate!r}")
    steps = math.ceil(horizon / step - 1e-12)
    if steps > 10_000:
        raise DataError("period", f"{steps} periods in the horizon; use a longer period")
    if discount_rate == 0:
        return np.array([horizon])  # undiscounted, the periods add up to E[Y(horizon)]
    return np.minimum(np.arange(1, steps + 1, dtype=np.float64) * step, horizon)


def _discounted(cumulative: FloatArray, discount_rate: float) -> FloatArray:
    """Σ_k (E[Y(t_k)] - E[Y(t_(k-1))]) / (1 + d)^k from the rows E[Y(t_k)], E[Y(0)] = 0."""
    per_period = np.diff(cumulative, axis=0, prepend=0.0)
    discounts = (1.0 + discount_rate) ** -np.arange(1, cumulative.shape[0] + 1, dtype=np.float64)
    return np.asarray(discounts @ per_period, dtype=np.float64)


def customer_lifetime_value(
    bgnbd: BgNbd,
    spend: FloatArray,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    horizon: float,
    period: float | None = None,
    discount_rate: float = 0.0,
) -> FloatArray:
    """Discounted expected value of each customer's purchases in (T, T + horizon]."""
    boundaries = _boundaries(horizon, period, discount_rate)
    x = np.asarray(frequency, dtype=np.float64)
    cumulative = bgnbd.expected_purchases(
        boundaries[:, None], x[None, :], np.asarray(recency)[None, :], np.asarray(T)[None, :]
    )
    return np.asarray(spend * _discounted(cumulative, discount_rate), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ClvPrediction:
    """Per-customer predictions, aligned with `customer_ids`."""

    customer_ids: tuple[str, ...]
    horizon: float
    expected_purchases: FloatArray
    probability_alive: FloatArray
    expected_average_spend: FloatArray | None
    clv: FloatArray | None


@dataclass(frozen=True)
class ClvModel:
    """Fitted parameters and the time unit they are expressed in."""

    bgnbd: BgNbd
    gamma_gamma: GammaGamma | None
    time_unit: TimeUnit = "day"

    def predict(
        self,
        summary: CustomerSummary,
        *,
        horizon: float,
        period: float | None = None,
        discount_rate: float = 0.0,
    ) -> ClvPrediction:
        """Predictions over `horizon` (in the model's time unit); see `customer_lifetime_value`
        for `period` and `discount_rate`. CLV needs a Gamma-Gamma model and monetary values."""
        x, tx, age = summary.frequency, summary.recency, summary.T
        boundaries = _boundaries(horizon, period, discount_rate)
        cumulative, alive = self.bgnbd.expected_purchases_and_alive(
            boundaries[:, None], x[None, :], tx[None, :], age[None, :]
        )
        purchases = cumulative[-1]
        spend = clv = None
        if self.gamma_gamma is not None and summary.monetary_value is not None:
            spend = self.gamma_gamma.expected_average_spend(x, summary.monetary_value)
            clv = spend * _discounted(cumulative, discount_rate)
        return ClvPrediction(summary.customer_ids, horizon, purchases, alive[0], spend, clv)


@dataclass(frozen=True)
class ClvFit:
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit | None
    time_unit: TimeUnit
    free_repeaters: int = 0
    """Repeat customers whose repeat purchases cost nothing: left out of Gamma-Gamma."""

    @property
    def model(self) -> ClvModel:
        spend = None if self.gamma_gamma is None else self.gamma_gamma.model
        return ClvModel(self.bgnbd.model, spend, self.time_unit)


def fit_clv(
    summary: CustomerSummary, *, time_unit: TimeUnit = "day", gradient: Gradient = "analytic"
) -> ClvFit:
    """Fit BG/NBD, and Gamma-Gamma when the summary has monetary values.

    Real order logs hold repeat purchases worth nothing (free items, fully discounted
    orders); Gamma-Gamma has no density at zero spend, so those customers are left out of
    its fit (counted in `free_repeaters`). A negative spend is still an error."""
    bgnbd = fit_bgnbd(summary.frequency, summary.recency, summary.T, gradient=gradient)
    spend = None
    free = 0
    if summary.monetary_value is not None:
        x = np.asarray(summary.frequency, dtype=np.float64)
        m = np.asarray(summary.monetary_value, dtype=np.float64)
        keep = ~((x > 0) & (m == 0))
        free = int(np.count_nonzero(~keep))
        spend = fit_gamma_gamma(x[keep], m[keep], gradient=gradient)
    return ClvFit(bgnbd, spend, time_unit, free)
