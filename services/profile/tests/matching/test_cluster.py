"""Clustering: merges into profiles, with the evidence and refusals kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailwright_profile.matching.cluster import Clustering, IdentityGraph, Link, profile_id


def _link(left: str, right: str) -> Link:
    return Link(left, right, "match", 0.99, 12.0)


def test_merges_are_transitive() -> None:
    graph = IdentityGraph(["a", "b", "c", "d"], [None] * 4)
    graph.join(0, 1, _link("a", "b"))
    graph.join(1, 2, _link("b", "c"))
    clustering = graph.clustering()
    assert clustering.profile_of("a") == clustering.profile_of("c")
    assert clustering.profile_of("d") != clustering.profile_of("a")
    assert clustering.clusters == (("a", "b", "c"), ("d",))


def test_a_link_inside_a_cluster_is_not_a_merge() -> None:
    graph = IdentityGraph(["a", "b", "c"], [None] * 3)
    assert graph.join(0, 1, _link("a", "b"))
    assert graph.join(1, 2, _link("b", "c"))
    assert not graph.join(0, 2, _link("a", "c"))
    assert len(graph.clustering().merges) == 2


def test_explain_gives_the_chain_of_merges_between_two_records() -> None:
    graph = IdentityGraph(["a", "b", "c", "d"], [None] * 4)
    graph.join(0, 1, _link("a", "b"))
    graph.join(2, 3, _link("c", "d"))
    graph.join(1, 2, _link("b", "c"))
    chain = graph.clustering().explain("a", "d")
    assert chain is not None
    assert [(link.left, link.right) for link in chain] == [("a", "b"), ("b", "c"), ("c", "d")]


def test_explain_of_records_in_different_profiles_is_none() -> None:
    graph = IdentityGraph(["a", "b"], [None, None])
    assert graph.clustering().explain("a", "b") is None


def test_a_record_is_explained_with_itself_by_no_merges() -> None:
    assert IdentityGraph(["a"], [None]).clustering().explain("a", "a") == ()


def test_two_different_user_ids_are_never_joined() -> None:
    graph = IdentityGraph(["a", "b", "c"], ["u1", None, "u2"])
    assert graph.join(0, 1, _link("a", "b"))
    assert not graph.join(1, 2, _link("b", "c"))
    clustering = graph.clustering()
    assert clustering.profile_of("a") != clustering.profile_of("c")
    assert [(link.left, link.right) for link in clustering.refused] == [("b", "c")]


def test_a_profile_id_depends_only_on_the_smallest_record_id() -> None:
    assert profile_id(["r2", "r1"]) == profile_id(["r1", "r9"])
    assert profile_id(["r1"]) != profile_id(["r2"])
    assert profile_id(["r1"]).startswith("prof_")


def test_profile_ids_map_every_record() -> None:
    clustering = Clustering(clusters=(("a", "b"), ("c",)), merges=())
    assert clustering.profile_ids() == {
        "a": profile_id(["a"]),
        "b": profile_id(["a"]),
        "c": profile_id(["c"]),
    }


@given(st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19)), max_size=60))
def test_clusters_are_the_connected_components_of_the_merges(edges: list[tuple[int, int]]) -> None:
    ids = [f"r{i:02d}" for i in range(20)]
    graph = IdentityGraph(ids, [None] * 20)
    for a, b in edges:
        graph.join(a, b, _link(ids[a], ids[b]))
    clustering = graph.clustering()
    assert sorted(record for cluster in clustering.clusters for record in cluster) == ids
    assert len(clustering.merges) == 20 - len(clustering.clusters)
    for a, b in edges:
        assert clustering.profile_of(ids[a]) == clustering.profile_of(ids[b])
        chain = clustering.explain(ids[a], ids[b])
        assert chain is not None
        if a != b:
            assert {chain[0].left, chain[0].right} & {ids[a]}
            assert {chain[-1].left, chain[-1].right} & {ids[b]}
