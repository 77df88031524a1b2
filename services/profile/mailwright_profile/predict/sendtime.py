"""Send-time optimisation: each person's best hour of the day and day of the week, in
their own timezone, from when they open and click.

A person's hours are a multinomial draw from their own preference, and preferences vary
around the population's: a Dirichlet(κ·π) prior with π the population distribution.
The posterior mean (n_h + κ π_h) / (N + κ) shrinks a thin history toward the population
and lets a long one speak for itself. κ (the prior strength, in pseudo-events) is given,
or estimated by empirical Bayes: the κ that maximises the Dirichlet-multinomial marginal
likelihood of everyone's counts. Machine opens (privacy proxies that fetch every image on
delivery) are not a person's behaviour and are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import CLICK, OPEN, EventLog

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
HOURS, DAYS = 24, 7
DEFAULT_STRENGTH = 10.0
STRENGTH_BOUNDS = (0.1, 10_000.0)
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError("timezone", f"unknown timezone {name!r}") from None


def local_hour_and_day(times: FloatArray, timezone: str) -> tuple[IntArray, IntArray]:
    """Local hour (0-23) and weekday (Monday = 0) of UTC timestamps in `timezone`.

    The UTC offset is looked up once per distinct UTC hour (offsets change on hour
    boundaries in practice), then applied with array arithmetic.
    """
    tz = zone(timezone)
    hour_starts = np.floor(times / 3600.0) * 3600.0
    unique, inverse = np.unique(hour_starts, return_inverse=True)
    offsets = np.array(
        [
            (datetime.fromtimestamp(float(t), tz).utcoffset() or timedelta(0)).total_seconds()
            for t in unique
        ],
        dtype=np.float64,
    )
    local = times + offsets[inverse]
    hours = (np.floor(local / 3600.0) % HOURS).astype(np.int64)
    days = ((np.floor(local / 86_400.0) + EPOCH_WEEKDAY) % DAYS).astype(np.int64)
    return hours, days


def dirichlet_multinomial_loglik(counts: FloatArray, prior: FloatArray, strength: float) -> float:
    """Σ_i log DM(counts_i | strength · prior), without the multinomial coefficients
    (which do not depend on the prior)."""
    from scipy.special import gammaln

    alpha = strength * prior
    totals = counts.sum(axis=1)
    return float(
        np.sum(gammaln(strength) - gammaln(strength + totals))
        + np.sum(gammaln(counts + alpha) - gammaln(alpha))
    )


def estimate_strength(counts: FloatArray, prior: FloatArray) -> float:
    """Empirical-Bayes κ. Only people with two or more events carry information about it;
    without any, the default strength is used."""
    from scipy.optimize import minimize_scalar

    informative = counts[counts.sum(axis=1) >= 2]
    if not informative.shape[0]:
        return DEFAULT_STRENGTH
    low, high = np.log(STRENGTH_BOUNDS)
    result = minimize_scalar(
        lambda log_k: -dirichlet_multinomial_loglik(informative, prior, float(np.exp(log_k))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


@dataclass(frozen=True)
class SendTimePreference:
    person_id: str
    timezone: str
    best_hour: int  # 0-23, local time
    best_day: int  # Monday = 0
    hour_probabilities: tuple[float, ...]
    day_probabilities: tuple[float, ...]
    events: int  # human opens and clicks behind it


@dataclass(frozen=True)
class SendTimeModel:
    """Population distributions and prior strengths: what scoring one person needs."""

    hour_prior: tuple[float, ...]
    day_prior: tuple[float, ...]
    hour_strength: float
    day_strength: float

    def posterior(
        self, hour_counts: FloatArray, day_counts: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Posterior mean hour and day distributions for rows of counts."""
        hours = _shrink(hour_counts, np.asarray(self.hour_prior), self.hour_strength)
        days = _shrink(day_counts, np.asarray(self.day_prior), self.day_strength)
        return hours, days

    def preference(self, person_id: str, timezone: str, times: npt.ArrayLike) -> SendTimePreference:
        """One person's preference from the UTC timestamps of their human opens and clicks."""
        stamps = np.asarray(times, dtype=np.float64)
        hours, days = local_hour_and_day(stamps, timezone)
        hour_counts = np.bincount(hours, minlength=HOURS).astype(np.float64)[None, :]
        day_counts = np.bincount(days, minlength=DAYS).astype(np.float64)[None, :]
        hour_p, day_p = self.posterior(hour_counts, day_counts)
        return SendTimePreference(
            person_id,
            timezone,
            int(np.argmax(hour_p[0])),
            int(np.argmax(day_p[0])),
            tuple(hour_p[0].tolist()),
            tuple(day_p[0].tolist()),
            int(stamps.size),
        )


def _shrink(counts: FloatArray, prior: FloatArray, strength: float) -> FloatArray:
    return np.asarray(
        (counts + strength * prior) / (counts.sum(axis=1, keepdims=True) + strength),
        dtype=np.float64,
    )


@dataclass(frozen=True, eq=False)
class SendTimes:
    model: SendTimeModel
    person_ids: tuple[str, ...]
    timezones: tuple[str, ...]
    best_hour: IntArray
    best_day: IntArray
    hour_probabilities: FloatArray  # people x 24
    day_probabilities: FloatArray  # people x 7
    events: IntArray

    def preference(self, person_id: str) -> SendTimePreference:
        i = self.person_ids.index(person_id)
        return SendTimePreference(
            person_id,
            self.timezones[i],
            int(self.best_hour[i]),
            int(self.best_day[i]),
            tuple(self.hour_probabilities[i].tolist()),
            tuple(self.day_probabilities[i].tolist()),
            int(self.events[i]),
        )


def engagement_counts(
    log: EventLog, timezones: Mapping[str, str], default_timezone: str, click_weight: float
) -> tuple[FloatArray, FloatArray, IntArray, tuple[str, ...]]:
    """Per-person local hour and weekday counts of human opens and clicks."""
    n = len(log.people)
    names = tuple(timezones.get(person, default_timezone) for person in log.people)
    keep = np.isin(log.kind, (OPEN, CLICK)) & ~log.machine
    person, kind, time = log.person[keep], log.kind[keep], log.time[keep]
    weight = np.where(kind == CLICK, click_weight, 1.0)
    zone_of_person = np.array(names, dtype=object)[person] if person.size else np.array([])
    hours = np.empty(person.size, dtype=np.int64)
    days = np.empty(person.size, dtype=np.int64)
    for name in sorted(set(names)):
        members = zone_of_person == name
        hours[members], days[members] = local_hour_and_day(time[members], name)
    hour_counts = np.bincount(person * HOURS + hours, weight, n * HOURS).astype(np.float64)
    day_counts = np.bincount(person * DAYS + days, weight, n * DAYS).astype(np.float64)
    events = np.bincount(person, minlength=n).astype(np.int64)
    return hour_counts.reshape(n, HOURS), day_counts.reshape(n, DAYS), events, names


def fit_send_times(
    log: EventLog,
    timezones: Mapping[str, str],
    *,
    default_timezone: str = "UTC",
    prior_strength: float | None = None,
    click_weight: float = 1.0,
) -> SendTimes:
    """Best hour and day for everyone in `log` (people without opens or clicks get the
    population's). `prior_strength=None` estimates κ by empirical Bayes."""
    zone(default_timezone)
    if prior_strength is not None and not (0 < prior_strength < float("inf")):
        raise DataError("prior_strength", f"must be positive, got {prior_strength!r}")
    if not (0 < click_weight < float("inf")):
        raise DataError("click_weight", f"must be positive, got {click_weight!r}")
    hour_counts, day_counts, events, names = engagement_counts(
        log, timezones, default_timezone, click_weight
    )
    # Population distributions with one pseudo-event per bin, so no hour is impossible.
    hour_prior = (hour_counts.sum(axis=0) + 1.0) / (hour_counts.sum() + HOURS)
    day_prior = (day_counts.sum(axis=0) + 1.0) / (day_counts.sum() + DAYS)
    model = SendTimeModel(
        tuple(hour_prior.tolist()),
        tuple(day_prior.tolist()),
        prior_strength or estimate_strength(hour_counts, hour_prior),
        prior_strength or estimate_strength(day_counts, day_prior),
    )
    hour_p, day_p = model.posterior(hour_counts, day_counts)
    return SendTimes(
        model,
        log.people,
        names,
        np.argmax(hour_p, axis=1).astype(np.int64),
        np.argmax(day_p, axis=1).astype(np.int64),
        hour_p,
        day_p,
        events,
    )
