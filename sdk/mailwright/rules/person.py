"""What an evaluator knows about one person: traits, events, emails, other memberships."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


def _aware(name: str, value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class Event:
    """One tracked event of the person: its name, when it happened, its properties."""

    name: str
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        _aware("timestamp", self.timestamp)


@dataclass(frozen=True)
class EmailSend:
    """One email sent to the person and what they did with it.

    ``opens`` are human opens; ``machine_opens`` (privacy proxies and scanners fetching the
    pixel) are kept for the record but never count as opens. ``send_id`` breaks ties between
    sends at the same instant (the larger id counts as the more recent).
    """

    send_id: str
    sent_at: datetime
    opens: tuple[datetime, ...] = ()
    clicks: tuple[datetime, ...] = ()
    machine_opens: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        _aware("sent_at", self.sent_at)
        for name in ("opens", "clicks", "machine_opens"):
            for i, value in enumerate(getattr(self, name)):
                _aware(f"{name}[{i}]", value)


@dataclass(frozen=True)
class Person:
    """A person's data as one evaluator sees it.

    ``traits`` are the current trait values (profile, computed and predictive alike);
    ``events`` the full event history, in any order; ``emails`` the email history;
    ``segments`` the ids of the other segments the person is currently a member of.
    """

    traits: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    events: tuple[Event, ...] = ()
    emails: tuple[EmailSend, ...] = ()
    segments: frozenset[str] = frozenset()

    def as_of(self, now: datetime) -> Person:
        """The same person with everything stamped after ``now`` left out."""
        _aware("now", now)
        sends = tuple(
            EmailSend(
                e.send_id,
                e.sent_at,
                tuple(t for t in e.opens if t <= now),
                tuple(t for t in e.clicks if t <= now),
                tuple(t for t in e.machine_opens if t <= now),
            )
            for e in self.emails
            if e.sent_at <= now
        )
        return Person(
            self.traits, tuple(e for e in self.events if e.timestamp <= now), sends, self.segments
        )
