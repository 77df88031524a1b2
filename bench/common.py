<<<<<<< HEAD
"""What a benchmark reports: a measured value beside a baseline measured in the same run."""
=======
"""The one result shape every benchmark reports."""
>>>>>>> render-domain

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
<<<<<<< HEAD
    """One figure: `value` in `unit`, against `baseline` in `baseline_unit`; `ratio` is
    value ÷ baseline and `goal` says what ratio we aim for (e.g. ">= 0.5")."""
=======
    """One measured figure, its baseline measured in the same run, and their ratio."""
>>>>>>> render-domain

    name: str
    value: float
    unit: str
    baseline: float
    baseline_unit: str
    ratio: float
<<<<<<< HEAD
    goal: str
=======
    goal: float
>>>>>>> render-domain
