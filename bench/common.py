"""What every benchmark returns: a measured value beside a baseline from the same run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    baseline: float
    baseline_unit: str
    ratio: float
    goal: str
