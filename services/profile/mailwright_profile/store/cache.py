"""Profile states kept between the consumer's batches, so that a profile touched again
soon is not read and decoded again.

A state is only ever used by the transaction that holds its profile's row lock (the
batch first locks the rows and reads their `version`) and only when the row's version is
still the one the state was written with: every writer of a profile's projections bumps
`version` (the batch apply, unmerge, the computed-trait refresh when a value changed), so
a write by another process or another path of this one makes the kept state unused.
A batch takes the states out while it works on them and puts them back only after its
commit, so a failed batch leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from mailwright_profile.profile_state import ProfileState

__all__ = ["StateCache"]

DEFAULT_LIMIT = 20_000


class StateCache:
    """The most recently written profile states, at most `limit` of them."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 0:
            raise ValueError("StateCache limit must not be negative")
        self.limit = limit
        self._states: OrderedDict[tuple[str, str], ProfileState] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._states)

    def take(self, workspace: str, profile_id: str, version: int) -> ProfileState | None:
        """The kept state of a profile at `version`, removed from the cache; None when
        none is kept or it is of another version."""
        with self._lock:
            state = self._states.pop((workspace, profile_id), None)
        if state is None or state.version != version:
            self.misses += 1
            return None
        self.hits += 1
        return state

    def put(self, states: Iterable[ProfileState]) -> None:
        """Keep states as committed (stored profiles, not new ones)."""
        with self._lock:
            for state in states:
                key = (state.workspace, state.profile_id)
                self._states[key] = state
                self._states.move_to_end(key)
            while len(self._states) > self.limit:
                self._states.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
