"""Blocking: which pairs of records are worth comparing at all.

Each blocking rule gives every record a key (or none); records that share a key form a
block and every pair inside a block is a candidate. The candidates of all rules are
united and deduplicated. A block larger than `max_block_size` (a common surname in a big
city) is not compared all against all: its records are sorted by name and each is
compared with its `window` nearest neighbours, so work stays near-linear in the block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mailwright_profile.matching.features import FeatureTable, ObjectArray

__all__ = [
    "DEFAULT_BLOCKING_RULES",
    "BlockingRule",
    "CandidatePairs",
    "candidate_pairs",
    "column_key",
    "combined_key",
    "random_pairs",
]

IndexArray = npt.NDArray[np.int64]
KeyFunction = Callable[[FeatureTable], ObjectArray]


@dataclass(frozen=True)
class BlockingRule:
    """A named way of giving records a blocking key; records without one are left out."""

    name: str
    key: KeyFunction


@dataclass(frozen=True)
class CandidatePairs:
    """Deduplicated candidate pairs, left < right, sorted; with per-rule statistics."""

    left: IndexArray
    right: IndexArray
    pairs_per_rule: dict[str, int]
    capped_blocks: int

    def __len__(self) -> int:
        return len(self.left)


def _join(*columns: ObjectArray, lengths: Sequence[int | None] | None = None) -> ObjectArray:
    """Keys made of the given columns (each cut to its length), None if any is missing."""
    cuts = lengths or [None] * len(columns)
    parts = [
        [None if v is None else v[:cut] for v in column] if cut else list(column)
        for column, cut in zip(columns, cuts, strict=True)
    ]
    keys = np.empty(len(columns[0]), dtype=object)
    keys[:] = [None if None in row else "|".join(row) for row in zip(*parts, strict=True)]
    return keys


def column_key(name: str, length: int | None = None, minimum: int = 1) -> KeyFunction:
    """Key on one feature column, cut to `length`; values shorter than `minimum` get none."""

    def key(table: FeatureTable) -> ObjectArray:
        values = table.column(name)
        keys = np.empty(len(values), dtype=object)
        keys[:] = [
            None if v is None or len(v) < minimum else (v[:length] if length else v) for v in values
        ]
        return keys

    return key


def _name_pair_phonetic(table: FeatureTable) -> ObjectArray:
    """Both names' phonetic codes, in sorted order so that a swap keeps the key."""
    keys = np.empty(len(table), dtype=object)
    keys[:] = [
        None if a is None or b is None else "|".join(sorted((a, b)))
        for a, b in zip(table.column("first_phonetic"), table.column("last_phonetic"), strict=True)
    ]
    return keys


def combined_key(*parts: tuple[str, int | None]) -> KeyFunction:
    """Key on several columns, each cut to its length (None: whole); none if any is missing."""

    def key(table: FeatureTable) -> ObjectArray:
        return _join(*(table.column(name) for name, _ in parts), lengths=[n for _, n in parts])

    return key


def _name_sounds_and(column: str) -> KeyFunction:
    def key(table: FeatureTable) -> ObjectArray:
        return _join(_name_pair_phonetic(table), table.column(column))

    return key


DEFAULT_BLOCKING_RULES: tuple[BlockingRule, ...] = (
    BlockingRule("email", column_key("email")),
    BlockingRule("email local part", column_key("email_local", minimum=5)),
    BlockingRule("phone", column_key("phone")),
    BlockingRule(
        "last name prefix + postal code", combined_key(("last_name", 3), ("postal_code", None))
    ),
    BlockingRule(
        "birth date + first initial", combined_key(("birth_date", None), ("first_name", 1))
    ),
    BlockingRule("name sounds + city", _name_sounds_and("city")),
    BlockingRule("name sounds + birth year", _name_sounds_and("birth_year")),
    BlockingRule(
        "address + postal code", combined_key(("address_line1", None), ("postal_code", None))
    ),
    # Appended, never inserted: stored match keys name their rule by its place here.
    BlockingRule("birth date + last initial", combined_key(("birth_date", None), ("last_name", 1))),
    BlockingRule("birth date + city", combined_key(("birth_date", None), ("city", None))),
    BlockingRule(
        "birth date + postal prefix", combined_key(("birth_date", None), ("postal_code", 2))
    ),
    BlockingRule("address + city", combined_key(("address_line1", None), ("city", None))),
)


def _block_pairs(order: IndexArray, starts: IndexArray, sizes: IndexArray) -> list[IndexArray]:
    """All pairs inside blocks, grouped by block size so each size is one numpy step."""
    chunks: list[IndexArray] = []
    for size in np.unique(sizes):
        block_starts = starts[sizes == size]
        members = order[block_starts[:, None] + np.arange(size)[None, :]]
        a, b = np.triu_indices(int(size), k=1)
        chunks.append(np.stack((members[:, a].ravel(), members[:, b].ravel()), axis=1))
    return chunks


def _window_pairs(members: IndexArray, sort_key: ObjectArray, window: int) -> IndexArray:
    """Pairs of each member with its `window` successors in sort order."""
    ordered = members[np.argsort(sort_key[members], kind="stable")]
    chunks = [
        np.stack((ordered[:-step], ordered[step:]), axis=1)
        for step in range(1, min(window, len(ordered) - 1) + 1)
    ]
    return np.concatenate(chunks) if chunks else np.empty((0, 2), dtype=np.int64)


def _rule_pairs(
    keys: ObjectArray, sort_key: ObjectArray, max_block_size: int, window: int
) -> tuple[IndexArray, int]:
    present = np.flatnonzero(keys != None)  # noqa: E711 - elementwise test on an object array
    if len(present) < 2:
        return np.empty((0, 2), dtype=np.int64), 0
    _, inverse = np.unique(keys[present].astype(str), return_inverse=True)
    order = present[np.argsort(inverse, kind="stable")]
    sorted_codes = np.sort(inverse)
    boundaries = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate(([0], boundaries)).astype(np.int64)
    sizes = np.diff(np.concatenate((starts, [len(order)]))).astype(np.int64)
    small = (sizes >= 2) & (sizes <= max_block_size)
    chunks = _block_pairs(order, starts[small], sizes[small])
    large = np.flatnonzero(sizes > max_block_size)
    for block in large:
        members = order[starts[block] : starts[block] + sizes[block]]
        chunks.append(_window_pairs(members, sort_key, window))
    if not chunks:
        return np.empty((0, 2), dtype=np.int64), len(large)
    return np.concatenate(chunks), len(large)


def _sort_key(table: FeatureTable) -> ObjectArray:
    keys = np.empty(len(table), dtype=object)
    keys[:] = [
        f"{last or ''} {first or ''} {birth or ''}"
        for last, first, birth in zip(
            table.column("last_name"),
            table.column("first_name"),
            table.column("birth_date"),
            strict=True,
        )
    ]
    return keys


def candidate_pairs(
    table: FeatureTable,
    rules: Sequence[BlockingRule] = DEFAULT_BLOCKING_RULES,
    *,
    max_block_size: int = 200,
    window: int = 20,
) -> CandidatePairs:
    """The union of every rule's candidate pairs, each pair once, as row indices."""
    if max_block_size < 2 or window < 1:
        raise ValueError("max_block_size must be at least 2 and window at least 1")
    n = len(table)
    sort_key = _sort_key(table).astype(str)
    encoded: list[IndexArray] = []
    per_rule: dict[str, int] = {}
    capped = 0
    for rule in rules:
        pairs, large = _rule_pairs(rule.key(table), sort_key, max_block_size, window)
        capped += large
        low = np.minimum(pairs[:, 0], pairs[:, 1])
        high = np.maximum(pairs[:, 0], pairs[:, 1])
        codes = np.unique(low * n + high)
        per_rule[rule.name] = len(codes)
        encoded.append(codes)
    unique = np.unique(np.concatenate(encoded)) if encoded else np.empty(0, dtype=np.int64)
    return CandidatePairs(
        left=unique // n, right=unique % n, pairs_per_rule=per_rule, capped_blocks=capped
    )


def random_pairs(n: int, count: int, seed: int = 0) -> tuple[IndexArray, IndexArray]:
    """Up to `count` distinct random pairs of different rows among n, left < right."""
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    rng = np.random.default_rng(seed)
    total = n * (n - 1) // 2
    if total <= count:
        left, right = np.triu_indices(n, k=1)
        return left.astype(np.int64), right.astype(np.int64)
    a = rng.integers(0, n, size=count, dtype=np.int64)
    b = rng.integers(0, n - 1, size=count, dtype=np.int64)
    b = np.where(b >= a, b + 1, b)
    codes = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    return codes // n, codes % n
