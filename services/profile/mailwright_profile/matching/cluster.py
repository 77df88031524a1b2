"""Clusters of records that are one person, and the evidence for every merge.

Links (a shared user id, a shared normalised email, a probabilistic match) are applied in
order to a union-find forest. A link that joins two clusters is a merge and is kept with
its evidence; the merges form a spanning forest, so the path between any two records of
one profile is the chain of merges that explains why they are one. A link that would put
two different user ids in one profile is refused and kept as well.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Clustering", "FieldEvidence", "IdentityGraph", "Link", "profile_id"]


@dataclass(frozen=True)
class FieldEvidence:
    """How one comparison saw a pair: its level, the weight it added, the two values."""

    comparison: str
    level: int
    label: str
    weight: float
    left_value: str | None
    right_value: str | None


@dataclass(frozen=True)
class Link:
    """A reason to believe two records are one person.

    `reason` is ``user_id`` or ``email`` for deterministic links (probability 1) and
    ``match`` for the probabilistic model, whose per-comparison evidence is in `evidence`.
    """

    left: str
    right: str
    reason: str
    probability: float
    match_weight: float = float("inf")
    evidence: tuple[FieldEvidence, ...] = ()


def profile_id(record_ids: Sequence[str]) -> str:
    """A profile id that depends only on the smallest record id of the cluster."""
    anchor = min(record_ids)
    return "prof_" + hashlib.sha256(anchor.encode("utf-8")).hexdigest()[:20]


class IdentityGraph:
    """A union-find forest over records that refuses to join two different user ids, or
    two different anchors (records that stand for profiles already resolved)."""

    def __init__(
        self,
        record_ids: Sequence[str],
        user_ids: Sequence[str | None],
        anchors: Sequence[str | None] | None = None,
    ) -> None:
        if len(record_ids) != len(user_ids):
            raise ValueError("record_ids and user_ids differ in length")
        if anchors is not None and len(anchors) != len(record_ids):
            raise ValueError("record_ids and anchors differ in length")
        self.record_ids = tuple(record_ids)
        self._parent = list(range(len(record_ids)))
        self._size = [1] * len(record_ids)
        # the one user id and the one anchor a cluster holds, kept at its root
        self._user_id: list[str | None] = list(user_ids)
        self._anchor: list[str | None] = list(anchors) if anchors else [None] * len(record_ids)
        self.merges: list[Link] = []
        self.refused: list[Link] = []

    def find(self, row: int) -> int:
        parent = self._parent
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    def same(self, a: int, b: int) -> bool:
        return self.find(a) == self.find(b)

    def conflict(self, a: int, b: int) -> bool:
        """Whether joining the clusters of a and b would join two different user ids or
        two different anchors."""
        root_a, root_b = self.find(a), self.find(b)
        for held in (self._user_id, self._anchor):
            first, second = held[root_a], held[root_b]
            if first is not None and second is not None and first != second:
                return True
        return False

    def anchor(self, row: int) -> str | None:
        """The anchor of a record's cluster, if any."""
        return self._anchor[self.find(row)]

    def join(self, a: int, b: int, link: Link) -> bool:
        """Apply a link between rows a and b; True if it merged two clusters."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        if self.conflict(root_a, root_b):
            self.refused.append(link)
            return False
        if self._size[root_a] < self._size[root_b]:
            root_a, root_b = root_b, root_a
        self._parent[root_b] = root_a
        self._size[root_a] += self._size[root_b]
        self._user_id[root_a] = self._user_id[root_a] or self._user_id[root_b]
        self._anchor[root_a] = self._anchor[root_a] or self._anchor[root_b]
        self.merges.append(link)
        return True

    def clustering(self) -> Clustering:
        groups: dict[int, list[str]] = {}
        for row, record_id in enumerate(self.record_ids):
            groups.setdefault(self.find(row), []).append(record_id)
        clusters = tuple(sorted(tuple(sorted(group)) for group in groups.values()))
        return Clustering(clusters=clusters, merges=tuple(self.merges), refused=tuple(self.refused))


@dataclass(frozen=True)
class Clustering:
    """Records grouped into profiles, with the merges that grouped them."""

    clusters: tuple[tuple[str, ...], ...]
    merges: tuple[Link, ...]
    refused: tuple[Link, ...] = ()
    _profile_of: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        profile_of: dict[str, str] = {}
        for cluster in self.clusters:
            pid = profile_id(cluster)
            for record_id in cluster:
                profile_of[record_id] = pid
        object.__setattr__(self, "_profile_of", profile_of)

    def profile_of(self, record_id: str) -> str:
        """The profile id of a record."""
        try:
            return self._profile_of[record_id]
        except KeyError:
            raise KeyError(f"unknown record_id {record_id!r}") from None

    def profile_ids(self) -> dict[str, str]:
        """Every record id → its profile id."""
        return dict(self._profile_of)

    def explain(self, first: str, second: str) -> tuple[Link, ...] | None:
        """The chain of merges that joins two records, or None if they are not one profile.

        Each link in the chain shares a record with the next; a record with itself is
        explained by an empty chain.
        """
        if self.profile_of(first) != self.profile_of(second):
            return None
        if first == second:
            return ()
        neighbours: dict[str, list[tuple[str, Link]]] = {}
        for link in self.merges:
            neighbours.setdefault(link.left, []).append((link.right, link))
            neighbours.setdefault(link.right, []).append((link.left, link))
        came_from: dict[str, tuple[str, Link] | None] = {first: None}
        queue = deque([first])
        while queue:
            record = queue.popleft()
            if record == second:
                break
            for other, link in neighbours.get(record, ()):
                if other not in came_from:
                    came_from[other] = (record, link)
                    queue.append(other)
        chain: list[Link] = []
        step = came_from.get(second)
        while step is not None:
            previous, link = step
            chain.append(link)
            step = came_from[previous]
        return tuple(reversed(chain))
