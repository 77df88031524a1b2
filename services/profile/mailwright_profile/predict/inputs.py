"""From event history to the features the built-in scorers read.

`person_features` builds one person's feature mapping (what `Scorer.score` takes);
`summary_from_log` builds the CLV summary of everyone in a log. Keys of the mapping:

* `frequency`, `recency`, `T`, `monetary_value`: the CLV summary in days, by UTC day, with
  the conventions of `CustomerSummary.from_transactions` (absent if they never bought);
* the classifier features `features.FEATURE_NAMES` (absent if nothing happened before
  `as_of`), None where a thing never happened (so the mapping is plain JSON);
* `engagement_hour_counts` (24) and `engagement_day_counts` (7): human opens and clicks by
  local hour and weekday in the person's timezone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import DAY, PURCHASE, Event, EventLog, timestamp
from mailwright_profile.predict.features import build_features
from mailwright_profile.predict.sendtime import engagement_counts
from mailwright_profile.predict.summary import CustomerSummary

SUMMARY_KEYS = ("frequency", "recency", "T", "monetary_value")


def summary_from_log(log: EventLog, as_of: datetime) -> CustomerSummary:
    """Per-person CLV summary (in days) from purchase events before `as_of`, by UTC day."""
    end = timestamp(as_of, "as_of")
    mask = (log.kind == PURCHASE) & (log.time < end)
    if not mask.any():
        raise DataError("events", "no purchases before as_of")
    days = np.floor(log.time[mask] / DAY).astype(np.int64)
    pairs, inverse = np.unique(
        np.stack([log.person[mask], days], axis=1), axis=0, return_inverse=True
    )
    day_totals = np.bincount(inverse.ravel(), weights=log.value[mask], minlength=len(pairs))
    people, first_row, per_person = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    last_row = first_row + per_person - 1
    end_day = math.ceil(end / DAY) - 1
    frequency = (per_person - 1).astype(np.float64)
    repeat_total = np.add.reduceat(day_totals, first_row) - day_totals[first_row]
    money = np.divide(repeat_total, frequency, out=np.zeros(people.size), where=frequency > 0)
    return CustomerSummary(
        tuple(log.people[p] for p in people),
        frequency,
        (pairs[last_row, 1] - pairs[first_row, 1]).astype(np.float64),
        (end_day - pairs[first_row, 1]).astype(np.float64),
        money,
    )


def person_features(
    events: Iterable[Event],
    as_of: datetime,
    *,
    timezone: str | None = None,
    default_timezone: str = "UTC",
) -> dict[str, Any]:
    """One person's features as of `as_of`, from their events (later ones are ignored)."""
    log = EventLog.from_events(events)
    if len(log.people) > 1:
        raise DataError("events", "person_features takes the events of one person")
    features: dict[str, Any] = {}
    if not log.people:
        return features
    past = log.before(as_of)
    if np.any(past.kind == PURCHASE):
        summary = summary_from_log(past, as_of)
        for key in SUMMARY_KEYS:
            column = getattr(summary, key)
            features[key] = float(column[0])
    matrix = build_features(past, as_of)
    if matrix.person_ids:
        row = matrix.values[0].tolist()
        features.update(
            (name, None if math.isnan(value) else value)
            for name, value in zip(matrix.names, row, strict=True)
        )
    zones = {log.people[0]: timezone} if timezone else {}
    hours, days, _, _ = engagement_counts(past, zones, default_timezone, 1.0)
    features["engagement_hour_counts"] = hours[0].tolist()
    features["engagement_day_counts"] = days[0].tolist()
    return features
