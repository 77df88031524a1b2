"""The scorers on the profile service's own data: training, versions, scores as traits.

`PredictStore` reads a workspace's event history from `profile_events` (each stored event
read back as the consumer read it: purchases with their revenue, human and machine opens,
clicks, product views and the products of orders) and writes the two things the scorers
produce: model versions (`profile_predict_models`, one row per trained version; the
newest per scorer is the one in use) and scores (`profile_profiles.scores`). Scores are
computed traits: GetProfile, ListProfiles filters and exports read them beside the
evaluated ones, and every change of a profile's scores bumps its version and announces a
`profiles.changed` (changed values in `computed_traits`, cleared ones in `removed_traits`)
through the outbox, in the same transaction.

`Predictor` runs the registered scorers: `train` (everyone's history up to now → a new
version of each scorer, stored), `score_all` (every live profile of a workspace, vectorised
with `Scorer.score_all`), `train_and_score` (both on one reading of the history: what
`mailwright predict train` and the demo run) and `rescore` (a few people, one row each
with `Scorer.score`, for the consumer's incremental path; see `Rescorer`).
"""

from __future__ import annotations

import json
import logging
import math
import time
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright.runtime.db import Database
from mailwright_profile.computed.aggregates import EMAIL_CLICK, EMAIL_OPEN, ORDER, PRODUCT_VIEW
from mailwright_profile.computed.registry import REGISTRY, TraitRegistry
from mailwright_profile.convert import encode_scored
from mailwright_profile.events import decode_event, stored_activity
from mailwright_profile.predict.errors import DataError, PredictError
from mailwright_profile.predict.events import Event, EventKind, EventLog
from mailwright_profile.predict.inputs import person_features
from mailwright_profile.predict.recommend import Interaction
from mailwright_profile.predict.scorers import ModelVersion, Scorer, TrainingData
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.outbox import CHANGED_TOPIC, Outgoing, write_outbox

__all__ = [
    "History",
    "PredictStore",
    "Predictor",
    "Progress",
    "ScoreSummary",
    "StoredVersion",
    "TrainOutcome",
    "Training",
    "quiet",
    "read_history",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
_KIND: dict[str, EventKind] = {
    ORDER: "purchase",
    EMAIL_OPEN: "open",
    EMAIL_CLICK: "click",
    PRODUCT_VIEW: "view",
}
SCORE_CHUNK = 500


def quiet(stage: str, done: int, total: int) -> None:
    """The default progress callback: nothing."""


@dataclass
class History:
    """Event history in the scorers' terms, keyed by the (root) profile holding it."""

    events: list[Event] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    timezones: dict[str, str] = field(default_factory=dict)
    _zone_times: dict[str, datetime] = field(default_factory=dict)

    def add(self, profile_id: str, payload: bytes, occurred_at: datetime) -> None:
        """One stored event (its serialised form and time, as in `profile_events`)."""
        event = decode_event(payload)
        activity = stored_activity(event, occurred_at)
        kind = _KIND.get(activity.kind, "other")
        value = 0.0
        if activity.revenue is not None:
            value = max(float(activity.revenue), 0.0)  # a refund is not negative spend
            if not math.isfinite(value):
                value = 0.0
        self.events.append(Event(profile_id, kind, activity.time, value, activity.machine))
        if kind == "view" and activity.product:
            self.interactions.append(Interaction(profile_id, activity.product, "view"))
        elif kind == "purchase":
            for item in _order_products(event):
                self.interactions.append(Interaction(profile_id, item, "purchase"))
        zone = activity.timezone
        if zone and _known_zone(zone):
            held = self._zone_times.get(profile_id)
            if held is None or activity.time >= held:
                self._zone_times[profile_id] = activity.time
                self.timezones[profile_id] = zone

    def training_data(self, as_of: datetime) -> TrainingData:
        return TrainingData(
            EventLog.from_events(self.events), as_of, dict(self.timezones), self.interactions
        )

    def people(self) -> list[str]:
        return list(dict.fromkeys(e.person_id for e in self.events))

    def features_of(self, as_of: datetime) -> dict[str, dict[str, Any]]:
        """Each person's feature mapping (`inputs.person_features`) plus the products
        they bought and viewed (`products_bought`, `products_viewed`)."""
        by_person: dict[str, list[Event]] = {}
        for event in self.events:
            by_person.setdefault(event.person_id, []).append(event)
        bought: dict[str, list[str]] = {}
        viewed: dict[str, list[str]] = {}
        for item in self.interactions:
            target = bought if item.kind == "purchase" else viewed
            target.setdefault(item.person_id, []).append(item.item_id)
        found = {}
        for person, events in by_person.items():
            features = person_features(events, as_of, timezone=self.timezones.get(person))
            features["products_bought"] = sorted(set(bought.get(person, ())))
            features["products_viewed"] = sorted(set(viewed.get(person, ())))
            found[person] = features
        return found


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _order_products(proto: Any) -> list[str]:
    """Product ids of an order (Segment's `properties.products[].product_id`, or `sku`)."""
    products = proto.properties.fields.get("products")
    if products is None or products.WhichOneof("kind") != "list_value":
        return []
    found = []
    for value in products.list_value.values:
        if value.WhichOneof("kind") != "struct_value":
            continue
        fields = value.struct_value.fields
        for key in ("product_id", "sku", "id"):
            held = fields.get(key)
            if held is not None and held.WhichOneof("kind") in ("string_value", "number_value"):
                text = held.string_value or (
                    f"{held.number_value:g}" if held.WhichOneof("kind") == "number_value" else ""
                )
                if text.strip():
                    found.append(text.strip())
                    break
    return found


def read_history(rows: Iterable[tuple[str, bytes, datetime]]) -> History:
    history = History()
    for profile_id, payload, occurred_at in rows:
        history.add(profile_id, payload, r.utc(occurred_at))
    return history


@dataclass(frozen=True)
class StoredVersion:
    """A stored model version and the data end it was trained to."""

    workspace: str
    version: ModelVersion
    as_of: datetime


@dataclass(frozen=True)
class ScoreSummary:
    profiles: int  # live profiles looked at
    scored: int  # with at least one score
    changed: int  # whose scores changed (each announced)
    traits: Mapping[str, int] = field(default_factory=dict)  # live profiles given each score


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """Scores as stored: finite numbers and lists; a NaN or infinity is no score."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if value is None:
            continue
        kept[key] = value
    return kept


class PredictStore:
    """Reads and writes of the predictive models in the profile service's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- history ---------------------------------------------------------------------

    def count_events(self, workspace: str, before: datetime) -> int:
        with self.db.reader.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        t.events.c.workspace == workspace, t.events.c.occurred_at < before
                    )
                ).scalar_one()
            )

    def history(
        self,
        workspace: str,
        before: datetime,
        profile_ids: Sequence[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> History:
        """The workspace's events before `before` (only these profiles' when given).

        The whole history is read in message id order. People enter the scorers' inputs
        in the order they first appear in it, and the classifiers' cross-validation folds
        follow that order: in the order of an index on profile ids (which the service
        draws at random), the same events gave a different model on every load."""
        history = History()
        query = sa.select(t.events.c.profile_id, t.events.c.payload, t.events.c.occurred_at).where(
            t.events.c.workspace == workspace, t.events.c.occurred_at < before
        )
        with self.db.reader.connect() as conn:
            if profile_ids is None:
                ordered = query.order_by(t.events.c.message_id)
                result = conn.execution_options(yield_per=5000).execute(ordered)
                for count, (profile_id, payload, moment) in enumerate(result, start=1):
                    history.add(profile_id, payload, r.utc(moment))
                    if progress is not None and count % 5000 == 0:
                        progress(count)
            else:
                for chunk in r.chunks(sorted(set(profile_ids))):
                    rows = conn.execute(query.where(t.events.c.profile_id.in_(chunk)))
                    for profile_id, payload, moment in rows:
                        history.add(profile_id, payload, r.utc(moment))
        if progress is not None:
            progress(len(history.events))
        return history

    def workspaces(self) -> list[str]:
        """Workspaces with at least one profile."""
        with self.db.reader.connect() as conn:
            rows = conn.execute(sa.select(t.profiles.c.workspace).distinct())
            return sorted(row.workspace for row in rows)

    def live_profiles(self, workspace: str) -> list[str]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                sa.select(t.profiles.c.profile_id)
                .where(t.profiles.c.workspace == workspace, t.profiles.c.merged_into.is_(None))
                .order_by(t.profiles.c.profile_id)
            )
            return [row.profile_id for row in rows]

    def score_values(self, workspace: str, key: str) -> list[float]:
        """The numeric values of one score over the workspace's live profiles."""
        found: list[float] = []
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                sa.select(t.profiles.c.scores).where(
                    t.profiles.c.workspace == workspace, t.profiles.c.merged_into.is_(None)
                )
            )
            for row in rows:
                value = (row.scores or {}).get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    found.append(float(value))
        return found

    # -- model versions ----------------------------------------------------------------

    def save_version(self, workspace: str, version: ModelVersion, as_of: datetime) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                t.predict_models.insert().values(
                    workspace=workspace,
                    scorer=version.name,
                    version=version.version,
                    created_at=version.trained_at,
                    as_of=as_of,
                    document=version.to_json(),
                    metrics=dict(version.metrics),
                    artifact=version.artifact,
                )
            )

    def versions(self, workspace: str, scorer: str | None = None) -> list[StoredVersion]:
        """Every stored version (without artifacts), newest first."""
        query = (
            sa.select(
                t.predict_models.c.scorer,
                t.predict_models.c.version,
                t.predict_models.c.document,
                t.predict_models.c.as_of,
            )
            .where(t.predict_models.c.workspace == workspace)
            .order_by(t.predict_models.c.created_at.desc(), t.predict_models.c.version.desc())
        )
        if scorer is not None:
            query = query.where(t.predict_models.c.scorer == scorer)
        with self.db.reader.connect() as conn:
            rows = conn.execute(query).all()
        found = []
        for row in rows:
            found.append(
                StoredVersion(workspace, _version_without_artifact(row.document), r.utc(row.as_of))
            )
        return found

    def current(self, workspace: str) -> dict[str, StoredVersion]:
        """The version in use of each scorer (the newest), with its artifact."""
        newest: dict[str, str] = {}
        for stored in self.versions(workspace):
            newest.setdefault(stored.version.name, stored.version.version)
        found: dict[str, StoredVersion] = {}
        with self.db.reader.connect() as conn:
            for scorer, version in newest.items():
                row = conn.execute(
                    sa.select(t.predict_models).where(
                        t.predict_models.c.workspace == workspace,
                        t.predict_models.c.scorer == scorer,
                        t.predict_models.c.version == version,
                    )
                ).one()
                found[scorer] = StoredVersion(
                    workspace,
                    ModelVersion.from_json(row.document, row.artifact),
                    r.utc(row.as_of),
                )
        return found

    # -- scores ----------------------------------------------------------------------

    def write_scores(
        self,
        workspace: str,
        profile_ids: Sequence[str],
        scores: Mapping[str, Mapping[str, Any]],
        owned: Iterable[str],
        now: datetime,
    ) -> tuple[list[Outgoing], int]:
        """Set the `owned` score keys of these profiles to `scores` (a key a profile has
        no score for is cleared), in one transaction; announce each changed profile.
        Returns the outbox messages and how many profiles changed. Merged-away or
        erased profiles are skipped."""
        keys = frozenset(owned)
        messages: list[tuple[str, str, str, str, bytes]] = []
        updates: list[dict[str, Any]] = []
        with self.db.engine.begin() as conn:
            for chunk in r.chunks(sorted(set(profile_ids))):
                query = (
                    sa.select(t.profiles.c.profile_id, t.profiles.c.version, t.profiles.c.scores)
                    .where(
                        t.profiles.c.workspace == workspace,
                        t.profiles.c.profile_id.in_(chunk),
                        t.profiles.c.merged_into.is_(None),
                    )
                    .order_by(t.profiles.c.profile_id)
                    .with_for_update()
                )
                for row in conn.execute(query):
                    held = dict(row.scores or {})
                    new = {k: v for k, v in held.items() if k not in keys}
                    new.update(
                        _clean(
                            {k: v for k, v in scores.get(row.profile_id, {}).items() if k in keys}
                        )
                    )
                    changed = {k: v for k, v in new.items() if held.get(k) != v}
                    removed = [k for k in held if k not in new]
                    if not changed and not removed:
                        continue
                    version = int(row.version) + 1
                    updates.append({"b_id": row.profile_id, "version": version, "scores": new})
                    payload = encode_scored(
                        workspace, row.profile_id, version, changed, removed, now
                    )
                    messages.append(
                        (
                            workspace,
                            row.profile_id,
                            CHANGED_TOPIC,
                            f"{workspace}:{row.profile_id}",
                            payload,
                        )
                    )
            if updates:
                conn.execute(
                    t.profiles.update()
                    .where(
                        t.profiles.c.workspace == workspace,
                        t.profiles.c.profile_id == sa.bindparam("b_id"),
                    )
                    .values(version=sa.bindparam("version"), scores=sa.bindparam("scores")),
                    updates,
                )
            outgoing = write_outbox(conn, messages, now)
        return outgoing, len(updates)


def _version_without_artifact(document: str) -> ModelVersion:
    """A stored version's document, read without its artifact (for listings)."""
    data = json.loads(document)
    return ModelVersion(
        str(data["name"]),
        str(data["version"]),
        datetime.fromisoformat(data["trained_at"]),
        dict(data["parameters"]),
        dict(data["metrics"]),
        None,
    )


def scorer_traits(scorers: Iterable[Any]) -> TraitRegistry:
    """The computed traits of this process: the built-in definitions and every registered
    scorer's outputs (for the profile schema; a scorer may declare `output_types`)."""
    registry = TraitRegistry(list(REGISTRY))
    for scorer in scorers:
        types: Mapping[str, str] = getattr(scorer, "output_types", {})
        for key in scorer.outputs:
            if key in registry:
                log.warning("scorer %s: trait %r is already defined; ignored", scorer.name, key)
                continue
            registry.add_scorer_output(
                scorer.name, key, types.get(key, "number"), f"Predicted by scorer {scorer.name}."
            )
    return registry


@dataclass(frozen=True)
class TrainOutcome:
    """One scorer's training: its new version, or why it could not be trained."""

    scorer: str
    version: ModelVersion | None
    error: str | None
    seconds: float


@dataclass(frozen=True)
class Training:
    """One workspace's training run: each scorer's outcome, the scoring that followed,
    and the `profiles.changed` messages that scoring wrote to the outbox (the profile
    service's relay publishes them; a caller holding the service's `Outbox` can publish
    them at once)."""

    outcomes: list[TrainOutcome]
    scores: ScoreSummary
    outgoing: list[Outgoing]

    @property
    def trained(self) -> list[TrainOutcome]:
        return [outcome for outcome in self.outcomes if outcome.version is not None]


class Predictor:
    """The registered scorers run on one database (see the module docstring)."""

    def __init__(self, db: Database, scorers: Iterable[Any]) -> None:
        self.store = PredictStore(db)
        self.scorers: dict[str, Scorer] = {}
        for scorer in scorers:
            if isinstance(scorer, Scorer):
                self.scorers[scorer.name] = scorer
            else:
                log.warning(
                    "scorer %s has no train, load and score_all; the profile service cannot run it",
                    getattr(scorer, "name", scorer),
                )

    def outputs(self) -> list[str]:
        return [key for s in self.scorers.values() for key in s.outputs]

    def chosen(self, names: Sequence[str] | None) -> list[Scorer]:
        if not names:
            return list(self.scorers.values())
        unknown = [n for n in names if n not in self.scorers]
        if unknown:
            known = ", ".join(sorted(self.scorers)) or "none"
            raise DataError("model", f"no scorer named {unknown[0]!r} (known: {known})")
        return [self.scorers[n] for n in names]

    def history(self, workspace: str, now: datetime, progress: Progress = quiet) -> History:
        total = self.store.count_events(workspace, now)
        if total == 0:
            raise DataError(
                "workspace", f"{workspace!r} has no events to learn from before {now:%Y-%m-%d}"
            )
        progress("reading events", 0, total)
        return self.store.history(
            workspace, now, progress=lambda done: progress("reading events", done, total)
        )

    def train(
        self,
        workspace: str,
        now: datetime,
        names: Sequence[str] | None = None,
        progress: Progress = quiet,
        history: History | None = None,
    ) -> list[TrainOutcome]:
        """Train the chosen scorers (all by default) on the workspace's history up to
        `now` and store each new version; a scorer that cannot be trained says why."""
        scorers = self.chosen(names)
        history = history or self.history(workspace, now, progress)
        data = history.training_data(now)
        outcomes = []
        for done, scorer in enumerate(scorers):
            progress(f"training {scorer.name}", done, len(scorers))
            started = time.perf_counter()
            try:
                version = scorer.train(data)
            except PredictError as error:
                outcomes.append(
                    TrainOutcome(scorer.name, None, str(error), time.perf_counter() - started)
                )
                continue
            self.store.save_version(workspace, version, now)
            outcomes.append(TrainOutcome(scorer.name, version, None, time.perf_counter() - started))
        progress("training", len(scorers), len(scorers))
        return outcomes

    def loaded(self, workspace: str) -> list[Scorer]:
        """The registered scorers bound to their current versions (those with one)."""
        found = []
        for name, stored in self.store.current(workspace).items():
            scorer = self.scorers.get(name)
            if scorer is None:
                log.info("model %s of %s has no registered scorer; not used", name, workspace)
                continue
            found.append(scorer.load(stored.version))
        return found

    def score_all(
        self,
        workspace: str,
        now: datetime,
        progress: Progress = quiet,
        history: History | None = None,
    ) -> ScoreSummary:
        """Score every live profile with the current versions, vectorised; write the
        scores (clearing what a scorer no longer gives) and announce the changes."""
        summary, _ = self._score_all(workspace, now, progress, history)
        return summary

    def train_and_score(
        self,
        workspace: str,
        now: datetime,
        names: Sequence[str] | None = None,
        progress: Progress = quiet,
    ) -> Training:
        """`mailwright predict train` for one workspace: read the history up to `now`
        once, train the chosen scorers on it (all by default), store their versions,
        score every live profile with the current versions and write the scores."""
        history = self.history(workspace, now, progress)
        outcomes = self.train(workspace, now, names, progress, history)
        summary, outgoing = self._score_all(workspace, now, progress, history)
        return Training(outcomes, summary, outgoing)

    def _score_all(
        self, workspace: str, now: datetime, progress: Progress, history: History | None
    ) -> tuple[ScoreSummary, list[Outgoing]]:
        loaded = self.loaded(workspace)
        history = history or self.store.history(workspace, now)
        data = history.training_data(now)
        scores: dict[str, dict[str, Any]] = {}
        for scorer in loaded:
            progress(f"scoring {scorer.name}", 0, 1)
            for person, values in scorer.score_all(data).items():
                scores.setdefault(person, {}).update(values)
            progress(f"scoring {scorer.name}", 1, 1)
        owned = [key for scorer in loaded for key in scorer.outputs]
        profiles = self.store.live_profiles(workspace)
        changed = 0
        outgoing: list[Outgoing] = []
        for start in range(0, len(profiles), SCORE_CHUNK):
            chunk = profiles[start : start + SCORE_CHUNK]
            written, count = self.store.write_scores(workspace, chunk, scores, owned, now)
            outgoing += written
            changed += count
            progress("writing scores", start + len(chunk), len(profiles))
        scored = sum(1 for p in profiles if scores.get(p))
        traits = dict.fromkeys(owned, 0)
        for person in profiles:
            for key in _clean(scores.get(person, {})):
                if key in traits:
                    traits[key] += 1
        return ScoreSummary(len(profiles), scored, changed, traits), outgoing

    def rescore(
        self, workspace: str, profile_ids: Sequence[str], now: datetime, loaded: Sequence[Scorer]
    ) -> list[Outgoing]:
        """Re-score a few profiles with loaded scorers, without retraining: their history
        only, one vectorised `score_all` per scorer over those rows (a person's scores
        depend on their own events and the model alone, so this is what a full scoring
        gives them). A scorer that fails leaves its traits as they were."""
        if not loaded or not profile_ids:
            return []
        history = self.store.history(workspace, now, profile_ids)
        scores: dict[str, dict[str, Any]] = {}
        owned: list[str] = []
        if history.events:
            data = history.training_data(now)
            for scorer in loaded:
                try:
                    found = scorer.score_all(data)
                except PredictError as error:
                    log.warning("scorer %s could not re-score: %s", scorer.name, error)
                    continue
                owned += scorer.outputs
                for person, values in found.items():
                    scores.setdefault(person, {}).update(values)
        else:
            owned = [key for scorer in loaded for key in scorer.outputs]
        outgoing, _ = self.store.write_scores(workspace, profile_ids, scores, owned, now)
        return outgoing
