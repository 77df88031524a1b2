"""Consent per channel: its status, who set it, when, and the proof.

The latest statement by event time wins; on an exact tie the more protective status wins
(unsubscribed over pending over subscribed), then source and message id, so that the
outcome does not depend on the order statements arrive in. Statements come from
`UpdateConsent`, from `Unsubscribed` and complaint email events, and from subscription
events and traits (see `events.consent_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailwright_profile.traits import sortable_time

__all__ = ["CHANNELS", "STATUSES", "ConsentBook", "ConsentStatement"]

CHANNELS = ("email",)
STATUSES = ("subscribed", "pending", "unsubscribed")
_PROTECTION = {"subscribed": 1, "pending": 2, "unsubscribed": 3}
PROOF_KEYS = ("ip", "user_agent", "form", "message", "text")


@dataclass(frozen=True)
class ConsentStatement:
    channel: str
    status: str
    source: str
    time: datetime
    message_id: str
    proof: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown consent channel {self.channel!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown consent status {self.status!r}")


def _order(entry: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (
        str(entry["time"]),
        _PROTECTION[str(entry["status"])],
        str(entry.get("source", "")),
        str(entry.get("message_id", "")),
    )


class ConsentBook:
    """A profile's consents, channel → entry (JSON-friendly)."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.entries: dict[str, dict[str, Any]] = {
            channel: dict(entry) for channel, entry in (entries or {}).items()
        }

    def record(self, statement: ConsentStatement) -> bool:
        """Apply a statement; True when the channel's consent changed."""
        entry = {
            "status": statement.status,
            "source": statement.source,
            "time": sortable_time(statement.time),
            "message_id": statement.message_id,
            "proof": {k: v for k, v in statement.proof.items() if k in PROOF_KEYS and v},
        }
        return self._put(statement.channel, entry)

    def _put(self, channel: str, entry: dict[str, Any]) -> bool:
        held = self.entries.get(channel)
        if held is not None and _order(entry) <= _order(held):
            return False
        self.entries[channel] = entry
        return True

    def merge(self, other: ConsentBook) -> set[str]:
        """Take the other book's statements that win here; the channels that changed."""
        return {
            channel for channel, entry in other.entries.items() if self._put(channel, dict(entry))
        }

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {channel: dict(entry) for channel, entry in self.entries.items()}
