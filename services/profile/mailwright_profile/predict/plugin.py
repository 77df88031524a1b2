"""The built-in scorers as a plugin: registered through `mailwright_register_scorers`,
the same hook a third-party scorer uses (entry point `predict` in group `mailwright`)."""

from __future__ import annotations

from mailwright.extensions import ScorerRegistry
from mailwright.plugins import hookimpl
from mailwright_profile.predict.builtin import register_builtin_scorers


@hookimpl
def mailwright_register_scorers(registry: ScorerRegistry) -> None:
    """CLV, churn, propensity, send-time and recommend."""
    register_builtin_scorers(registry.register)
