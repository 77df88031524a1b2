"""The CLV models on generated customers, each against a baseline in the same run.

- BG/NBD fit time on 100,000 customers (20,000 with --quick) simulated from the published
  CDNOW parameters: L-BFGS-B with the analytic gradient ÷ the same fit with scipy's
  finite-difference gradient (lower is better).
- Scoring throughput (expected purchases, p_alive, expected spend and 12-month CLV) with
  `ClvModel.predict` over all profiles ÷ a plain Python loop applying the same formulas
  one profile at a time (math and scalar scipy calls), on a slice of the same profiles;
  the loop's answers are checked against the vectorised ones. Twice: discounted monthly
  (twelve ₂F₁ evaluations per profile) and undiscounted (one).

Each measurement is repeated and the round with the median ratio is reported, since the
machine may be busy with other work.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from scipy.special import hyp2f1

from bench.common import Result
from mailwright_profile.predict.bgnbd import BgNbd, fit_bgnbd
from mailwright_profile.predict.clv import ClvModel
from mailwright_profile.predict.gammagamma import GammaGamma
from mailwright_profile.predict.simulate import simulate_customers
from mailwright_profile.predict.summary import CustomerSummary

TRUTH = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
SPEND = GammaGamma(p=6.25, q=3.74, v=15.44)
HORIZON = 52.0  # weeks
PERIOD = 52.0 / 12


def _customers(count: int) -> CustomerSummary:
    ages = np.random.default_rng(1).uniform(27.0, 39.0, size=count)
    return simulate_customers(TRUTH, ages, spend=SPEND, seed=2).summary


def _seconds(function: object, *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - started


def _median_round(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    ratios = [value / baseline for value, baseline in pairs]
    return pairs[ratios.index(statistics.median_low(ratios))]


def _fit_result(summary: CustomerSummary, rounds: int) -> Result:
    x, tx, age = summary.frequency, summary.recency, summary.T
    pairs = [
        (
            _seconds(fit_bgnbd, x, tx, age, gradient="analytic"),
            _seconds(fit_bgnbd, x, tx, age, gradient="numerical"),
        )
        for _ in range(rounds)
    ]
    analytic, numerical = _median_round(pairs)
    return Result(
        f"BG/NBD fit, {len(summary):,} customers",
        1000 * analytic,
        "ms (analytic gradient)",
        1000 * numerical,
        "ms (finite-difference gradient)",
        analytic / numerical,
        "<= 0.5",
    )


def _loop_scores(
    bgnbd: BgNbd, spend: GammaGamma, summary: CustomerSummary, count: int, discount: float
) -> list[tuple[float, float]]:
    """(p_alive, CLV) per profile, one at a time, with the formulas of `bgnbd` and `clv`."""
    r, alpha, a, b = bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b
    money = summary.monetary_value
    assert money is not None
    period = PERIOD if discount else HORIZON
    steps = math.ceil(HORIZON / period - 1e-12)
    out = []
    for i in range(count):
        x, tx, age, m = (
            float(summary.frequency[i]),
            float(summary.recency[i]),
            float(summary.T[i]),
            float(money[i]),
        )
        if x > 0:
            log_odds = (
                math.log(a)
                - math.log(b + x - 1)
                + (r + x) * (math.log(alpha + age) - math.log(alpha + tx))
            )
            p_alive = 1.0 / (1.0 + math.exp(log_odds)) if log_odds < 700 else 0.0
        else:
            log_odds, p_alive = -math.inf, 1.0
        scale = 1.0 / (1.0 + math.exp(log_odds)) if log_odds < 700 else 0.0

        def expected(t: float, x: float = x, age: float = age, scale: float = scale) -> float:
            z = t / (alpha + age + t)
            power = math.exp((a - 1) * math.log1p(-z))
            series = float(hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z))
            return (a + b + x - 1) * (1 - power * series) / (a - 1) * scale

        average_spend = spend.p * (spend.v + x * m) / (spend.p * x + spend.q - 1)
        value, previous = 0.0, 0.0
        for k in range(1, steps + 1):
            current = expected(min(k * period, HORIZON))
            value += (current - previous) / (1 + discount) ** k
            previous = current
        out.append((p_alive, average_spend * value))
    return out


def _scoring_result(
    summary: CustomerSummary, loop_count: int, rounds: int, discount: float
) -> Result:
    model = ClvModel(TRUTH, SPEND, "week")

    def vectorised() -> None:
        model.predict(summary, horizon=HORIZON, period=PERIOD, discount_rate=discount)

    def loop() -> None:
        _loop_scores(TRUTH, SPEND, summary, loop_count, discount)

    prediction = model.predict(summary, horizon=HORIZON, period=PERIOD, discount_rate=discount)
    looped = _loop_scores(TRUTH, SPEND, summary, loop_count, discount)
    assert prediction.clv is not None
    np.testing.assert_allclose([p for p, _ in looped], prediction.probability_alive[:loop_count])
    np.testing.assert_allclose([c for _, c in looped], prediction.clv[:loop_count], rtol=1e-9)
    pairs = [
        (len(summary) / _seconds(vectorised), loop_count / _seconds(loop)) for _ in range(rounds)
    ]
    ratios = [v / b for v, b in pairs]
    vector_rate, loop_rate = pairs[ratios.index(statistics.median_low(ratios))]
    how = "monthly discounting, 12 steps" if discount else "undiscounted, 1 step"
    return Result(
        f"CLV + p_alive scoring ({how})",
        vector_rate,
        f"profiles/s (vectorised, {len(summary):,} profiles)",
        loop_rate,
        f"profiles/s (Python loop, {loop_count:,} profiles)",
        vector_rate / loop_rate,
        ">= 10",
    )


def run(quick: bool) -> list[Result]:
    count = 20_000 if quick else 100_000
    rounds = 1 if quick else 3
    summary = _customers(count)
    return [
        _fit_result(summary, rounds),
        _scoring_result(summary, 1_000 if quick else 5_000, rounds, discount=0.01),
        _scoring_result(summary, 1_000 if quick else 5_000, rounds, discount=0.0),
    ]


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
