"""Matching against profiles already resolved: anchors, a given model, stored keys."""

from __future__ import annotations

from mailwright_profile.matching.blocking import DEFAULT_BLOCKING_RULES
from mailwright_profile.matching.default_model import default_model
from mailwright_profile.matching.incremental import blocking_keys
from mailwright_profile.matching.model import MatchModel
from mailwright_profile.matching.records import Record
from mailwright_profile.matching.resolve import ResolutionSettings, resolve

ADA = {"first_name": "Ada", "last_name": "Lovelace", "birth_date": "1815-12-10", "country": "GB"}


def test_a_record_keeps_its_blocking_keys_rule_by_rule() -> None:
    (keys,) = blocking_keys([Record("r1", email="ada@example.com", **ADA)])
    names = {DEFAULT_BLOCKING_RULES[rule].name for rule, _ in keys}
    assert {"email", "birth date + first initial", "name sounds + birth year"} <= names
    assert (0, "ada@example.com") in keys


def test_records_anchored_to_different_profiles_are_never_joined() -> None:
    records = [Record("p1", **ADA), Record("p2", **ADA), Record("new", **ADA)]
    resolution = resolve(records, model=default_model(), anchors=["P1", "P2", None])
    assert resolution.clustering.profile_of("p1") != resolution.clustering.profile_of("p2")
    joined = {resolution.clustering.profile_of("new")}
    assert joined & {resolution.clustering.profile_of("p1"), resolution.clustering.profile_of("p2")}
    assert any({pair.left, pair.right} == {"p1", "p2"} for pair in resolution.review)


def test_a_given_model_is_used_instead_of_fitting_one() -> None:
    records = [Record("a", email="ada@example.com", **ADA), Record("b", **ADA)]
    resolution = resolve(records, ResolutionSettings(threshold=0.5), model=default_model())
    assert resolution.model is default_model()
    assert resolution.em_iterations == 0
    assert resolution.clustering.profile_of("a") == resolution.clustering.profile_of("b")


def test_a_model_survives_json() -> None:
    model = default_model()
    again = MatchModel.from_json(model.to_json())
    assert again.names == model.names
    assert again.prior == model.prior
    assert all((x == y).all() for x, y in zip(again.m, model.m, strict=True))
