"""The scorer contract: how a predictive model is trained, stored, and asked for traits.

A scorer has a `name`, declares the computed traits it writes (`clv_12m`, `churn_risk`,
...), `train`s on a workspace's `TrainingData` into a `ModelVersion` (parameters and
validation metrics, serialisable to JSON, plus an optional opaque artifact), `load`s a
stored version, and `score`s one person's history into trait values. A value of None
means "no score for this person" (for example CLV for someone who never bought): the
service clears the trait.

Scorers are registered as factories (a zero-argument callable returning a fresh scorer;
the class itself will do) so that every workspace gets its own instance. The plugin hook
`mailwright_register_scorers` hands plugins a `register` callback; built-in scorers go
through `register_builtin_scorers(register)` the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import Event, EventLog

TraitValue = float | int | str | None
JSON = Any  # JSON-serialisable: dicts, lists, str, int, float, bool, None


@dataclass(frozen=True)
class TrainingData:
    """What a workspace gives its scorers to train on: everyone's event history up to
    `as_of` (the data end), and people's IANA timezones where known."""

    events: EventLog
    as_of: datetime
    timezones: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonHistory:
    """One person's events (purchases, opens, clicks, views) and timezone, for scoring."""

    person_id: str
    events: tuple[Event, ...]
    timezone: str | None = None

    def log(self) -> EventLog:
        return EventLog.from_events(self.events)


@dataclass(frozen=True)
class ModelVersion:
    """A trained model as stored: JSON parameters and metrics, and optionally an opaque
    artifact (e.g. a fitted classifier) whose SHA-256 is recorded in the JSON."""

    name: str
    version: str
    trained_at: datetime
    parameters: Mapping[str, JSON]
    metrics: Mapping[str, JSON]
    artifact: bytes | None = None

    @classmethod
    def create(
        cls,
        name: str,
        parameters: Mapping[str, JSON],
        metrics: Mapping[str, JSON],
        artifact: bytes | None = None,
        trained_at: datetime | None = None,
    ) -> ModelVersion:
        """A new version; its id is the training time and a hash of its content."""
        when = (trained_at or datetime.now(UTC)).astimezone(UTC)
        digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode())
        digest.update(artifact or b"")
        version = f"{when:%Y%m%dT%H%M%SZ}-{digest.hexdigest()[:12]}"
        return cls(name, version, when, parameters, metrics, artifact)

    def artifact_sha256(self) -> str | None:
        return None if self.artifact is None else hashlib.sha256(self.artifact).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "trained_at": self.trained_at.isoformat(),
                "parameters": self.parameters,
                "metrics": self.metrics,
                "artifact_sha256": self.artifact_sha256(),
            },
            sort_keys=True,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str, artifact: bytes | None = None) -> ModelVersion:
        """Parse a stored version; the artifact must match the recorded digest."""
        try:
            data = json.loads(text)
            trained_at = datetime.fromisoformat(data["trained_at"])
            expected = data.get("artifact_sha256")
            version = cls(
                str(data["name"]),
                str(data["version"]),
                trained_at,
                dict(data["parameters"]),
                dict(data["metrics"]),
                artifact,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise DataError("model_version", f"not a stored model version ({error})") from None
        if trained_at.tzinfo is None:
            raise DataError("trained_at", "has no timezone")
        if expected != version.artifact_sha256():
            raise DataError("artifact", "does not match the digest recorded with the version")
        return version


@runtime_checkable
class Scorer(Protocol):
    """What the profile service needs from a predictive model."""

    name: str
    traits: tuple[str, ...]

    def train(self, data: TrainingData) -> ModelVersion:
        """Fit on `data`, keep the result as the current model, and return it."""
        ...

    def load(self, version: ModelVersion) -> None:
        """Make a stored version the current model (refusing one of another scorer)."""
        ...

    def score(self, person: PersonHistory, as_of: datetime) -> dict[str, TraitValue]:
        """Trait values for one person from their events before `as_of`."""
        ...


ScorerFactory = Callable[[], Scorer]


class ScorerRegistry:
    """Scorer factories by name, refusing duplicate names and traits written twice."""

    def __init__(self) -> None:
        self._factories: dict[str, ScorerFactory] = {}
        self._trait_owner: dict[str, str] = {}

    def register(self, factory: ScorerFactory) -> None:
        scorer = factory()
        if not isinstance(scorer, Scorer):
            raise TypeError(f"{factory!r} does not make a Scorer")
        if scorer.name in self._factories:
            raise ValueError(f"a scorer named {scorer.name!r} is already registered")
        clashes = [t for t in scorer.traits if t in self._trait_owner]
        if clashes:
            owner = self._trait_owner[clashes[0]]
            raise ValueError(f"trait {clashes[0]!r} is already written by scorer {owner!r}")
        self._factories[scorer.name] = factory
        for trait in scorer.traits:
            self._trait_owner[trait] = scorer.name

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str) -> Scorer:
        factory = self._factories.get(name)
        if factory is None:
            raise KeyError(f"no scorer named {name!r} (known: {', '.join(self.names())})")
        return factory()

    def trait_owner(self, trait: str) -> str | None:
        return self._trait_owner.get(trait)


def check_version(scorer_name: str, version: ModelVersion, required: Sequence[str]) -> None:
    """A version must belong to the scorer and carry the parameters it needs."""
    if version.name != scorer_name:
        raise DataError("model_version", f"is for {version.name!r}, not {scorer_name!r}")
    missing = [key for key in required if key not in version.parameters]
    if missing:
        raise DataError("parameters", f"missing {', '.join(missing)}")
