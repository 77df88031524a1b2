"""Operation of the predictive models on the profile service's own data: scorers from the
plugin hook, training on stored history, versions, scores as computed traits, incremental
re-scoring, the CLI's train and report, and bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mailwright.cli import cli as mailwright_cli
from mailwright.common.v1 import event_pb2
from mailwright.extensions import ScorerRegistry
from mailwright.plugins import Plugins, hookimpl
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime import bus as bus_module
from mailwright.runtime.bus import Message
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright.testing.bus import FAST_CONSUMER_OPTIONS
from mailwright_profile import convert
from mailwright_profile.app import ProfileApp
from mailwright_profile.consumer import EventConsumer
from mailwright_profile.events import read_event
from mailwright_profile.identity import Identity
from mailwright_profile.outbox import Outbox
from mailwright_profile.predict import plugin as builtin_plugin
from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.features import build_features
from mailwright_profile.predict.rescore import Rescorer
from mailwright_profile.predict.scorers import ModelVersion, TrainingData, check_version
from mailwright_profile.predict.service import Predictor, scorer_traits
from mailwright_profile.predict.simulate import profile_events, simulate_event_log
from mailwright_profile.profiles import Profiles
from mailwright_profile.simulate import Clock, track
from mailwright_profile.store import ProfileStore
from mailwright_profile.store import tables as t

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 240
NOW = START + timedelta(days=DAYS)
SCORE_TRAITS = {
    "clv_12m",
    "p_alive",
    "expected_purchases_90d",
    "purchase_propensity_30d",
    "best_send_hour",
    "best_send_day",
    "recommended_products",
    "engagement_score",
}


@dataclass(frozen=True)
class EngagementScore:
    """A third-party scorer, as docs/predictive.md shows one: human opens in 30 days over
    the most anyone had at training time."""

    name: ClassVar[str] = "engagement"
    outputs: ClassVar[tuple[str, ...]] = ("engagement_score",)
    scale: float | None = None

    def train(self, data: TrainingData) -> ModelVersion:
        opens = build_features(data.events, data.as_of).column("opens_30d")
        scale = float(max(opens.max(), 1.0))
        return ModelVersion.create(self.name, {"scale": scale}, {"people": int(opens.size)})

    def load(self, version: ModelVersion) -> EngagementScore:
        check_version(self.name, version, ("scale",))
        return replace(self, scale=version.parameters["scale"])

    def score(self, features: Any) -> dict[str, float]:
        if self.scale is None or features.get("opens_30d") is None:
            return {}
        return {"engagement_score": min(1.0, features["opens_30d"] / self.scale)}

    def score_all(self, data: TrainingData) -> dict[str, dict[str, float]]:
        matrix = build_features(data.events, data.as_of)
        opens = matrix.column("opens_30d").tolist()
        return {
            p: self.score({"opens_30d": v}) for p, v in zip(matrix.person_ids, opens, strict=True)
        }


class EngagementPlugin:
    @staticmethod
    @hookimpl
    def mailwright_register_scorers(registry: ScorerRegistry) -> None:
        registry.register(EngagementScore())


def plugins() -> Plugins:
    """The built-in scorers' plugin and a third-party one, registered alike."""
    loaded = Plugins()
    loaded.register(builtin_plugin, "predict")
    loaded.register(EngagementPlugin(), "engagement")
    return loaded


def fill(store: ProfileStore, n: int = 300, start: datetime = START, seed: int = 1) -> None:
    """Simulated history applied through the store, as the consumer applies it."""
    events = profile_events(simulate_event_log(n, start=start, days=DAYS, seed=seed))
    for i in range(0, len(events), 1000):
        store.apply_batch([read_event(e) for e in events[i : i + 1000]], start)


def profile_of(store: ProfileStore, user: str) -> str:
    view = store.lookup("acme", Identity("user_id", user))
    assert view is not None
    return view.profile_id


def announced(store: ProfileStore, profile: str) -> list[profile_pb2.ProfileChanged]:
    with store.db.reader.connect() as conn:
        rows = conn.execute(
            sa.select(t.outbox.c.payload)
            .where(t.outbox.c.profile_id == profile, t.outbox.c.topic == "profiles.changed")
            .order_by(t.outbox.c.id)
        )
        return [profile_pb2.ProfileChanged.FromString(row.payload) for row in rows]


@pytest.fixture
def predictor(store: ProfileStore) -> Predictor:
    fill(store)
    return Predictor(store.db, plugins().scorers)


def test_scorers_come_from_the_hook_builtin_and_third_party_alike() -> None:
    loaded = plugins()
    assert loaded.scorers.names() == [
        "churn",
        "clv",
        "engagement",
        "propensity",
        "recommend",
        "send-time",
    ]
    assert loaded.scorers.owner_of("clv") == "predict"
    assert loaded.scorers.owner_of("engagement") == "engagement"
    registry = scorer_traits(loaded.scorers)
    assert {"churn_risk", "engagement_score", "recommended_products"} <= set(registry.keys())
    kinds = {trait.key: (trait.type, trait.source) for trait in registry}
    assert kinds["recommended_products"] == ("list", "recommend")
    assert kinds["clv_12m"] == ("number", "clv")


def test_train_stores_versions_and_writes_scores_as_computed_traits(
    store: ProfileStore, predictor: Predictor
) -> None:
    outcomes = {o.scorer: o for o in predictor.train("acme", NOW)}
    assert set(outcomes) == {"clv", "churn", "propensity", "send-time", "recommend", "engagement"}
    trained = {name for name, o in outcomes.items() if o.version is not None}
    assert trained == set(outcomes), {n: o.error for n, o in outcomes.items()}

    current = predictor.store.current("acme")
    assert set(current) == trained
    for name, stored in current.items():
        trained_version = outcomes[name].version
        assert trained_version is not None
        assert stored.version.to_json() == trained_version.to_json()  # metrics intact
        assert stored.version.artifact == trained_version.artifact
        assert stored.as_of == NOW
    assert current["propensity"].version.artifact is not None
    propensity = current["propensity"].version.metrics
    assert propensity["validation"]["auc"] > propensity["recency_baseline"]["auc"]
    assert len(propensity["validation"]["lift_by_decile"]) == 10
    clv = current["clv"].version
    assert clv.metrics["customers"] > 100
    assert clv.metrics["bgnbd_log_likelihood"] < 0
    assert set(clv.parameters["bgnbd"]) == {"r", "alpha", "a", "b"}

    summary = predictor.score_all("acme", NOW)
    assert summary.profiles == 300
    assert summary.changed == summary.scored > 0
    # Re-scoring a few people from their own history gives what the full scoring gave.
    some = predictor.store.live_profiles("acme")[:40]
    assert predictor.rescore("acme", some, NOW, predictor.loaded("acme")) == []

    buyer = profile_of(store, "u1")  # p1 bought (checked below through its scores)
    view = store.get("acme", buyer)
    assert view is not None
    computed = convert.profile_proto(view, NOW).computed_traits
    assert SCORE_TRAITS - {"clv_12m"} <= set(computed.keys())
    assert 0.0 <= computed["p_alive"] <= 1.0
    assert 0 <= computed["best_send_hour"] < 24
    assert len(computed["recommended_products"]) == 5
    # Traits evaluated from the aggregates are still there beside the scores.
    assert "orders_count" in computed

    changes = announced(store, buyer)
    last = changes[-1]
    assert last.version == view.version
    assert set(last.computed_traits.keys()) == set(view.scores)

    # Retraining adds versions; the newest is the one in use.
    again = predictor.train("acme", NOW + timedelta(hours=1), ["propensity"])
    assert [o.scorer for o in again] == ["propensity"]
    versions = predictor.store.versions("acme", "propensity")
    assert len(versions) == 2
    newest = again[0].version
    assert newest is not None
    assert predictor.store.current("acme")["propensity"].version.version == newest.version


async def test_profile_filters_read_scores_like_any_computed_trait(
    sqlite_store: ProfileStore,
) -> None:
    store = sqlite_store
    fill(store)
    predictor = Predictor(store.db, plugins().scorers)
    await asyncio.to_thread(predictor.train, "acme", NOW, ["propensity"])
    await asyncio.to_thread(predictor.score_all, "acme", NOW)
    bus = await bus_module.connect("memory://")
    profiles = Profiles(store, Outbox(bus, store, lambda: NOW), lambda: NOW)
    chosen, _ = await profiles.list_profiles(
        "acme", "computed_traits.purchase_propensity_30d > 0.3", "", 1000, ""
    )
    assert chosen
    assert all(v.scores["purchase_propensity_30d"] > 0.3 for v in chosen)
    assert len(chosen) < 300
    await bus.close()


def _order(user: str, at: datetime, amount: float) -> event_pb2.Event:
    return track(
        "Order Completed",
        user_id=user,
        at=at,
        properties={"revenue": amount, "products": [{"product_id": "sku-0-1"}]},
    )


async def test_a_new_order_rescores_that_person_with_the_current_models(
    store: ProfileStore, predictor: Predictor
) -> None:
    await asyncio.to_thread(predictor.train, "acme", NOW, ["clv", "recommend", "engagement"])
    await asyncio.to_thread(predictor.score_all, "acme", NOW)
    buyer, other = profile_of(store, "u1"), profile_of(store, "u2")
    before = store.get("acme", buyer)
    untouched = store.get("acme", other)
    assert before is not None
    assert untouched is not None
    versions = {v.version.version for v in predictor.store.versions("acme")}

    bus = await bus_module.connect("memory://")
    clock = Clock(NOW + timedelta(hours=1))
    outbox = Outbox(bus, store, clock)
    rescorer = Rescorer(predictor, outbox, clock)
    consumer = EventConsumer(store, outbox, clock, after_batch=rescorer.after_batch)
    await consumer.start()
    await rescorer.start()
    for day in (3, 2, 1):
        await consumer.submit(read_event(_order("u1", NOW - timedelta(days=day), 80.0)))
    await rescorer.drain()
    await rescorer.stop()
    await consumer.stop()
    await bus.close()

    after = store.get("acme", buyer)
    assert after is not None
    assert after.scores["expected_purchases_90d"] > before.scores["expected_purchases_90d"]
    assert after.scores["clv_12m"] != before.scores.get("clv_12m")
    assert "sku-0-1" not in after.scores["recommended_products"]  # bought it now
    change = announced(store, buyer)[-1]  # the re-scoring after the last order
    assert change.version == after.version
    assert set(change.computed_traits.keys()) <= set(after.scores)
    for key, value in change.computed_traits.items():
        assert value == pytest.approx(after.scores[key])
    # Only the person who changed was re-scored, and nothing was retrained.
    again = store.get("acme", other)
    assert again is not None
    assert again.version == untouched.version
    assert {v.version.version for v in predictor.store.versions("acme")} == versions
    assert rescorer.rescored >= 1


def test_the_same_events_give_the_same_model_whatever_ids_the_service_drew(
    sqlite_store: ProfileStore, another_sqlite_store: ProfileStore
) -> None:
    # The service draws profile ids at random, so two stores holding the same events
    # number their people differently; the classifiers' folds once followed that order.
    risks = []
    for store in (sqlite_store, another_sqlite_store):
        fill(store)
        predictor = Predictor(store.db, plugins().scorers)
        training = predictor.train_and_score("acme", NOW, ["propensity"])
        assert [o.scorer for o in training.trained] == ["propensity"]
        by_user = {}
        for user in (f"u{i}" for i in range(300)):
            view = store.lookup("acme", Identity("user_id", user))
            assert view is not None
            by_user[user] = view.scores["purchase_propensity_30d"]
        risks.append(by_user)
    assert len(set(risks[0].values())) > 10
    assert risks[0] == risks[1]


async def test_the_service_trains_in_process_and_publishes_the_scores_at_once(
    tmp_path: Path,
) -> None:
    # What a platform embedding the service (the demo) runs: the job's code path on the
    # service's own database. The job leaves the score changes to the outbox relay, here
    # held back for minutes; in process they are on the bus as soon as they are written.
    settings = Settings(
        data_dir=tmp_path / "data",
        grpc_port=0,
        http_port=0,
        auth_secret="p" * 48,
        bus_url="memory://",
        namespace=f"mem-{uuid.uuid4().hex[:10]}",
        shutdown_grace=2,
        services={"profile": {"outbox_grace": 600.0, "outbox_interval": 600.0}},
    )
    platform = Platform(settings, resolve_services(["profile"]))
    await platform.start()
    assert platform.runtime is not None
    changed: list[profile_pb2.ProfileChanged] = []

    async def on_changed(message: Message) -> None:
        changed.append(profile_pb2.ProfileChanged.FromString(message.value))

    watch = platform.runtime.bus.subscribe(
        "profiles.changed", "watch", on_changed, options=FAST_CONSUMER_OPTIONS
    )
    await watch.start()
    try:
        app = next(a for a in platform.apps if isinstance(a, ProfileApp))
        await app.db.run(fill, app.store)
        training = await app.train_models("acme", NOW, ["propensity", "recommend"])
        assert [o.scorer for o in training.trained] == ["propensity", "recommend"]
        assert len(training.outgoing) == training.scores.changed > 0
        for _ in range(200):
            if len(changed) >= len(training.outgoing):
                break
            await asyncio.sleep(0.05)
        assert len(changed) == len(training.outgoing)
        written = {"purchase_propensity_30d", "recommended_products"}
        assert all(set(change.computed_traits.keys()) <= written for change in changed)
    finally:
        await watch.stop()
        await platform.stop()


def test_bad_input_gives_a_clear_error(store: ProfileStore) -> None:
    predictor = Predictor(store.db, plugins().scorers)
    with pytest.raises(DataError, match="'acme' has no events to learn from"):
        predictor.train("acme", NOW)
    with pytest.raises(DataError, match=r"no scorer named 'ltv'.*known: churn, clv"):
        predictor.train("acme", NOW, ["ltv"])
    few: Sequence[event_pb2.Event] = [
        _order(f"u{i}", START + timedelta(days=d), 20.0) for i in range(4) for d in (1, 9)
    ]
    store.apply_batch([read_event(e) for e in few], START)
    outcomes = {o.scorer: o for o in predictor.train("acme", NOW, ["clv", "churn"])}
    assert outcomes["clv"].version is None
    assert "needs at least 10 customers, got 4" in (outcomes["clv"].error or "")
    assert outcomes["churn"].version is None
    assert predictor.store.current("acme") == {}


def test_cli_trains_from_the_service_database_and_reports_with_plots(
    sqlite_store: ProfileStore, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fixed history and --as-of: with a history ending today the fit's data changed
    # with the calendar, and on some days this small sample did not identify BG/NBD.
    fill(sqlite_store)
    monkeypatch.setenv("MAILWRIGHT_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    result = runner.invoke(mailwright_cli, ["predict", "train", "--model", "nope"])
    assert result.exit_code == 2
    assert "no scorer named 'nope'" in result.output
    for bad, problem in (("yesterday", "not an ISO 8601 time"), ("2999-01-01", "future")):
        result = runner.invoke(mailwright_cli, ["predict", "train", "--as-of", bad])
        assert result.exit_code == 2
        assert problem in result.output
    result = runner.invoke(
        mailwright_cli,
        [
            *("predict", "train", "--workspace", "acme"),
            *("--model", "clv", "--model", "propensity", "--as-of", NOW.isoformat()),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "scored" in result.output
    view = sqlite_store.get("acme", profile_of(sqlite_store, "u1"))
    assert view is not None
    assert "purchase_propensity_30d" in view.scores

    out = tmp_path / "report"
    result = runner.invoke(mailwright_cli, ["predict", "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "recency baseline" in result.output
    assert "BG/NBD (days): r " in result.output
    assert "AUC" in result.output
    assert "Gamma-Gamma: p " in result.output
    written = sorted(p.name for p in out.rglob("*.png"))
    assert written == ["clv-distribution.png", "propensity-calibration.png", "propensity-lift.png"]
    for path in out.rglob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_models_says_so(
    sqlite_store: ProfileStore, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(sqlite_store, n=20)
    monkeypatch.setenv("MAILWRIGHT_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(mailwright_cli, ["predict", "report"])
    assert result.exit_code == 1
    assert "no trained models" in result.output
