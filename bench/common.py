"""The one result shape every benchmark reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One measured figure, its baseline measured in the same run, and their ratio."""

    name: str
    value: float
    unit: str
    baseline: float
    baseline_unit: str
    ratio: float
    goal: float
