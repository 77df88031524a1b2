"""The scorer contract: how a predictive model is trained, stored, and asked for traits.

It extends the SDK's `mailwright.extensions.Scorer` (a `name`, the computed traits it
writes as `outputs`, and `score(features)`), which is what the `mailwright_register_scorers`
hook's registry accepts, with what the profile service needs to run a model:

* `train(data)` fits on a workspace's `TrainingData` and returns a `ModelVersion`
  (parameters and validation metrics, serialisable to JSON, plus an optional opaque
  artifact such as a fitted classifier);
* `load(version)` returns a scorer bound to a stored version (a new object: a registered
  scorer is shared by every workspace, so it is never mutated);
* `score(features)` maps one person's features (see `person_features`) to trait values;
  a trait left out means "no score for this person" (CLV for someone who never bought),
  and the service clears it;
* `score_all(data, version)` scores everyone in `data` at once, vectorised.

Scorer names follow the SDK registry's rule: lowercase letters and digits with single
hyphens (`send-time`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import EventLog
from mailwright_profile.predict.recommend import Interaction

JSON = Any  # JSON-serialisable: dicts, lists, str, int, float, bool, None
Features = Mapping[str, Any]
Scores = Mapping[str, Any]  # trait values: numbers, or JSON lists (recommended products)


@dataclass(frozen=True)
class TrainingData:
    """What a workspace gives its scorers to train on: everyone's event history up to
    `as_of` (the data end), people's IANA timezones where known, and who viewed and
    bought which product (for recommendations)."""

    events: EventLog
    as_of: datetime
    timezones: Mapping[str, str] = field(default_factory=dict)
    interactions: Sequence[Interaction] = ()


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
    """A trainable predictive model; structurally a `mailwright.extensions.Scorer`."""

    @property
    def name(self) -> str:
        """The registry name, e.g. `churn`."""
        ...

    @property
    def outputs(self) -> Sequence[str]:
        """The computed traits `score` writes, e.g. `("churn_risk",)`."""
        ...

    def score(self, features: Features) -> Scores:
        """One person's trait values from their features (needs a loaded model)."""
        ...

    def train(self, data: TrainingData) -> ModelVersion:
        """Fit on `data` and return the new version (the scorer itself is unchanged)."""
        ...

    def load(self, version: ModelVersion) -> Scorer:
        """A scorer bound to `version`, refusing a version of another scorer."""
        ...

    def score_all(self, data: TrainingData) -> dict[str, Scores]:
        """Scores for everyone in `data` as of `data.as_of` (needs a loaded model)."""
        ...


def check_version(scorer_name: str, version: ModelVersion, required: Sequence[str]) -> None:
    """A version must belong to the scorer and carry the parameters it needs."""
    if version.name != scorer_name:
        raise DataError("model_version", f"is for {version.name!r}, not {scorer_name!r}")
    missing = [key for key in required if key not in version.parameters]
    if missing:
        raise DataError("parameters", f"missing {', '.join(missing)}")
