"""What a benchmark reports: a measured value beside a baseline measured in the same run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One figure: `value` in `unit`, against `baseline` in `baseline_unit`; `ratio` is
    value ÷ baseline and `goal` says what ratio we aim for (e.g. ">= 0.5")."""

    name: str
    value: float
    unit: str
    baseline: float
    baseline_unit: str
    ratio: float
    goal: str
