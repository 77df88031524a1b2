"""Resolution end to end: records in, profiles with explained merges out."""

from __future__ import annotations

import pytest

from mailwright_profile.matching.evaluate import pairwise_scores
from mailwright_profile.matching.generate import GeneratedRecords, generate_records
from mailwright_profile.matching.records import Record, RecordError
from mailwright_profile.matching.resolve import Resolution, ResolutionSettings, resolve

SETTINGS = ResolutionSettings(default_region="US", random_pairs=100_000)


Generated = tuple[GeneratedRecords, Resolution]


@pytest.fixture(scope="module")
def generated_resolution() -> Generated:
    generated = generate_records(4_000, seed=21)
    return generated, resolve(generated.records, SETTINGS)


def test_generated_records_resolve_with_high_precision_and_recall(
    generated_resolution: Generated,
) -> None:
    generated, resolution = generated_resolution
    scores = pairwise_scores(resolution.profile_ids(), generated.truth)
    # measured on this seed: precision 0.999, recall 0.950 (see docs/identity.md)
    assert scores.precision >= 0.97
    assert scores.recall >= 0.92


def test_comparisons_are_far_fewer_than_all_pairs(generated_resolution: Generated) -> None:
    _, resolution = generated_resolution
    assert resolution.comparisons < 0.005 * (4_000 * 3_999 // 2)


def test_every_probabilistic_merge_keeps_its_evidence(generated_resolution: Generated) -> None:
    _, resolution = generated_resolution
    matches = [link for link in resolution.clustering.merges if link.reason == "match"]
    assert matches
    for link in matches[:50]:
        assert link.probability >= SETTINGS.threshold
        assert {evidence.comparison for evidence in link.evidence} >= {"first_name", "email"}
        assert sum(e.weight for e in link.evidence) == pytest.approx(link.match_weight)


def test_review_pairs_lie_in_the_review_band_across_profiles(
    generated_resolution: Generated,
) -> None:
    _, resolution = generated_resolution
    for pair in resolution.review:
        assert SETTINGS.review_threshold <= pair.probability < SETTINGS.threshold
        assert resolution.clustering.profile_of(pair.left) != resolution.clustering.profile_of(
            pair.right
        )


def test_resolution_is_deterministic() -> None:
    records = generate_records(800, seed=22).records
    assert resolve(records, SETTINGS).profile_ids() == resolve(records, SETTINGS).profile_ids()


def test_a_shared_email_links_records_with_certainty() -> None:
    records = [
        Record("a", email="Pat.Lee@gmail.com", first_name="Pat"),
        Record("b", email="patlee+promo@gmail.com", first_name="Zed"),
    ]
    resolution = resolve(records, SETTINGS)
    assert resolution.clustering.profile_of("a") == resolution.clustering.profile_of("b")
    (link,) = resolution.explain("a", "b") or ()
    assert (link.reason, link.probability) == ("email", 1.0)


def test_a_shared_user_id_links_records_with_certainty() -> None:
    records = [Record("a", user_id="u1", first_name="Ann"), Record("b", user_id="u1")]
    resolution = resolve(records, SETTINGS)
    assert resolution.deterministic_links == 1
    assert resolution.clusters == 1


def test_records_with_two_user_ids_stay_apart_even_with_one_email() -> None:
    records = [
        Record("a", user_id="u1", email="same@example.com"),
        Record("b", user_id="u2", email="same@example.com"),
    ]
    resolution = resolve(records, SETTINGS)
    assert resolution.clusters == 2
    assert len(resolution.clustering.refused) == 1


def test_duplicate_record_ids_are_refused() -> None:
    with pytest.raises(RecordError, match="duplicate 'x'"):
        resolve([Record("x"), Record("x")])


def test_nothing_to_compare_gives_one_profile_per_record() -> None:
    resolution = resolve([Record("a", first_name="Ann"), Record("b", first_name="Bo")])
    assert resolution.clusters == 2
    assert resolution.model is None


@pytest.mark.parametrize(
    ("threshold", "review", "message"),
    [(0.0, 0.5, "threshold"), (1.5, 0.5, "threshold"), (0.8, 0.9, "review_threshold")],
)
def test_thresholds_are_checked(threshold: float, review: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResolutionSettings(threshold=threshold, review_threshold=review)
