"""When each send is due: schedules, local time in each recipient's zone, best hour,
throttle.

A campaign's schedule gives its start (when the audience is snapshotted) and, per
recipient, the instant the send is due. Local wall-clock times become UTC through the
recipient's IANA zone: a time inside a spring-forward gap is read with the offset before
the change (so 02:30 on the day Paris skips to 03:00 is sent at 03:30 local), a time that
happens twice in autumn is its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailwright.errors import Violations
from mailwright_delivery.model import (
    Schedule,
    SendAt,
    SendAtBestTime,
    SendAtLocalTime,
    SendNow,
)

# Clocks differ a little between a client and us: "now" given as a time is not "past".
PAST_GRACE = timedelta(minutes=1)
# The zones furthest ahead of and behind UTC (Kiribati, Baker Island).
EARLIEST_OFFSET = timedelta(hours=14)
LATEST_OFFSET = timedelta(hours=-12)
MAX_BEST_TIME_WINDOW = timedelta(days=7)


def zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    """The zone called `name`, else `fallback`, else UTC (bad names never raise)."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `day at` in `tz` (gap: shifted forward; overlap: first)."""
    return datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(UTC)


def validate(schedule: Schedule, now: datetime, field: str = "schedule") -> None:
    """Refuse a schedule in the past or malformed, naming the field."""
    problems = Violations()
    if isinstance(schedule, SendAt):
        if schedule.time < now - PAST_GRACE:
            problems.add(f"{field}.send_time", "is in the past")
    elif isinstance(schedule, SendAtLocalTime):
        day = _parse_date(schedule.date)
        if day is None:
            problems.add(f"{field}.local_time.date", "must be an ISO date such as 2026-12-01")
        if not 0 <= schedule.hour <= 23:
            problems.add(f"{field}.local_time.hour", "must be between 0 and 23")
        if not 0 <= schedule.minute <= 59:
            problems.add(f"{field}.local_time.minute", "must be between 0 and 59")
        if schedule.fallback_timezone and not is_zone(schedule.fallback_timezone):
            problems.add(f"{field}.local_time.fallback_timezone", "is not an IANA time zone")
        if day is not None and not problems:
            latest = datetime.combine(day, time(schedule.hour, schedule.minute), tzinfo=UTC)
            if latest - LATEST_OFFSET < now - PAST_GRACE:
                problems.add(f"{field}.local_time", "is in the past in every time zone")
    elif isinstance(schedule, SendAtBestTime):
        if schedule.start < now - PAST_GRACE:
            problems.add(f"{field}.best_time.start_time", "is in the past")
        if not timedelta(hours=1) <= schedule.window <= MAX_BEST_TIME_WINDOW:
            problems.add(f"{field}.best_time.window", "must be between 1 hour and 7 days")
    problems.raise_if_any()


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def start_time(schedule: Schedule, now: datetime) -> datetime:
    """When the campaign starts (audience snapshot): the earliest any send can be due."""
    if isinstance(schedule, SendNow):
        return now
    if isinstance(schedule, SendAt):
        return max(schedule.time, now)
    if isinstance(schedule, SendAtLocalTime):
        day = date.fromisoformat(schedule.date)
        earliest = (
            datetime.combine(day, time(schedule.hour, schedule.minute), tzinfo=UTC)
            - EARLIEST_OFFSET
        )
        return max(earliest, now)
    return max(schedule.start, now)


def due_time(
    schedule: Schedule,
    start: datetime,
    *,
    timezone: str = "",
    best_hour: int | None = None,
) -> datetime:
    """When one recipient's send is due. Never before `start` (late zones go at once)."""
    if isinstance(schedule, SendAtLocalTime):
        tz = zone(timezone, schedule.fallback_timezone)
        at = local_to_utc(
            date.fromisoformat(schedule.date), time(schedule.hour, schedule.minute), tz
        )
        return max(at, start)
    if isinstance(schedule, SendAtBestTime):
        if best_hour is None or not 0 <= best_hour <= 23:
            return start
        return next_local_hour(start, best_hour, zone(timezone), until=start + schedule.window)
    return start


def next_local_hour(
    after: datetime, hour: int, tz: ZoneInfo, *, until: datetime | None = None
) -> datetime:
    """The first instant at or after `after` when the clock in `tz` reads `hour`:00.

    Falls back to `after` when that instant would be at or past `until`.
    """
    local = after.astimezone(tz)
    for offset in range(0, 3):
        candidate = local_to_utc(local.date() + timedelta(days=offset), time(hour), tz)
        if candidate >= after:
            if until is not None and candidate >= until:
                return after
            return candidate
    return after


def throttle_offset(index: int, per_hour: int) -> timedelta:
    """How long after the start the `index`-th send of a throttled campaign is due."""
    if per_hour <= 0:
        return timedelta(0)
    return timedelta(seconds=index * 3600 / per_hour)
