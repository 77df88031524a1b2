"""The Fellegi-Sunter model and its fitting by EM."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from mailwright_profile.matching.comparisons import NULL_LEVEL, Comparison, Exact
from mailwright_profile.matching.model import MatchModel, fit_em, level_frequencies

TRUE_PRIOR = 0.15
TRUE_M = [np.array([0.05, 0.15, 0.8]), np.array([0.1, 0.9]), np.array([0.02, 0.08, 0.2, 0.7])]
TRUE_U = [np.array([0.85, 0.1, 0.05]), np.array([0.7, 0.3]), np.array([0.9, 0.06, 0.03, 0.01])]


def _comparisons() -> list[Comparison]:
    """Stand-in comparisons with the level counts of TRUE_M (only their shape is used)."""
    return [
        Comparison(f"c{index}", "first_name", tuple(Exact("first_name") for _ in m[1:]))
        for index, m in enumerate(TRUE_M)
    ]


def _sample(
    pairs: int, seed: int, prior: float = TRUE_PRIOR, null_rate: float = 0.1
) -> npt.NDArray[np.int8]:
    """Comparison vectors drawn from the model with known parameters."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(pairs) < prior
    gamma = np.empty((pairs, len(TRUE_M)), dtype=np.int8)
    for column, (m, u) in enumerate(zip(TRUE_M, TRUE_U, strict=True)):
        gamma[is_match, column] = rng.choice(len(m), size=is_match.sum(), p=m)
        gamma[~is_match, column] = rng.choice(len(u), size=(~is_match).sum(), p=u)
    gamma[rng.random(gamma.shape) < null_rate] = NULL_LEVEL
    return gamma


def test_em_recovers_m_u_and_the_prior_from_unlabelled_vectors() -> None:
    gamma = _sample(60_000, seed=1)
    comparisons = _comparisons()
    start_u = level_frequencies(gamma, [c.level_count for c in comparisons])
    fitted = fit_em(gamma, comparisons, u=start_u, prior=0.3)
    assert fitted.converged
    assert fitted.model.prior == pytest.approx(TRUE_PRIOR, abs=0.01)
    for column in range(len(TRUE_M)):
        np.testing.assert_allclose(fitted.model.m[column], TRUE_M[column], atol=0.02)
        np.testing.assert_allclose(fitted.model.u[column], TRUE_U[column], atol=0.02)


def test_em_with_u_held_fits_only_m_and_the_prior() -> None:
    gamma = _sample(40_000, seed=2)
    comparisons = _comparisons()
    fitted = fit_em(gamma, comparisons, u=TRUE_U, prior=0.5, fix_u=True)
    for column in range(len(TRUE_M)):
        np.testing.assert_array_equal(fitted.model.u[column], TRUE_U[column])
        np.testing.assert_allclose(fitted.model.m[column], TRUE_M[column], atol=0.03)
    assert fitted.model.prior == pytest.approx(TRUE_PRIOR, abs=0.015)


def test_background_pairs_count_with_their_weight() -> None:
    """Half the vectors given once and the rest as a tenth weighted ten times fit alike."""
    gamma = _sample(40_000, seed=3)
    comparisons = _comparisons()
    start_u = level_frequencies(gamma, [c.level_count for c in comparisons])
    whole = fit_em(gamma, comparisons, u=start_u, prior=0.3)
    rest = gamma[20_000:]
    rows = rest[::10]
    weighted = fit_em(
        gamma[:20_000], comparisons, u=start_u, prior=0.3, background=rows, background_weight=10.0
    )
    assert weighted.model.prior == pytest.approx(whole.model.prior, abs=0.01)
    for column in range(len(TRUE_M)):
        np.testing.assert_allclose(weighted.model.m[column], whole.model.m[column], atol=0.03)


def _model() -> MatchModel:
    return MatchModel(
        names=("a", "b"),
        labels=(("different", "exact"), ("different", "close", "exact")),
        m=(np.array([0.1, 0.9]), np.array([0.1, 0.2, 0.7])),
        u=(np.array([0.9, 0.1]), np.array([0.8, 0.15, 0.05])),
        prior=0.01,
    )


def test_match_weights_are_log2_of_m_over_u() -> None:
    model = _model()
    np.testing.assert_allclose(model.level_weights(0), np.log2([0.1 / 0.9, 0.9 / 0.1]))


def test_a_missing_value_contributes_no_weight() -> None:
    weights = _model().field_weights(np.array([[1, NULL_LEVEL], [NULL_LEVEL, 2]], dtype=np.int8))
    assert weights[0, 1] == 0.0
    assert weights[1, 0] == 0.0
    assert weights[1, 1] == pytest.approx(np.log2(0.7 / 0.05))


def test_probability_combines_the_weight_with_the_prior() -> None:
    model = _model()
    weight = np.array([0.0, np.log2(99.0)])
    probability = model.probability(weight)
    assert probability[0] == pytest.approx(0.01)
    assert probability[1] == pytest.approx(0.5)


def test_a_model_rejects_a_prior_outside_zero_and_one() -> None:
    with pytest.raises(ValueError, match="prior"):
        MatchModel(names=(), labels=(), m=(), u=(), prior=1.0)


def test_a_model_rejects_m_and_u_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        MatchModel(
            names=("a",),
            labels=(("x", "y"),),
            m=(np.array([0.5, 0.5]),),
            u=(np.ones(3),),
            prior=0.1,
        )


def test_em_needs_vectors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fit_em(np.empty((0, 3), dtype=np.int8), _comparisons(), u=TRUE_U)
