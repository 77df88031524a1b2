# ruff: noqa: RUF002, RUF003  (the docstrings use the papers' Greek notation)
"""The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005, "Counting your customers
the easy way").

While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each
repeat purchase they drop out with probability p ~ Beta(a, b). A customer's data are
(x, t_x, T): repeat purchases, time of the last one, time since the first purchase.

Everything is computed in log space: the likelihood's two terms are combined with
log-sum-exp, Beta and Gamma functions through `betaln` and `gammaln`, and the conditional
expectation uses an Euler-transformed ₂F₁ whose arguments stay bounded for heavy buyers
(the textbook form multiplies an underflowing power by an overflowing ₂F₁).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.mle import Gradient, Objective, inverse_hessian, minimise

FloatArray = npt.NDArray[np.float64]
PARAMETER_NAMES = ("r", "alpha", "a", "b")
MIN_CUSTOMERS = 10


@dataclass(frozen=True)
class BgNbd:
    """Fitted (or known) BG/NBD parameters with the model's per-customer quantities."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        for name in PARAMETER_NAMES:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise DataError(name, f"BG/NBD parameter must be positive, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in PARAMETER_NAMES}

    def log_likelihood(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """Per-customer log-likelihood of (x, t_x, T)."""
        x, tx, age = _arrays(frequency, recency, T)
        ll, _ = _loglik(np.log([self.r, self.alpha, self.a, self.b]), x, tx, age, False)
        return ll

    def probability_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """P(alive at T | x, t_x, T); 1 for customers without repeat purchases."""
        x, tx, age = _arrays(frequency, recency, T)
        return self._alive(x, self._log_odds_dead(x, tx, age))

    def expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] (the conditional expectation, eq. 10)."""
        x, tx, age = _arrays(frequency, recency, T)
        return self._expected(t, x, age, self._log_odds_dead(x, tx, age))

    def expected_purchases_and_alive(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
    ) -> tuple[FloatArray, FloatArray]:
        """Both of the above, sharing the work they have in common (`t` may be a column
        of horizons broadcast against the customers)."""
        x, tx, age = _arrays(frequency, recency, T)
        log_odds = self._log_odds_dead(x, tx, age)
        return self._expected(t, x, age, log_odds), self._alive(x, log_odds)

    @staticmethod
    def _alive(x: FloatArray, log_odds: FloatArray) -> FloatArray:
        from scipy.special import expit

        return np.asarray(np.where(x > 0, expit(-log_odds), 1.0), dtype=np.float64)

    def _expected(
        self, t: npt.ArrayLike, x: FloatArray, age: FloatArray, log_odds: FloatArray
    ) -> FloatArray:
        horizon = np.asarray(t, dtype=np.float64)
        if np.any(horizon < 0):
            raise DataError("t", "the horizon must be >= 0")
        z = horizon / (self.alpha + age + horizon)
        growth = (self.a + self.b + x - 1.0) * self._one_minus_survival(x, z)
        log_denominator = np.where(x > 0, np.logaddexp(0.0, log_odds), 0.0)
        return np.asarray(growth * np.exp(-log_denominator), dtype=np.float64)

    def expected_purchases_new(self, t: npt.ArrayLike) -> FloatArray:
        """E[X(t)]: repeat purchases by time t of a customer who has just made the first."""
        horizon = np.asarray(t, dtype=np.float64)
        zeros = np.zeros_like(horizon)
        return self.expected_purchases(horizon, zeros, zeros, zeros)

    def _log_odds_dead(self, x: FloatArray, tx: FloatArray, age: FloatArray) -> FloatArray:
        # log[a / (b + x - 1) * ((α + T) / (α + t_x))^(r + x)], defined for x > 0.
        xs = np.maximum(x, 1.0)
        return np.asarray(
            np.log(self.a)
            - np.log(self.b + xs - 1.0)
            + (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + tx)),
            dtype=np.float64,
        )

    def _one_minus_survival(self, x: FloatArray, z: FloatArray) -> FloatArray:
        """[1 - (1-z)^(a-1) ₂F₁(a+b-1-r, a-1; a+b+x-1; z)] / (a - 1).

        The Euler transform of (1-z)^(r+x) ₂F₁(r+x, b+x; a+b+x-1; z); at a = 1 the
        quotient is 0/0 with a finite limit, taken as the mean of a = 1 ± h.
        """
        h = 1e-6
        if abs(self.a - 1.0) >= h:
            return _survival_quotient(self.r, self.a, self.b, x, z)
        low = _survival_quotient(self.r, 1.0 - h, self.b, x, z)
        high = _survival_quotient(self.r, 1.0 + h, self.b, x, z)
        return 0.5 * (low + high)


def _survival_quotient(r: float, a: float, b: float, x: FloatArray, z: FloatArray) -> FloatArray:
    from scipy.special import hyp2f1

    power = np.exp((a - 1.0) * np.log1p(-z))
    with np.errstate(invalid="ignore", over="ignore"):
        series = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        quotient = np.asarray((1.0 - power * series) / (a - 1.0), dtype=np.float64)
    bad = ~np.isfinite(quotient)
    if np.any(bad):
        # Large a and b (dropout barely identified) overflow the transformed series where
        # the textbook form, (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z), is well behaved.
        xb, zb = np.broadcast_to(x, quotient.shape)[bad], np.broadcast_to(z, quotient.shape)[bad]
        textbook = np.exp((r + xb) * np.log1p(-zb)) * hyp2f1(r + xb, b + xb, a + b + xb - 1.0, zb)
        quotient[bad] = (1.0 - textbook) / (a - 1.0)
    return quotient


def _arrays(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.asarray(recency, dtype=np.float64)
    age = np.asarray(T, dtype=np.float64)
    return x, tx, age


Levels = tuple[FloatArray, npt.NDArray[np.intp]]


def _levels(x: FloatArray) -> Levels:
    """The distinct purchase counts and each customer's index into them."""
    values, index = np.unique(x, return_inverse=True)
    return values.astype(np.float64), index.reshape(np.shape(x))


def _loglik(
    theta: FloatArray,
    x: FloatArray,
    tx: FloatArray,
    age: FloatArray,
    with_gradient: bool,
    levels: Levels | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """Per-customer log-likelihood and (optionally) its gradient in log-parameters.

    ℓ = ln Γ(r+x) - ln Γ(r) + r ln α + ln(e^A + δ(x>0) e^B) with
    A = ln B(a, b+x) - ln B(a, b) - (r+x) ln(α+T),
    B = ln B(a+1, b+x-1) - ln B(a, b) - (r+x) ln(α+t_x).

    Every special function depends on x alone, and purchase counts take few distinct
    values: they are evaluated once per distinct count and gathered, which leaves only
    logarithms and exponentials per customer.
    """
    from scipy.special import betaln, digamma, gammaln

    r, alpha, a, b = np.exp(theta)
    values, index = levels if levels is not None else _levels(x)
    repeat = values > 0
    xs = np.where(repeat, values, 1.0)
    beta_ab = betaln(a, b)
    base_a = betaln(a, b + values) - beta_ab
    base_b = np.where(repeat, betaln(a + 1.0, b + xs - 1.0) - beta_ab, -np.inf)
    constant = gammaln(r + values) - gammaln(r) + r * np.log(alpha)
    rx = r + x
    log_at = np.log(alpha + age)
    log_atx = np.log(alpha + tx)
    term_a = base_a[index] - rx * log_at
    term_b = base_b[index] - rx * log_atx
    lse = np.logaddexp(term_a, term_b)
    ll = np.asarray(constant[index] + lse, dtype=np.float64)
    if not with_gradient:
        return ll, None
    w_a = np.exp(term_a - lse)
    w_b = np.exp(term_b - lse)
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + values)
    psi_b = digamma(b)
    dr_level = digamma(r + values) - digamma(r) + np.log(alpha)
    da_a, da_b = psi_ab - psi_abx, 1.0 / a + psi_ab - psi_abx
    db_a = digamma(b + values) - psi_abx - psi_b + psi_ab
    db_b = digamma(b + xs - 1.0) - psi_abx - psi_b + psi_ab
    d_r = dr_level[index] - w_a * log_at - w_b * log_atx
    d_alpha = r / alpha - rx * (w_a / (alpha + age) + w_b / (alpha + tx))
    d_a = w_a * da_a[index] + w_b * da_b[index]
    d_b = w_a * db_a[index] + w_b * db_b[index]
    # Chain rule to log-parameters: ∂ℓ/∂ln θ = θ ∂ℓ/∂θ.
    gradient = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b], axis=1)
    return ll, np.asarray(gradient, dtype=np.float64)


@dataclass(frozen=True)
class BgNbdFit:
    """A converged maximum-likelihood fit."""

    model: BgNbd
    log_likelihood: float
    n_customers: int
    iterations: int
    gradient: Gradient


def _compress(
    x: FloatArray, tx: FloatArray, age: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Identical (x, t_x, T) rows collapse into one row with a weight."""
    order = np.lexsort((age, tx, x))
    sx, stx, sage = x[order], tx[order], age[order]
    starts = np.flatnonzero(
        np.concatenate([[True], (np.diff(sx) != 0) | (np.diff(stx) != 0) | (np.diff(sage) != 0)])
    )
    counts = np.diff(np.append(starts, x.size)).astype(np.float64)
    return sx[starts], stx[starts], sage[starts], counts


def objective(x: FloatArray, tx: FloatArray, age: FloatArray, weights: FloatArray) -> Objective:
    """Mean negative log-likelihood and its gradient, as a function of log-parameters."""
    total = float(weights.sum())
    levels = _levels(x)

    def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = _loglik(theta, x, tx, age, True, levels)
        assert grad is not None
        return -float(weights @ ll) / total, -(weights @ grad) / total

    return value_and_gradient


def _check_data(x: FloatArray, tx: FloatArray, age: FloatArray) -> None:
    if x.size < MIN_CUSTOMERS:
        raise DataError(
            "customers", f"BG/NBD needs at least {MIN_CUSTOMERS} customers, got {x.size}"
        )
    if not np.any(x > 0):
        raise DataError("frequency", "no customer has a repeat purchase; BG/NBD cannot be fitted")
    if not np.any(age > 0):
        raise DataError("T", "every customer has T = 0; there is no observation time")


def initial_log_parameters(x: FloatArray, age: FloatArray) -> FloatArray:
    """A start near the data's scale: r = 1 and α from the mean purchase rate."""
    rate = max(float(x.sum()) / max(float(age.sum()), 1e-12), 1e-12)
    return np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0], dtype=np.float64))


def fit_bgnbd(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    gradient: Gradient = "analytic",
    max_iterations: int = 1000,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD parameters (L-BFGS-B on log-parameters).

    `gradient="numerical"` uses finite differences instead of the analytic gradient (for
    comparison). Raises `DataError` for data that cannot identify the model and
    `ConvergenceError` when the optimiser does not reach a stationary point.
    """
    x, tx, age = _arrays(frequency, recency, T)
    _check_data(x, tx, age)
    ux, utx, uage, weights = _compress(x, tx, age)
    optimum = minimise(
        objective(ux, utx, uage, weights),
        initial_log_parameters(x, age),
        model="BG/NBD",
        names=PARAMETER_NAMES,
        gradient=gradient,
        max_iterations=max_iterations,
    )
    r, alpha, a, b = (float(v) for v in np.exp(optimum.theta))
    return BgNbdFit(
        model=BgNbd(r, alpha, a, b),
        log_likelihood=-optimum.mean_negative_log_likelihood * float(weights.sum()),
        n_customers=int(x.size),
        iterations=optimum.iterations,
        gradient=gradient,
    )


def log_parameter_covariance(
    model: BgNbd, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Asymptotic covariance of (ln r, ln α, ln a, ln b): the inverse observed information.

    Standard errors of the parameters follow by the delta method, se(θ) ≈ θ · se(ln θ).
    """
    x, tx, age = _arrays(frequency, recency, T)
    ux, utx, uage, weights = _compress(x, tx, age)
    theta = np.log([model.r, model.alpha, model.a, model.b])
    return inverse_hessian(objective(ux, utx, uage, weights), theta, float(weights.sum()))
