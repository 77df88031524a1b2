"""Checking and normalising one incoming event before it goes on the bus.

`prepare` takes a protobuf `Event` as a client sent it and either names every wrong field
or leaves the event as it will be published: server fields stamped (workspace, message
id, received time, source), times corrected for clock skew and kept within the
workspace's window, identities, traits and context normalised, properties checked against
the taxonomy, tags, weight, family and the unplanned mark set. It never touches the
network; the intake (`intake.py`) deduplicates and publishes.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from mailwright.common.v1 import event_pb2
from mailwright.errors import FieldViolation
from mailwright.normalize import (
    normalize_country,
    normalize_email,
    normalize_phone,
    region_of_locale,
)
from mailwright.taxonomy import MAX_EVENT_NAME_CHARS
from mailwright_ingest.clock import stamp_times
from mailwright_ingest.policy import Policy, Unplanned
from mailwright_ingest.properties import check_properties
from mailwright_ingest.taxonomy import Taxonomy
from mailwright_ingest.values import (
    Budget,
    Limits,
    python_to_struct,
    struct_to_python,
    update_struct,
)

EVENT_TYPE_NAMES: dict[int, str] = {
    event_pb2.EVENT_TYPE_TRACK: "track",
    event_pb2.EVENT_TYPE_IDENTIFY: "identify",
    event_pb2.EVENT_TYPE_PAGE: "page",
    event_pb2.EVENT_TYPE_SCREEN: "screen",
    event_pb2.EVENT_TYPE_ALIAS: "alias",
}
FIXED_FAMILIES: dict[int, str] = {
    event_pb2.EVENT_TYPE_IDENTIFY: "identify",
    event_pb2.EVENT_TYPE_PAGE: "page",
    event_pb2.EVENT_TYPE_SCREEN: "page",
    event_pb2.EVENT_TYPE_ALIAS: "alias",
}
PAGE_DEFINITION = "Page Viewed"

MAX_ID_CHARS = 255
MAX_IDENTITIES = 20
MAX_IDENTITY_VALUE_CHARS = 320
MAX_USER_AGENT_CHARS = 1024
UNKNOWN_ZONE = "Etc/Unknown"  # CLDR's name for a zone that could not be determined
_IDENTITY_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Rules:
    """What one event may be: the policy's time window and the size limits."""

    policy: Policy
    taxonomy: Taxonomy
    limits: Limits
    max_event_bytes: int


def topic_of(event: event_pb2.Event) -> str:
    """The bus topic of a prepared event: `events.<family>`."""
    return f"events.{event.family}"


def partition_key(event: event_pb2.Event) -> str:
    """One person's events share a key, so they keep their order on the bus. An event
    that names a profile (a tracked open or click) is keyed as delivery keys its events
    for that profile; one that names nobody by the send it belongs to."""
    who = event.user_id or event.anonymous_id or event.profile_id
    if not who:
        send = event.properties.fields.get("send_id")
        who = f"send:{send.string_value}" if send is not None else f"msg:{event.message_id}"
    return f"{event.workspace}:{who}"


def prepare(
    event: event_pb2.Event,
    workspace: str,
    rules: Rules,
    *,
    source: str,
    now: datetime,
    prefix: str = "event",
    trusted: bool = False,
    backfill: bool = False,
) -> list[FieldViolation]:
    """Check and normalise `event` in place; return every problem (empty: publishable).

    `trusted` events are made by ingest itself (tracking edge): they are published even
    when the workspace rejects unplanned events, since nobody could resend them, and
    they keep the `profile_id` a verified tracking token named. Anyone else's
    `profile_id` is cleared: a client names people by its own ids, never by ours.
    `backfill` events are imported history: accepted up to `MAX_PAST` old and marked.
    """
    problems: list[FieldViolation] = []
    _check_envelope(event, prefix, problems, trusted)
    event.workspace = workspace
    if not trusted:
        event.profile_id = ""
    event.backfill = backfill
    if event.source:
        if not _SOURCE.match(event.source):
            problems.append(
                FieldViolation(f"{prefix}.source", "must be lower-case letters, digits, . _ -")
            )
    else:
        event.source = source
    if not event.message_id:
        event.message_id = str(uuid.uuid4())
    stamp_times(event, rules.policy, now, prefix, problems)
    budget = Budget(rules.limits)
    region = _check_context(event, prefix, budget, problems)
    region = _check_traits(event, prefix, budget, region, problems) or region
    _check_identities(event, prefix, region, problems)
    _apply_taxonomy(event, rules, prefix, budget, region, trusted, problems)
    problems.extend(budget.problems)
    if not problems and event.ByteSize() > rules.max_event_bytes:
        problems.append(
            FieldViolation(prefix, f"larger than {rules.max_event_bytes} bytes once encoded")
        )
    return problems


# -- ids and names ------------------------------------------------------------------------


def _check_envelope(
    event: event_pb2.Event, prefix: str, problems: list[FieldViolation], trusted: bool
) -> None:
    kind = event.type
    if kind not in EVENT_TYPE_NAMES:
        problems.append(
            FieldViolation(f"{prefix}.type", "must be track, identify, page, screen or alias")
        )
    for name in ("message_id", "user_id", "anonymous_id", "previous_id"):
        value: str = getattr(event, name)
        if not value:
            continue
        if len(value) > MAX_ID_CHARS:
            problems.append(FieldViolation(f"{prefix}.{name}", f"longer than {MAX_ID_CHARS}"))
        elif not value.strip() or _CONTROL.search(value):
            problems.append(
                FieldViolation(f"{prefix}.{name}", "must not be blank or hold control characters")
            )
    # Ingest's own events (an open pixel) know the send, not the person: delivery does.
    if not event.user_id and not event.anonymous_id and not trusted:
        problems.append(
            FieldViolation(f"{prefix}.user_id", "either user_id or anonymous_id is required")
        )
    if kind == event_pb2.EVENT_TYPE_TRACK:
        name = event.event.strip()
        if not name:
            problems.append(FieldViolation(f"{prefix}.event", "a track event needs an event name"))
        elif len(name) > MAX_EVENT_NAME_CHARS or _CONTROL.search(name):
            problems.append(
                FieldViolation(
                    f"{prefix}.event",
                    f"must be at most {MAX_EVENT_NAME_CHARS} characters, without control"
                    " characters",
                )
            )
        event.event = name
    for name in ("name", "category"):
        value = getattr(event, name)
        if len(value) > MAX_EVENT_NAME_CHARS:
            problems.append(
                FieldViolation(f"{prefix}.{name}", f"longer than {MAX_EVENT_NAME_CHARS}")
            )
    if kind == event_pb2.EVENT_TYPE_ALIAS:
        if not event.user_id:
            problems.append(FieldViolation(f"{prefix}.user_id", "an alias needs user_id"))
        if not event.previous_id:
            problems.append(FieldViolation(f"{prefix}.previous_id", "an alias needs previous_id"))


# -- context, traits, identities ------------------------------------------------------------


@lru_cache(maxsize=8192)
def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_context(
    event: event_pb2.Event, prefix: str, budget: Budget, problems: list[FieldViolation]
) -> str | None:
    if not event.HasField("context"):
        return None
    context = event.context
    where = f"{prefix}.context"
    if context.ip and not _is_ip(context.ip):
        problems.append(FieldViolation(f"{where}.ip", f"{context.ip[:60]!r} is not an IP"))
    if len(context.user_agent) > MAX_USER_AGENT_CHARS:
        problems.append(
            FieldViolation(f"{where}.user_agent", f"longer than {MAX_USER_AGENT_CHARS}")
        )
    if context.timezone == UNKNOWN_ZONE:
        # What Chrome and Safari (and so analytics.js) report when the system's zone is
        # not one they know: no zone, rather than a wrong one.
        context.timezone = ""
    if context.timezone and context.timezone not in _time_zones():
        problems.append(
            FieldViolation(f"{where}.timezone", "must be an IANA zone such as Europe/Paris")
        )
    region = None
    if context.locale.endswith(("-", "_")):
        # analytics-kotlin writes `language + "-" + country`: `en-` on a device whose
        # locale names no country (`-` when it names neither) means the language alone.
        context.locale = context.locale.rstrip("-_")
    if context.locale:
        if not _LOCALE.match(context.locale):
            problems.append(FieldViolation(f"{where}.locale", "must be a tag such as en-GB"))
        else:
            region = region_of_locale(context.locale)
    limit = budget.limits.max_string_chars
    for group in ("page", "campaign", "device", "library"):
        # A group smaller than the limit cannot hold a string longer than it.
        if context.HasField(group) and getattr(context, group).ByteSize() > limit:
            for descriptor, value in getattr(context, group).ListFields():
                if isinstance(value, str) and len(value) > limit:
                    problems.append(
                        FieldViolation(f"{where}.{group}.{descriptor.name}", f"longer than {limit}")
                    )
    if context.HasField("extra"):
        struct_to_python(context.extra, f"{where}.extra", budget)
    return region


def _check_traits(
    event: event_pb2.Event,
    prefix: str,
    budget: Budget,
    region: str | None,
    problems: list[FieldViolation],
) -> str | None:
    """Normalise the well-known traits (email, phone, country); return the person's
    country, the best region to read their phone number in."""
    if not event.HasField("traits"):
        return None
    where = f"{prefix}.traits"
    traits = struct_to_python(event.traits, where, budget)
    changed = False
    country = None
    for holder, path in ((traits, where), (traits.get("address"), f"{where}.address")):
        if isinstance(holder, dict) and holder.get("country") is not None:
            raw = holder["country"]
            country = normalize_country(raw) if isinstance(raw, str) else None
            if country is None:
                problems.append(FieldViolation(f"{path}.country", "is not a country we know"))
            elif country != raw:
                holder["country"] = country
                changed = True
    email = traits.get("email")
    if email is not None:
        normal = normalize_email(email, provider_rules=False) if isinstance(email, str) else None
        if normal is None:
            problems.append(FieldViolation(f"{where}.email", "is not an email address"))
        elif normal != email:
            traits["email"] = normal
            changed = True
    phone = traits.get("phone")
    if phone is not None:
        normal = (
            normalize_phone(str(phone), country or region)
            if isinstance(phone, str | int) and not isinstance(phone, bool)
            else None
        )
        if normal is None:
            problems.append(
                FieldViolation(
                    f"{where}.phone", "is not a phone number (write it with + and the country code)"
                )
            )
        elif normal != phone:
            traits["phone"] = normal
            changed = True
    if changed and not problems:
        python_to_struct(traits, event.traits)
    return country


def _check_identities(
    event: event_pb2.Event, prefix: str, region: str | None, problems: list[FieldViolation]
) -> None:
    identities = event.identities
    if len(identities) > MAX_IDENTITIES:
        problems.append(FieldViolation(f"{prefix}.identities", f"more than {MAX_IDENTITIES}"))
        return
    for index, identity in enumerate(identities):
        where = f"{prefix}.identities[{index}]"
        if not _IDENTITY_TYPE.match(identity.type):
            problems.append(
                FieldViolation(f"{where}.type", "must be lower-case letters, digits, _ . : -")
            )
            continue
        value = identity.value.strip()
        if not value or len(value) > MAX_IDENTITY_VALUE_CHARS:
            problems.append(
                FieldViolation(f"{where}.value", f"must be 1 to {MAX_IDENTITY_VALUE_CHARS} chars")
            )
            continue
        normal: str | None = value
        if identity.type == "email":
            normal = normalize_email(value, provider_rules=False)
        elif identity.type == "phone":
            normal = normalize_phone(value, region)
        if normal is None:
            problems.append(FieldViolation(f"{where}.value", f"is not a valid {identity.type}"))
        else:
            identity.value = normal


# -- taxonomy ---------------------------------------------------------------------------


def _apply_taxonomy(
    event: event_pb2.Event,
    rules: Rules,
    prefix: str,
    budget: Budget,
    region: str | None,
    trusted: bool,
    problems: list[FieldViolation],
) -> None:
    kind = event.type
    del event.tags[:]
    event.unplanned = False
    event.weight = 0.0
    if kind == event_pb2.EVENT_TYPE_TRACK:
        name = event.event
        spec = rules.taxonomy.get(name)
        event.family = rules.taxonomy.family(name).value
        if spec is None and name:
            if rules.policy.unplanned is Unplanned.REJECT and not trusted:
                problems.append(
                    FieldViolation(
                        f"{prefix}.event",
                        f"{name[:80]!r} is not in this workspace's taxonomy, and unplanned"
                        " events are rejected",
                    )
                )
            event.unplanned = True
    else:
        event.family = FIXED_FAMILIES.get(kind, "track")
        spec = rules.taxonomy.get(PAGE_DEFINITION) if kind == event_pb2.EVENT_TYPE_PAGE else None
    if not event.HasField("properties"):
        if spec is not None:
            _missing_required(spec.properties, f"{prefix}.properties", problems)
            _set_spec_marks(event, spec.tags, spec.weight)
        return
    where = f"{prefix}.properties"
    values = struct_to_python(event.properties, where, budget)
    if spec is None:
        return
    _set_spec_marks(event, spec.tags, spec.weight)
    if budget.problems:
        return
    changed = check_properties(values, spec.properties, where, problems, _region(values, region))
    if changed is not None and not problems:
        update_struct(event.properties, values, changed)


def _set_spec_marks(event: event_pb2.Event, tags: tuple[str, ...], weight: float) -> None:
    event.tags.extend(tags)
    event.weight = weight


def _missing_required(specs: Any, where: str, problems: list[FieldViolation]) -> None:
    for spec in specs:
        if spec.required:
            problems.append(
                FieldViolation(f"{where}.{spec.name}", "is required by the event's definition")
            )


def _region(values: dict[str, Any], region: str | None) -> str | None:
    country = values.get("country")
    if isinstance(country, str):
        return normalize_country(country) or region
    return region
