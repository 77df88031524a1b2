"""Event times: when an event happened on the server's clock, and whether it is in the
workspace's window.

The client's `timestamp` (or `original_timestamp`) is corrected for its clock's skew when
it says when it sent the event (`sent_at`), then checked against the policy's `max_past`
and `max_future`. In integer nanoseconds: this runs for every event, and is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import event_pb2
from mailwright.errors import FieldViolation
from mailwright.normalize import correct_clock_skew
from mailwright_ingest.policy import Policy

_EPOCH_SECONDS_HINT = datetime(1971, 1, 1, tzinfo=UTC)
_NS = 1_000_000_000
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z, the range of Timestamp
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS_HINT_NS = int((_EPOCH_SECONDS_HINT - _EPOCH).total_seconds()) * _NS
_received_cache: tuple[datetime, int, Timestamp] | None = None


def _received(now: datetime) -> tuple[int, Timestamp]:
    """`now` in nanoseconds and as a Timestamp, built once per call (not per event)."""
    global _received_cache
    cached = _received_cache
    if cached is not None and cached[0] is now:
        return cached[1], cached[2]
    nanos = (now - _EPOCH) // timedelta(microseconds=1) * 1000
    stamp = Timestamp()
    _set_ns(stamp, nanos)
    _received_cache = (now, nanos, stamp)
    return nanos, stamp


def _set_ns(stamp: Timestamp, nanos: int) -> None:
    stamp.seconds, stamp.nanos = divmod(nanos, _NS)


def stamp_times(
    event: event_pb2.Event,
    policy: Policy,
    now: datetime,
    prefix: str,
    problems: list[FieldViolation],
) -> None:
    """Correct the event's time for the client's clock skew and keep it in the window.

    In integer nanoseconds: the hot path of every event, and exact."""
    received, received_stamp = _received(now)
    original = _read_ns(event, "original_timestamp", prefix, problems)
    if original is None:
        original = _read_ns(event, "timestamp", prefix, problems)
    sent_at = _read_ns(event, "sent_at", prefix, problems)
    if original is None:
        happened = received
    elif sent_at is not None:
        happened = correct_clock_skew(original, sent_at, received)
    else:
        happened = original
    event.received_at.CopyFrom(received_stamp)
    if original is None:
        event.original_timestamp.CopyFrom(received_stamp)
    elif not event.HasField("original_timestamp"):
        _set_ns(event.original_timestamp, original)
    if happened < received - policy.max_past // timedelta(microseconds=1) * 1000:
        hint = ""
        if original is not None and original < _SECONDS_HINT_NS:
            hint = " (numbers are epoch milliseconds, not seconds)"
        problems.append(
            FieldViolation(
                f"{prefix}.timestamp",
                f"is {_days(received - happened)} in the past; this workspace accepts events up"
                f" to {_days(policy.max_past)} old{hint}",
            )
        )
        return
    if happened > received + policy.max_future // timedelta(microseconds=1) * 1000:
        problems.append(
            FieldViolation(
                f"{prefix}.timestamp",
                f"is {_days(happened - received)} in the future (more than"
                f" {_days(policy.max_future)} ahead of the server's clock)",
            )
        )
        return
    if happened == received:
        event.timestamp.CopyFrom(received_stamp)
    else:
        _set_ns(event.timestamp, happened)


TimeField = Literal["original_timestamp", "timestamp", "sent_at"]


def _read_ns(
    event: event_pb2.Event, name: TimeField, prefix: str, problems: list[FieldViolation]
) -> int | None:
    if not event.HasField(name):
        return None
    stamp: Timestamp = getattr(event, name)
    seconds, nanos = stamp.seconds, stamp.nanos
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos < _NS:
        problems.append(FieldViolation(f"{prefix}.{name}", "is not a valid time"))
        return None
    return seconds * _NS + nanos


def _days(span: timedelta | int) -> str:
    if isinstance(span, int):
        span = timedelta(microseconds=span // 1000)
    if span >= timedelta(days=2):
        return f"{span.days} days"
    if span >= timedelta(hours=2):
        return f"{int(span.total_seconds() // 3600)} hours"
    return f"{int(span.total_seconds() // 60)} minutes"
