"""What plugins hand back from the broadcast hooks, and the scorer registry.

These are the values of the cross-cutting hooks of `mailwright.hookspecs`: template
filters and globals for render, rule functions for segment, a veto for delivery, and
predictive scorers for the predictive models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

from mailwright.registry import Registry

ValueType = Literal["string", "number", "boolean", "datetime", "list"]
"""The value types of the segment rule language."""


@dataclass(frozen=True)
class TemplateExtensions:
    """Filters and globals a plugin adds to the template sandbox.

    Filters are called with the value (and arguments) from a template; globals are values
    or functions every template sees. They run inside the sandbox's limits, and their
    output is autoescaped like any other value unless it is `markupsafe.Markup`. Names are
    Python identifiers; a name taken by render or by another plugin is an error at start.
    """

    filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    globals: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in ("filters", "globals"):
            entries: Mapping[str, Any] = getattr(self, kind)
            for name in entries:
                if not (isinstance(name, str) and name.isidentifier()):
                    raise ValueError(f"template {kind}: {name!r} is not an identifier")
            object.__setattr__(self, kind, MappingProxyType(dict(entries)))


@dataclass(frozen=True)
class SegmentFunction:
    """A function the segment rule language can call, e.g. `email_domain(email)`.

    `function` is pure (no I/O, no clock) and takes values of `parameters`' types,
    returning a value of type `returns`; it is what the incremental evaluator calls.
    `sql`, when given, builds the equivalent SQLAlchemy expression from the argument
    expressions, so the batch evaluator can compile rules using it; without it, the
    segment service evaluates the function in Python during a full recompute.
    """

    name: str
    function: Callable[..., Any]
    parameters: tuple[ValueType, ...]
    returns: ValueType
    description: str = ""
    sql: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"segment function name {self.name!r} must be a lowercase identifier")
        if not callable(self.function):
            raise TypeError(f"segment function {self.name!r}: function must be callable")


@dataclass(frozen=True)
class SendVeto:
    """A plugin's refusal of a send: `reason` for people, `code` for reports."""

    reason: str
    code: str = "vetoed"

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("a veto needs a reason")


@runtime_checkable
class Scorer(Protocol):
    """A predictive model that writes computed traits (`churn_risk`, `clv_12m`, …).

    The predictive models work (issue 9) builds on this: features come from a profile's
    computed traits and event aggregates; the scores are written back as the traits named
    in `outputs`.
    """

    @property
    def name(self) -> str:
        """The scorer's registry name, e.g. `churn`."""
        ...

    @property
    def outputs(self) -> Sequence[str]:
        """The computed traits `score` returns, e.g. `("churn_risk",)`."""
        ...

    def score(self, features: Mapping[str, Any]) -> Mapping[str, float]:
        """One person's scores from their features, keyed by the names in `outputs`."""
        ...


class ScorerRegistry(Registry[Scorer]):
    """The predictive scorers of this process, by name."""

    kind = "scorer"

    def name_of(self, entry: Scorer) -> str:
        return entry.name

    def validate(self, entry: Scorer) -> None:
        if not isinstance(entry, Scorer):
            raise TypeError(f"{type(entry).__name__} does not implement Scorer")
        for output in entry.outputs:
            if not (output.isidentifier() and output.islower()):
                raise ValueError(f"scorer {entry.name!r}: output {output!r} is not a trait name")
