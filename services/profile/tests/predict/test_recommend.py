"""Recommendations: similar items first, never what was bought, popularity to fill in."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.recommend import (
    Interaction,
    RecommenderSettings,
    cosine_similarity,
    fit_recommender,
)


def _bought(person: str, *items: str) -> list[Interaction]:
    return [Interaction(person, item, "purchase") for item in items]


def _viewed(person: str, *items: str) -> list[Interaction]:
    return [Interaction(person, item, "view") for item in items]


def test_items_bought_together_are_recommended_together() -> None:
    log = (
        _bought("a", "tent", "stove")
        + _bought("b", "tent", "stove")
        + _bought("c", "tent", "stove", "mat")
        + _bought("d", "novel", "poems")
        + _bought("e", "novel", "poems")
        + _bought("new", "tent")
    )
    picks = fit_recommender(log).recommend("new", 2)
    assert [p.item_id for p in picks] == ["stove", "mat"]
    assert all(p.source == "similar" for p in picks)


def test_what_a_person_bought_is_never_recommended() -> None:
    log = _bought("a", "x", "y", "z") + _bought("b", "x", "y") + _bought("c", "y", "z")
    recommender = fit_recommender(log)
    for person, owned in (("a", {"x", "y", "z"}), ("b", {"x", "y"}), ("c", {"y", "z"})):
        assert not owned & {p.item_id for p in recommender.recommend(person, 5)}


def test_a_co_purchase_counts_more_than_a_co_view() -> None:
    log = (
        _bought("a", "base", "bought-with")
        + _bought("b", "base", "bought-with")
        + _viewed("c", "base", "viewed-with")
        + _viewed("d", "base", "viewed-with")
        + _bought("new", "base")
    )
    picks = fit_recommender(log).recommend("new", 2)
    assert [p.item_id for p in picks] == ["bought-with", "viewed-with"]
    assert picks[0].score > picks[1].score


def test_a_person_without_history_gets_the_most_popular_items() -> None:
    log = _bought("a", "hit", "other") + _bought("b", "hit") + _viewed("c", "other", "rare")
    picks = fit_recommender(log).recommend("stranger", 3)
    assert [p.item_id for p in picks] == ["hit", "other", "rare"]
    assert {p.source for p in picks} == {"popular"}


def test_popular_items_fill_a_short_list_without_repeats_or_owned_items() -> None:
    log = (
        _bought("a", "tent", "stove")
        + _bought("b", "hit")
        + _bought("c", "hit")
        + _bought("d", "hit", "tent")
        + _bought("new", "tent")
    )
    picks = fit_recommender(log).recommend("new", 4)
    items = [p.item_id for p in picks]
    assert items[0] in {"stove", "hit"}
    assert len(items) == len(set(items)) == 2  # only stove and hit are left to offer
    assert "tent" not in items


def test_similarity_is_symmetric_with_an_empty_diagonal() -> None:
    rng = np.random.default_rng(1)
    from scipy import sparse

    matrix = sparse.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    similarity = cosine_similarity(matrix, shrinkage=0.0).toarray()
    assert np.allclose(similarity, similarity.T)
    assert np.all(np.diag(similarity) == 0)
    dense = matrix.toarray()
    norms = np.sqrt(dense.sum(0))
    expected = dense.T @ dense / np.outer(norms, norms)
    np.fill_diagonal(expected, 0)
    assert np.allclose(similarity, np.nan_to_num(expected))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 9), st.sampled_from(["view", "purchase"])),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 12),
)
def test_lists_have_n_distinct_unowned_items_when_the_catalogue_allows(
    rows: list[tuple[int, int, str]], n: int
) -> None:
    log = [Interaction(f"p{p}", f"i{i}", kind) for p, i, kind in rows]  # type: ignore[arg-type]
    recommender = fit_recommender(log)
    for person in {f"p{p}" for p, _, _ in rows}:
        owned = {f"i{i}" for p, i, kind in rows if f"p{p}" == person and kind == "purchase"}
        items = [r.item_id for r in recommender.recommend(person, n)]
        catalogue = {f"i{i}" for _, i, _ in rows}
        assert len(items) == len(set(items)) == min(n, len(catalogue - owned))
        assert not owned & set(items)


def test_bad_settings_and_inputs_are_data_errors() -> None:
    with pytest.raises(DataError, match="view_similarity_weight"):
        RecommenderSettings(view_similarity_weight=-1.0)
    with pytest.raises(DataError, match="no views or purchases"):
        fit_recommender([])
    with pytest.raises(DataError, match="unknown kind 'like'"):
        fit_recommender([Interaction("a", "b", "like")])  # type: ignore[arg-type]
