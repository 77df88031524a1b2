"""Maximum-likelihood plumbing shared by the CLV models.

Parameters are optimised on the log scale (so they stay positive without constraints) by
L-BFGS-B with box bounds that keep exp() finite. A fit is accepted only at an interior
stationary point; otherwise `ConvergenceError` says why, and no numbers are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import ConvergenceError

FloatArray = npt.NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]
Gradient = Literal["analytic", "numerical"]

# Bounds on log-parameters: wide enough for any time unit, tight enough to keep exp() finite.
LOG_BOUND = 25.0
# Largest |∂(mean log-likelihood)/∂ ln θ| accepted as a stationary point.
STATIONARY_GRADIENT = 1e-5


@dataclass(frozen=True)
class Optimum:
    theta: FloatArray  # log-parameters at the optimum
    mean_negative_log_likelihood: float
    iterations: int


def minimise(
    fun: Objective,
    start: FloatArray,
    *,
    model: str,
    names: tuple[str, ...],
    gradient: Gradient,
    max_iterations: int,
) -> Optimum:
    """Minimise a mean negative log-likelihood over log-parameters.

    With `gradient="numerical"` scipy's finite differences replace the analytic gradient
    (kept for comparison in the benchmark); the convergence check always uses the analytic
    gradient.
    """
    from scipy.optimize import minimize

    bounds = [(-LOG_BOUND, LOG_BOUND)] * start.size
    options = {"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9}
    if gradient == "analytic":
        result = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    elif gradient == "numerical":
        result = minimize(
            lambda theta: fun(theta)[0], start, method="L-BFGS-B", bounds=bounds, options=options
        )
    else:
        raise ValueError(f"gradient must be 'analytic' or 'numerical', got {gradient!r}")
    theta = np.asarray(result.x, dtype=np.float64)
    _check_converged(model, names, result, theta, fun)
    return Optimum(theta, float(result.fun), int(result.nit))


def _check_converged(
    model: str, names: tuple[str, ...], result: object, theta: FloatArray, fun: Objective
) -> None:
    """Raise unless the optimiser stopped at an interior stationary point."""
    if not np.all(np.isfinite(theta)):
        raise ConvergenceError(model, "the parameters are not finite")
    value, grad = fun(theta)
    if not (np.isfinite(value) and np.all(np.isfinite(grad))):
        raise ConvergenceError(model, "the log-likelihood is not finite at the solution")
    at_bound = np.abs(theta) >= LOG_BOUND - 1e-6
    if at_bound.any():
        name = names[int(np.flatnonzero(at_bound)[0])]
        raise ConvergenceError(
            model, f"parameter {name} ran to its bound (the data do not identify it)"
        )
    # L-BFGS-B can stop on a line-search failure at the optimum itself: accept that only
    # when the gradient is essentially zero, and never accept a non-stationary "success".
    largest = float(np.max(np.abs(grad)))
    if largest >= STATIONARY_GRADIENT:
        raise ConvergenceError(model, f"{_reason(result)} (gradient {largest:.2e} at the end)")


def _reason(result: object) -> str:
    message = str(getattr(result, "message", "")).strip()
    if message.startswith("ABNORMAL"):
        return "the line search could not improve the likelihood further"
    if "ITERATIONS REACHED LIMIT" in message.upper():
        return "the iteration limit was reached"
    return message.lower() or "the optimiser stopped early"


def inverse_hessian(fun: Objective, theta: FloatArray, total: float) -> FloatArray:
    """Inverse observed information of the total log-likelihood at `theta` (central
    differences of the analytic gradient of the mean, scaled by `total`)."""
    k = theta.size
    hessian = np.empty((k, k))
    step = 1e-5
    for j in range(k):
        shift = np.zeros(k)
        shift[j] = step
        hessian[:, j] = (fun(theta + shift)[1] - fun(theta - shift)[1]) / (2 * step)
    hessian = 0.5 * (hessian + hessian.T) * total
    return np.asarray(np.linalg.inv(hessian), dtype=np.float64)
