"""The generator of test records with known truth."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.normalize import normalize_email
from mailwright_profile.matching.generate import Noise, generate_records, typo


def test_the_same_seed_gives_the_same_records() -> None:
    assert generate_records(500, seed=11) == generate_records(500, seed=11)


def test_another_seed_gives_other_records() -> None:
    assert generate_records(200, seed=1).records != generate_records(200, seed=2).records


def test_it_makes_exactly_the_records_asked_for_with_truth_for_each() -> None:
    generated = generate_records(1_234, seed=3)
    assert len(generated.records) == 1_234
    ids = [record.record_id for record in generated.records]
    assert len(set(ids)) == len(ids)
    assert set(generated.truth) == set(ids)


def test_some_people_have_several_records() -> None:
    sizes = Counter(Counter(generate_records(2_000, seed=4).truth.values()).values())
    assert sizes[1] > sizes[2] > sizes[3] > 0


def test_without_noise_duplicates_agree_on_names_and_birth_date() -> None:
    generated = generate_records(1_000, seed=5, noise=Noise.none())
    by_person: dict[str, set[tuple[str | None, ...]]] = {}
    for record in generated.records:
        key = (record.first_name, record.last_name)
        by_person.setdefault(generated.truth[record.record_id], set()).add(key)
    assert all(len(names) == 1 for names in by_person.values())


def test_noise_produces_the_changes_matching_must_survive() -> None:
    generated = generate_records(5_000, seed=6)
    people: dict[str, list[str]] = {}
    for record in generated.records:
        people.setdefault(generated.truth[record.record_id], []).append(record.first_name or "")
    varied = sum(1 for names in people.values() if len({n.casefold() for n in names}) > 1)
    assert varied > 50  # typos, nicknames, swapped names
    assert any(record.email is None for record in generated.records)
    assert any(record.phone and record.phone.startswith("(") for record in generated.records)
    assert any(record.birth_date and "/" in record.birth_date for record in generated.records)


def test_different_people_never_share_a_mailbox() -> None:
    generated = generate_records(5_000, seed=8)
    owner: dict[str, str] = {}
    for record in generated.records:
        mailbox = normalize_email(record.email)
        if mailbox:
            person = generated.truth[record.record_id]
            assert owner.setdefault(mailbox, person) == person


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        generate_records(-1)


@given(st.text(alphabet="abcdefghij", min_size=2, max_size=12), st.integers(0, 1000))
def test_a_typo_is_one_edit_away(word: str, seed: int) -> None:
    from rapidfuzz.distance import DamerauLevenshtein

    changed = typo(random.Random(seed), word)
    assert DamerauLevenshtein.distance(word, changed) <= 1
