"""Matching new records against profiles already resolved, without comparing everyone.

A resolved profile is kept as one match record (its contact traits) and its blocking keys
(`blocking_keys`), stored beside it. A batch of new records computes its own keys, fetches
only the profiles sharing one, and resolves the records together with those candidates
(`resolve` with `anchors`: each candidate is anchored to its profile, so two existing
profiles are never joined by a batch — a record that would join them is reported for
review instead). Work grows with the batch and its candidates, not with the number of
profiles.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwright_profile.matching.blocking import DEFAULT_BLOCKING_RULES, BlockingRule
from mailwright_profile.matching.features import build_features
from mailwright_profile.matching.records import Record

__all__ = ["MAX_KEY_CHARS", "blocking_keys"]

MAX_KEY_CHARS = 320


def blocking_keys(
    records: Sequence[Record],
    rules: Sequence[BlockingRule] = DEFAULT_BLOCKING_RULES,
    *,
    default_region: str | None = None,
    day_first: bool = False,
) -> list[list[tuple[int, str]]]:
    """For each record, its (rule index, key) pairs: the blocks it would fall into."""
    if not records:
        return []
    table = build_features(records, default_region=default_region, day_first=day_first)
    found: list[list[tuple[int, str]]] = [[] for _ in records]
    for index, rule in enumerate(rules):
        for row, key in enumerate(rule.key(table)):
            if key is not None:
                found[row].append((index, str(key)[:MAX_KEY_CHARS]))
    return found
