"""The event history the classifiers and send-time model read, as one columnar log.

The profile service maps its event names onto a few kinds (a purchase, an email open or
click, a product view, anything else) and hands over `Event`s; `EventLog` stores them as
parallel numpy arrays sorted by time, which is what makes point-in-time feature building
a handful of vectorised masks. Times are timezone-aware on the way in and seconds since
the Unix epoch (UTC) inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
EventKind = Literal["purchase", "open", "click", "view", "other"]
KINDS: tuple[EventKind, ...] = ("purchase", "open", "click", "view", "other")
KIND_CODE: dict[str, int] = {kind: code for code, kind in enumerate(KINDS)}
PURCHASE, OPEN, CLICK, VIEW, OTHER = range(len(KINDS))
DAY = 86_400.0


@dataclass(frozen=True)
class Event:
    """One thing a person did. `value` is the revenue of a purchase; `machine` marks an
    open made by a mail client's privacy proxy rather than a person."""

    person_id: str
    kind: EventKind
    at: datetime
    value: float = 0.0
    machine: bool = False


def timestamp(moment: datetime, field: str = "at") -> float:
    """Seconds since the epoch of an aware datetime; naive ones are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DataError(field, f"{moment.isoformat()} has no timezone")
    return moment.timestamp()


@dataclass(frozen=True, eq=False)
class EventLog:
    """Parallel arrays, one entry per event, sorted by time (stable)."""

    people: tuple[str, ...]  # person index -> person id
    person: IntArray
    kind: IntArray
    time: FloatArray
    value: FloatArray
    machine: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.time.size)

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> EventLog:
        index: dict[str, int] = {}
        person: list[int] = []
        kind: list[int] = []
        time: list[float] = []
        value: list[float] = []
        machine: list[bool] = []
        for number, event in enumerate(events, start=1):
            code = KIND_CODE.get(event.kind)
            if code is None:
                raise DataError("kind", f"event {number}: unknown kind {event.kind!r}")
            if not np.isfinite(event.value):
                raise DataError("value", f"event {number}: value is not finite")
            person.append(index.setdefault(event.person_id, len(index)))
            kind.append(code)
            time.append(timestamp(event.at))
            value.append(float(event.value))
            machine.append(bool(event.machine))
        return cls.from_arrays(tuple(index), person, kind, time, value, machine)

    @classmethod
    def from_arrays(
        cls,
        people: Sequence[str],
        person: npt.ArrayLike,
        kind: npt.ArrayLike,
        time: npt.ArrayLike,
        value: npt.ArrayLike | None = None,
        machine: npt.ArrayLike | None = None,
    ) -> EventLog:
        p = np.asarray(person, dtype=np.int64)
        k = np.asarray(kind, dtype=np.int64)
        t = np.asarray(time, dtype=np.float64)
        v = np.zeros(t.size) if value is None else np.asarray(value, dtype=np.float64)
        m = np.zeros(t.size, bool) if machine is None else np.asarray(machine, dtype=bool)
        if not (p.shape == k.shape == t.shape == v.shape == m.shape) or p.ndim != 1:
            raise DataError("events", "person, kind, time, value and machine differ in length")
        if p.size and (p.min() < 0 or p.max() >= len(people)):
            raise DataError("person", "an event refers to a person index out of range")
        if k.size and (k.min() < 0 or k.max() >= len(KINDS)):
            raise DataError("kind", "an event has an unknown kind code")
        if not np.all(np.isfinite(t)):
            raise DataError("time", "an event time is not finite")
        order = np.argsort(t, kind="stable")
        return cls(tuple(people), p[order], k[order], t[order], v[order], m[order])

    def before(self, cutoff: datetime) -> EventLog:
        """The events strictly before `cutoff` (the same people index)."""
        end = int(np.searchsorted(self.time, timestamp(cutoff, "cutoff"), side="left"))
        return EventLog(
            self.people,
            self.person[:end],
            self.kind[:end],
            self.time[:end],
            self.value[:end],
            self.machine[:end],
        )

    def last_time(self) -> datetime:
        if not len(self):
            raise DataError("events", "the event log is empty")
        return datetime.fromtimestamp(float(self.time[-1]), tz=UTC)
