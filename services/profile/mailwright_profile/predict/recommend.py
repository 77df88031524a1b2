"""Item-to-item recommendations from co-purchases and co-views, with a popularity fallback.

Two sparse person x item matrices (bought it, viewed it; each counted once per person)
give two item x item cosine similarities, combined with co-purchase weighted above co-view
and damped where few people support them (s · c / (c + shrinkage), c the co-occurrence
count). Each item keeps only its strongest neighbours. A person's scores are the
similarities to what they bought and viewed; what they already bought is never
recommended; when the neighbours give fewer than N items, the most popular items fill the
list, and a person with no history gets the popular items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError

if TYPE_CHECKING:  # SciPy loads on first use, not when the service starts
    from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
InteractionKind = Literal["view", "purchase"]


@dataclass(frozen=True)
class Interaction:
    person_id: str
    item_id: str
    kind: InteractionKind


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    source: Literal["similar", "popular"]


@dataclass(frozen=True)
class RecommenderSettings:
    purchase_similarity_weight: float = 1.0
    view_similarity_weight: float = 0.3
    purchase_evidence_weight: float = 1.0  # how much a purchase says about taste
    view_evidence_weight: float = 0.5
    shrinkage: float = 2.0
    neighbours: int = 50

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not (np.isfinite(value) and value >= 0):
                raise DataError(name, f"must be a number >= 0, got {value!r}")
        if self.neighbours < 1:
            raise DataError("neighbours", "must be at least 1")


def _binary(rows: list[int], cols: list[int], shape: tuple[int, int]) -> sparse.csr_matrix:
    from scipy import sparse

    matrix = sparse.csr_matrix(
        (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, np.int64))),
        shape=shape,
    )
    matrix.data[:] = 1.0  # duplicates were summed; once per person is what counts
    return matrix


def cosine_similarity(matrix: sparse.csr_matrix, shrinkage: float) -> sparse.csr_matrix:
    """Item x item cosine of binary columns, damped by support; zero diagonal."""
    from scipy import sparse

    co = (matrix.T @ matrix).tocoo()
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    off_diagonal = co.row != co.col
    rows, cols, together = co.row[off_diagonal], co.col[off_diagonal], co.data[off_diagonal]
    cosine = together / np.sqrt(counts[rows] * counts[cols])
    damped = cosine * together / (together + shrinkage)
    return sparse.csr_matrix((damped, (rows, cols)), shape=co.shape)


def keep_top_neighbours(similarity: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """Per row (item), the k largest similarities; ties go to the lower item index."""
    from scipy import sparse

    similarity = similarity.tocsr()
    rows, cols, values = [], [], []
    for i in range(similarity.shape[0]):
        start, end = similarity.indptr[i], similarity.indptr[i + 1]
        if start == end:
            continue
        row_cols = similarity.indices[start:end]
        row_values = similarity.data[start:end]
        order = np.lexsort((row_cols, -row_values))[:k]
        rows.append(np.full(order.size, i))
        cols.append(row_cols[order])
        values.append(row_values[order])
    if not rows:
        return sparse.csr_matrix(similarity.shape)
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=similarity.shape,
    )


@dataclass(frozen=True, eq=False)
class Recommender:
    items: tuple[str, ...]
    people: dict[str, int]
    bought: sparse.csr_matrix  # people x items
    evidence: sparse.csr_matrix  # people x items, weighted purchases and views
    similarity: sparse.csr_matrix  # items x items
    popularity_order: IntArray  # item indices, most popular first
    purchase_weight: float = 1.0  # evidence weights, as in RecommenderSettings
    view_weight: float = 0.5

    def popular(self, n: int, exclude: Iterable[str] = ()) -> list[Recommendation]:
        """The n most popular items (purchases, then views, then id), minus `exclude`."""
        skip = set(exclude)
        picks = [self.items[i] for i in self.popularity_order if self.items[i] not in skip][:n]
        total = len(self.popularity_order)
        return [
            Recommendation(item, float(total - rank) / total, "popular")
            for rank, item in enumerate(picks)
        ]

    def recommend(self, person_id: str, n: int = 10) -> list[Recommendation]:
        """Top-n items for one person; never an item they bought."""
        if n < 1:
            raise DataError("n", f"must be at least 1, got {n}")
        row = self.people.get(person_id)
        if row is None:
            return self.popular(n)
        scores = np.asarray((self.evidence[row] @ self.similarity).todense()).ravel()
        return self._rank(scores, self.bought[row].indices, n)

    def recommend_items(
        self, bought: Iterable[str], viewed: Iterable[str], n: int = 10
    ) -> list[Recommendation]:
        """Top-n items for someone who bought and viewed these items (whether or not they
        were in the training data); items the model does not know carry no evidence."""
        if n < 1:
            raise DataError("n", f"must be at least 1, got {n}")
        index = self._index()
        owned = np.array(sorted({index[i] for i in bought if i in index}), dtype=np.int64)
        seen = np.array(sorted({index[i] for i in viewed if i in index}), dtype=np.int64)
        evidence = np.zeros(len(self.items))
        evidence[seen] = self.view_weight
        evidence[owned] += self.purchase_weight
        if not evidence.any():
            return self.popular(n)
        scores = np.asarray(self.similarity.T @ evidence).ravel()
        return self._rank(scores, owned, n)

    def _index(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_item_index")
        if cached is None:
            cached = {item: i for i, item in enumerate(self.items)}
            object.__setattr__(self, "_item_index", cached)
        return cached

    def _rank(self, scores: FloatArray, owned: IntArray, n: int) -> list[Recommendation]:
        scores = scores.copy()
        scores[owned] = 0.0
        candidates = np.flatnonzero(scores > 0)
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:n]
        picks = [Recommendation(self.items[i], float(scores[i]), "similar") for i in order]
        if len(picks) < n:
            taken = {self.items[i] for i in owned} | {p.item_id for p in picks}
            picks += self.popular(n - len(picks), exclude=taken)
        return picks

    def recommend_many(
        self, person_ids: Iterable[str], n: int = 10
    ) -> dict[str, list[Recommendation]]:
        return {person: self.recommend(person, n) for person in person_ids}


def fit_recommender(
    interactions: Iterable[Interaction], settings: RecommenderSettings | None = None
) -> Recommender:
    """Build the item-to-item model from views and purchases."""
    config = settings or RecommenderSettings()
    people: dict[str, int] = {}
    items: dict[str, int] = {}
    coordinates: dict[str, tuple[list[int], list[int]]] = {"view": ([], []), "purchase": ([], [])}
    for number, interaction in enumerate(interactions, start=1):
        if interaction.kind not in coordinates:
            raise DataError("kind", f"interaction {number}: unknown kind {interaction.kind!r}")
        if not interaction.person_id or not interaction.item_id:
            raise DataError("item_id", f"interaction {number}: empty person or item id")
        rows, cols = coordinates[interaction.kind]
        rows.append(people.setdefault(interaction.person_id, len(people)))
        cols.append(items.setdefault(interaction.item_id, len(items)))
    if not items:
        raise DataError("interactions", "no views or purchases to learn from")
    shape = (len(people), len(items))
    bought = _binary(*coordinates["purchase"], shape)
    viewed = _binary(*coordinates["view"], shape)
    similarity = config.purchase_similarity_weight * cosine_similarity(
        bought, config.shrinkage
    ) + config.view_similarity_weight * cosine_similarity(viewed, config.shrinkage)
    similarity = keep_top_neighbours(similarity.tocsr(), config.neighbours)
    evidence = (
        config.purchase_evidence_weight * bought + config.view_evidence_weight * viewed
    ).tocsr()
    purchases = np.asarray(bought.sum(axis=0)).ravel()
    views = np.asarray(viewed.sum(axis=0)).ravel()
    item_ids = tuple(items)
    ranks_by_id = np.argsort(np.argsort(np.array(item_ids, dtype=object)))
    popularity = np.lexsort((ranks_by_id, -views, -purchases)).astype(np.int64)
    return Recommender(
        item_ids,
        people,
        bought,
        evidence,
        similarity,
        popularity,
        config.purchase_evidence_weight,
        config.view_evidence_weight,
    )
