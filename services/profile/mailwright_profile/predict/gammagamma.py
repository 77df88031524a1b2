# ruff: noqa: RUF002  (the docstrings use the papers' Greek notation)
"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV:
using iso-value curves", with the notation of Fader & Hardie's note on the model).

Each transaction of a customer is z ~ Gamma(p, ν), and ν ~ Gamma(q, v) across customers,
so the mean m̄ of a customer's x repeat transactions has density
f(m̄ | p, q, v, x) = Γ(px+q) / (Γ(px) Γ(q)) · v^q m̄^(px-1) x^(px) / (v + x m̄)^(px+q).
Only customers with repeat purchases inform the fit. The model assumes spend is
independent of purchase frequency; the fit reports their correlation so it can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.mle import Gradient, Objective, inverse_hessian, minimise

FloatArray = npt.NDArray[np.float64]
PARAMETER_NAMES = ("p", "q", "v")
MIN_REPEAT_CUSTOMERS = 10


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma parameters and the conditional expected spend per transaction."""

    p: float
    q: float
    v: float

    def __post_init__(self) -> None:
        for name in PARAMETER_NAMES:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise DataError(name, f"Gamma-Gamma parameter must be positive, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in PARAMETER_NAMES}

    def population_mean_spend(self) -> float:
        """E[Z] = p v / (q - 1); infinite when q <= 1."""
        if self.q <= 1.0:
            raise DataError("q", f"q = {self.q:.4g} <= 1: the mean spend is infinite")
        return self.p * self.v / (self.q - 1.0)

    def expected_average_spend(
        self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
    ) -> FloatArray:
        """E[Z | x, m̄] = (p (v + x m̄)) / (p x + q - 1): a weighted mean of the population
        mean and the customer's own mean; the population mean for x = 0."""
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        if np.any(x == 0):
            self.population_mean_spend()
        return np.asarray(self.p * (self.v + x * m) / (self.p * x + self.q - 1.0), dtype=np.float64)

    def log_likelihood(self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> FloatArray:
        """Per-customer log density of m̄ given x (customers with x > 0 only)."""
        x, m = _repeaters(frequency, monetary_value)
        ll, _ = _loglik(np.log([self.p, self.q, self.v]), x, m, False)
        return ll


def _repeaters(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    keep = x > 0
    x, m = x[keep], m[keep]
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        bad = int(np.count_nonzero(~(np.isfinite(m) & (m > 0))))
        raise DataError(
            "monetary_value",
            f"must be positive for customers with repeat purchases ({bad} are not)",
        )
    return x, m


def _loglik(
    theta: FloatArray, x: FloatArray, m: FloatArray, with_gradient: bool
) -> tuple[FloatArray, FloatArray | None]:
    from scipy.special import digamma, gammaln

    p, q, v = np.exp(theta)
    px = p * x
    log_vmx = np.log(v + m * x)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_vmx
    )
    if not with_gradient:
        return np.asarray(ll, dtype=np.float64), None
    psi = digamma(px + q)
    d_p = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_vmx)
    d_q = psi - digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + m * x)
    gradient = np.stack([d_p * p, d_q * q, d_v * v], axis=1)
    return np.asarray(ll, dtype=np.float64), np.asarray(gradient, dtype=np.float64)


def objective(x: FloatArray, m: FloatArray) -> Objective:
    """Mean negative log-likelihood and its gradient in log-parameters."""
    n = float(x.size)

    def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = _loglik(theta, x, m, True)
        assert grad is not None
        return -float(ll.sum()) / n, -grad.sum(axis=0) / n

    return value_and_gradient


@dataclass(frozen=True)
class GammaGammaFit:
    model: GammaGamma
    log_likelihood: float
    n_customers: int  # customers with repeat purchases (the ones that inform the fit)
    iterations: int
    frequency_spend_correlation: float  # should be near 0 for the model to apply
    gradient: Gradient


def fit_gamma_gamma(
    frequency: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    gradient: Gradient = "analytic",
    max_iterations: int = 1000,
) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma parameters from the customers with x > 0."""
    x, m = _repeaters(frequency, monetary_value)
    if x.size < MIN_REPEAT_CUSTOMERS:
        raise DataError(
            "frequency",
            f"Gamma-Gamma needs at least {MIN_REPEAT_CUSTOMERS} customers with repeat "
            f"purchases, got {x.size}",
        )
    optimum = minimise(
        objective(x, m),
        np.log(np.array([1.0, 2.0, float(np.mean(m))])),
        model="Gamma-Gamma",
        names=PARAMETER_NAMES,
        gradient=gradient,
        max_iterations=max_iterations,
    )
    p, q, v = (float(value) for value in np.exp(optimum.theta))
    correlation = float(np.corrcoef(x, m)[0, 1]) if np.ptp(x) > 0 and np.ptp(m) > 0 else 0.0
    return GammaGammaFit(
        model=GammaGamma(p, q, v),
        log_likelihood=-optimum.mean_negative_log_likelihood * x.size,
        n_customers=int(x.size),
        iterations=optimum.iterations,
        frequency_spend_correlation=correlation,
        gradient=gradient,
    )


def log_parameter_covariance(
    model: GammaGamma, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """Asymptotic covariance of (ln p, ln q, ln v) from the observed information."""
    x, m = _repeaters(frequency, monetary_value)
    theta = np.log([model.p, model.q, model.v])
    return inverse_hessian(objective(x, m), theta, float(x.size))
