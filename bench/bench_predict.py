"""The CLV models on generated customers, each against a baseline in the same run.

- BG/NBD fit time on 100,000 customers (10,000 with --quick) simulated from the published
  CDNOW parameters: L-BFGS-B with the analytic gradient ÷ the same fit with scipy's
  finite-difference gradient (lower is better).
- Scoring throughput (expected purchases, p_alive, expected spend and 12-month CLV) with
  `ClvModel.predict` over all profiles ÷ a plain Python loop applying the same formulas
  one profile at a time (math and scalar scipy calls), on a slice of the same profiles;
  the loop's answers are checked against the vectorised ones. Twice: discounted monthly
  (twelve ₂F₁ evaluations per profile) and undiscounted (one).

- Scoring throughput of the five built-in scorers on the profile service's own data (300
  simulated people applied through the store on SQLite, models trained by `Predictor`):
  model only, `score_all` over everyone ÷ `score` one person at a time on prebuilt
  feature mappings (the per-row cost); and through the store, re-scoring a batch of changed
  profiles in one `rescore` call (what the consumer's after-batch hook does: their
  history read, one vectorised `score_all` per scorer, scores and outbox written) ÷ one
  profile per call, and a whole workspace's `score_all` ÷ the same one-by-one rate.
  The one-at-a-time baselines take all 300 people (--quick: 250 people, the baselines on
  30 of them beside a batch of 100, since at 15-25 profiles/s they were most of the quick
  run; at 200 people only 99 of them buy, and the BG/NBD fit of the `clv` scorer stops at
  the bound of its dropout parameter, so training fails).

Each measurement is repeated and the round with the median ratio is reported, since the
machine may be busy with other work.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def _service_results(people: int, rounds: int, sample: int, singles: int) -> list[Result]:
    """`sample` changed profiles re-scored in one batch; the one-at-a-time baselines take
    the first `singles` of them (at 15-25 profiles/s they are most of the module's time)."""
    from mailwright.runtime.db import Database
    from mailwright_profile import convert
    from mailwright_profile.app import MIGRATIONS
    from mailwright_profile.events import read_event
    from mailwright_profile.predict.builtin import builtin_scorers
    from mailwright_profile.predict.service import Predictor
    from mailwright_profile.predict.simulate import profile_events, simulate_event_log
    from mailwright_profile.store import ProfileStore

    start = datetime(2025, 1, 1, tzinfo=UTC)
    now = start + timedelta(days=240)
    with tempfile.TemporaryDirectory() as folder:
        db = Database(
            f"sqlite:///{Path(folder) / 'bench.db'}", service="profile", migrations=MIGRATIONS
        )
        db.migrate()
        store = ProfileStore(
            db, convert.encode_changed, convert.encode_deleted, convert.email_hashes
        )
        events = profile_events(simulate_event_log(people, start=start, days=240, seed=1))
        for i in range(0, len(events), 1000):
            store.apply_batch([read_event(e) for e in events[i : i + 1000]], start)
        predictor = Predictor(db, builtin_scorers())
        history = predictor.history("acme", now)
        failed = [o for o in predictor.train("acme", now, history=history) if o.error]
        assert not failed, failed
        loaded = predictor.loaded("acme")
        data = history.training_data(now)
        features = history.features_of(now)
        chosen = sorted(features)[:singles]

        def model_all() -> None:
            for scorer in loaded:
                scorer.score_all(data)

        def model_one() -> None:
            for person in chosen:
                for scorer in loaded:
                    scorer.score(features[person])

        pairs = [
            (len(features) / _seconds(model_all), len(chosen) / _seconds(model_one))
            for _ in range(rounds)
        ]
        all_rate, one_rate = _median_round(pairs)
        profiles = predictor.store.live_profiles("acme")[:sample]

        def rescore_each() -> None:
            for profile in profiles[:singles]:
                predictor.rescore("acme", [profile], now, loaded)

        total = len(predictor.store.live_profiles("acme"))

        def rescore_batch() -> None:
            predictor.rescore("acme", profiles, now, loaded)

        full = _seconds(predictor.score_all, "acme", now)
        pairs_db = [
            (
                len(profiles) / _seconds(rescore_batch),
                len(profiles[:singles]) / _seconds(rescore_each),
            )
            for _ in range(rounds)
        ]
        store_all, store_one = _median_round(pairs_db)
        db.close()
    return [
        Result(
            "five built-in scorers, model only",
            all_rate,
            f"profiles/s (score_all, {len(features):,} people)",
            one_rate,
            f"profiles/s (score per person, {len(chosen):,})",
            all_rate / one_rate,
            ">= 10",
        ),
        Result(
            "incremental re-scoring through the store (SQLite)",
            store_all,
            f"profiles/s (one batch of {len(profiles):,} changed profiles)",
            store_one,
            "profiles/s (one profile per call)",
            store_all / store_one,
            ">= 5",
        ),
        Result(
            "full scoring of a workspace through the store (SQLite)",
            total / full,
            f"profiles/s (score_all, {total:,} profiles)",
            store_one,
            "profiles/s (incremental, one profile per call)",
            total / full / store_one,
            ">= 5",
        ),
    ]


def run(quick: bool) -> list[Result]:
    count = 10_000 if quick else 100_000
    rounds = 1 if quick else 3
    summary = _customers(count)
    return [
        _fit_result(summary, rounds),
        _scoring_result(summary, 1_000 if quick else 5_000, rounds, discount=0.01),
        _scoring_result(summary, 1_000 if quick else 5_000, rounds, discount=0.0),
        *_service_results(*((250, rounds, 100, 30) if quick else (300, rounds, 300, 300))),
    ]


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
