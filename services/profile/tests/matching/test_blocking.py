"""Blocking: far fewer pairs than all of them, and the right ones."""

from __future__ import annotations

import numpy as np
import pytest

from mailwright_profile.matching.blocking import (
    DEFAULT_BLOCKING_RULES,
    BlockingRule,
    candidate_pairs,
    column_key,
    random_pairs,
)
from mailwright_profile.matching.features import build_features
from mailwright_profile.matching.generate import generate_records
from mailwright_profile.matching.records import Record


def test_records_sharing_a_key_become_a_candidate_pair_once() -> None:
    records = [
        Record("a", email="x@example.com", phone="+14155550123"),
        Record("b", email="x@example.com", phone="+14155550123"),
        Record("c", email="y@example.com"),
    ]
    pairs = candidate_pairs(build_features(records))
    assert list(zip(pairs.left, pairs.right, strict=True)) == [(0, 1)]
    assert pairs.pairs_per_rule["email"] == 1
    assert pairs.pairs_per_rule["phone"] == 1


def test_records_without_a_key_are_left_out_of_that_rule() -> None:
    records = [Record(str(i)) for i in range(5)]
    assert len(candidate_pairs(build_features(records))) == 0


def test_an_oversized_block_is_compared_by_a_window_of_neighbours() -> None:
    records = [
        Record(f"r{i}", email="shared@example.com", last_name=f"n{i:03d}") for i in range(50)
    ]
    rule = BlockingRule("email", column_key("email"))
    pairs = candidate_pairs(build_features(records), (rule,), max_block_size=10, window=3)
    assert pairs.capped_blocks == 1
    assert len(pairs) == 49 + 48 + 47
    assert len(pairs) < 50 * 49 // 2


def test_pairs_are_ordered_and_distinct() -> None:
    table = build_features(generate_records(2_000, seed=5).records, default_region="US")
    pairs = candidate_pairs(table)
    assert (pairs.left < pairs.right).all()
    codes = pairs.left * len(table) + pairs.right
    assert len(np.unique(codes)) == len(codes)
    assert (np.diff(codes) > 0).all()


def _candidates(count: int) -> int:
    table = build_features(generate_records(count, seed=6).records, default_region="US")
    return len(candidate_pairs(table, DEFAULT_BLOCKING_RULES))


def test_blocking_keeps_comparisons_far_below_all_pairs() -> None:
    small, large = _candidates(3_000), _candidates(6_000)
    assert large < 0.002 * (6_000 * 5_999 // 2)
    # twice the records, about twice the work: not the four times of all pairs
    assert large / small < 2.6


def test_blocking_finds_most_true_pairs() -> None:
    generated = generate_records(5_000, seed=7)
    table = build_features(generated.records, default_region="US")
    pairs = candidate_pairs(table)
    person = [generated.truth[record_id] for record_id in table.record_ids]
    found = {(a, b) for a, b in zip(pairs.left, pairs.right, strict=True) if person[a] == person[b]}
    by_person: dict[str, list[int]] = {}
    for row, who in enumerate(person):
        by_person.setdefault(who, []).append(row)
    true_pairs = sum(len(rows) * (len(rows) - 1) // 2 for rows in by_person.values())
    assert len(found) >= 0.9 * true_pairs


def test_window_and_block_size_are_checked() -> None:
    table = build_features([Record("a")])
    with pytest.raises(ValueError, match="max_block_size"):
        candidate_pairs(table, max_block_size=1)


def test_random_pairs_are_distinct_pairs_of_different_rows() -> None:
    left, right = random_pairs(1_000, 5_000, seed=1)
    assert (left < right).all()
    assert len(set(zip(left.tolist(), right.tolist(), strict=True))) == len(left)
    assert 4_900 < len(left) <= 5_000


def test_random_pairs_of_a_small_batch_are_all_pairs() -> None:
    left, right = random_pairs(4, 100)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3),
    ]  # fmt: skip


def test_a_birth_date_makes_a_candidate_when_names_are_garbled() -> None:
    """Two forms of one person whose names share neither sound nor initial, whose city is
    mistyped and whose postal code has two digits swapped (a register's typing): the
    birth date and the postal code's first digits find them."""
    records = [
        Record("a", first_name="harry", last_name="beattie", birth_date="1983-12-27",
               address_line1="91 watson street", city="kempsey", postal_code="2536"),
        Record("b", first_name="white", last_name="marleigh", birth_date="1983-12-27",
               address_line1="91", city="kempsy", postal_code="2563"),
    ]  # fmt: skip
    pairs = candidate_pairs(build_features(records))
    assert list(zip(pairs.left, pairs.right, strict=True)) == [(0, 1)]
    assert pairs.pairs_per_rule["birth date + postal prefix"] == 1
    assert sum(pairs.pairs_per_rule.values()) == 1


def test_an_address_and_city_make_a_candidate_when_the_postal_code_is_mistyped() -> None:
    records = [
        Record("a", first_name="ruby", last_name="reid", address_line1="12 Judkins Street",
               city="Airds", postal_code="4350"),
        Record("b", first_name="rudy", last_name="reip", address_line1="12 judkins st",
               city="airds", postal_code="4305"),
    ]  # fmt: skip
    pairs = candidate_pairs(build_features(records))
    assert list(zip(pairs.left, pairs.right, strict=True)) == [(0, 1)]
    assert pairs.pairs_per_rule["address + city"] == 1
