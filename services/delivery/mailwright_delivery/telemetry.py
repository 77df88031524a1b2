"""Delivery's metrics: sends by outcome, and how long providers take to answer.

OpenTelemetry instruments; with no OpenTelemetry SDK configured they cost nothing.
"""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("mailwright.delivery")

SEND_OUTCOMES = _meter.create_counter(
    "mailwright.delivery.sends",
    unit="{send}",
    description="Sends settled, by outcome (sent, skipped, parked, bounced, retried) and provider.",
)
HAND_OVER = _meter.create_histogram(
    "mailwright.delivery.provider.duration",
    unit="s",
    description="Time for a provider to answer one chunk of sends.",
)


def count(outcome: str, provider: str = "", amount: int = 1) -> None:
    SEND_OUTCOMES.add(amount, {"outcome": outcome, "provider": provider or "none"})
