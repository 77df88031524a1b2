"""Report arithmetic: rates, click-to-open, lift against the holdout, differences between
variants with confidence intervals.

The store counts facts per group (a campaign, a variant, a journey step, a segment); this
module turns the counts into what people read. Opens are unique human opens; machine
opens (privacy proxies, scanners) are counted apart and never enter a rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from mailwright_delivery.experiments import Moments, two_means, two_proportions
from mailwright_delivery.model import Metric


@dataclass(frozen=True)
class Facts:
    """Counts for one group of sends."""

    dimension: str
    audience: int = 0
    sent: int = 0
    delivered: int = 0
    unique_opens: int = 0
    machine_opens: int = 0
    unique_clicks: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    revenue_squares: Decimal = Decimal(0)
    currency: str = ""
    unsubscribes: int = 0
    bounces: int = 0
    complaints: int = 0
    skipped: int = 0
    # People who ordered within the attribution window after the send was due (held-out
    # people included): the basis of lift, which click attribution cannot measure.
    converted_people: int = 0

    def __add__(self, other: Facts) -> Facts:
        numbers = {
            name: getattr(self, name) + getattr(other, name)
            for name in (
                "audience",
                "sent",
                "delivered",
                "unique_opens",
                "machine_opens",
                "unique_clicks",
                "conversions",
                "revenue",
                "revenue_squares",
                "unsubscribes",
                "bounces",
                "complaints",
                "skipped",
                "converted_people",
            )
        }
        return replace(self, currency=self.currency or other.currency, **numbers)


def ratio(numerator: float | Decimal, denominator: float | Decimal) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


@dataclass(frozen=True)
class Row:
    facts: Facts
    open_rate: float
    click_rate: float
    click_to_open: float
    conversion_rate: float


def row(facts: Facts) -> Row:
    """Rates over sent messages; click-to-open over unique human opens."""
    return Row(
        facts,
        open_rate=ratio(facts.unique_opens, facts.sent),
        click_rate=ratio(facts.unique_clicks, facts.sent),
        click_to_open=ratio(facts.unique_clicks, facts.unique_opens),
        conversion_rate=ratio(facts.conversions, facts.sent),
    )


@dataclass(frozen=True)
class Comparison:
    left: str
    right: str
    metric: Metric
    difference: float
    low: float
    high: float
    p_value: float
    lift: float


def successes(facts: Facts, metric: Metric) -> int:
    if metric is Metric.OPENS:
        return facts.unique_opens
    if metric is Metric.CLICKS:
        return facts.unique_clicks
    return facts.conversions


def compare(left: Facts, right: Facts, metric: Metric, alpha: float = 0.05) -> Comparison:
    """left - right in `metric` per sent message, with its interval and relative lift."""
    if metric is Metric.REVENUE:
        a = Moments(left.sent, float(left.revenue), float(left.revenue_squares))
        b = Moments(right.sent, float(right.revenue), float(right.revenue_squares))
        result = two_means(a, b, alpha)
        base = b.mean
    else:
        s1, s2 = successes(left, metric), successes(right, metric)
        result = two_proportions(s1, left.sent, s2, right.sent, alpha)
        base = ratio(s2, right.sent)
    lift = result.difference / base if base else 0.0
    return Comparison(
        left.dimension,
        right.dimension,
        metric,
        result.difference,
        result.low,
        result.high,
        result.p_value,
        lift,
    )


def holdout_lift(treated: Facts, holdout: Facts, alpha: float = 0.05) -> Comparison:
    """Conversion of the people mailed against the people held out, per person."""
    result = two_proportions(
        treated.converted_people,
        treated.audience,
        holdout.converted_people,
        holdout.audience,
        alpha,
    )
    base = ratio(holdout.converted_people, holdout.audience)
    return Comparison(
        treated.dimension,
        holdout.dimension,
        Metric.CONVERSIONS,
        result.difference,
        result.low,
        result.high,
        result.p_value,
        result.difference / base if base else 0.0,
    )


def variant_comparisons(
    variants: Sequence[Facts], metric: Metric, alpha: float = 0.05
) -> list[Comparison]:
    """Every variant against the first (the control)."""
    if len(variants) < 2:
        return []
    control = variants[0]
    return [compare(other, control, metric, alpha) for other in variants[1:]]
