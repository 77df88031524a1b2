"""Events as the profile service reads them: identities, traits, activity and consent.

`read_event` turns a `mailwright.common.v1.Event` (from the bus or made by the service
itself for API changes and imports) into an `IncomingEvent`: the normalised identities it
carries, the traits it writes, what it adds to the computed-trait aggregates, and the
consent it states. Nothing here touches a database.

The event names read (Segment's e-commerce and email specs):

| event | activity / consent |
|---|---|
| page or screen | page view (category: the page's `category` or `properties.category`) |
| `Product Viewed` | product view (`properties.product_id` or `sku`, `properties.category`) |
| `Product Added` | cart add |
| `Order Completed` | order (`properties.revenue`, else `total`, else `value`; `currency`) |
| `Email Sent`, `Email Delivered` | a send (`properties.send_id`, else `email_id`) |
| `Email Opened` | an open of that send; `properties.machine: true` marks a machine open |
| `Email Clicked`, `Email Link Clicked` | a click of that send |
| `Unsubscribed`, `Email Unsubscribed` | email consent: unsubscribed |
| `Email Marked as Spam`, `Email Complained` | email consent: unsubscribed (source complaint) |
| `Subscribed`, `Email Subscribed` | email consent: subscribed (pending with `double_opt_in`) |
| `Subscription Confirmed`, `Double Opt-in Confirmed` | email consent: subscribed |
| `Consent Updated` | what `UpdateConsent` stated |

Traits `email_consent` (`subscribed`, `unsubscribed`, `pending`), `email_subscribed`
(boolean) and `unsubscribed` (boolean) state email consent too.

Segment's reserved traits (its Identify spec, which analytics.js and the other Segment
and RudderStack libraries follow) are read as the standard trait keys too, so that a
profile fed by them has the names, birth date and address that identity resolution,
phone numbers and templates read: `firstName` → `first_name`, `lastName` → `last_name`,
`birthday` → `birth_date` (the date of an ISO time), and the `address` object's `street`,
`city`, `state`, `postalCode` and `country` → `address_line1`, `city`, `region`,
`postal_code`, `country`. The event's own traits are kept as sent, and a standard key the
event states itself wins.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from mailwright.common.v1 import event_pb2
from mailwright.names import WORKSPACE_ID
from mailwright.structs import python_value, struct_to_dict
from mailwright.taxonomy import SEND_ID_PROPERTIES
from mailwright_profile.computed.aggregates import (
    CART_ADD,
    EMAIL_CLICK,
    EMAIL_OPEN,
    EMAIL_SENT,
    ORDER,
    OTHER,
    PAGE,
    PRODUCT_VIEW,
    Activity,
)
from mailwright_profile.consent import ConsentStatement
from mailwright_profile.identity import Identity, IdentityError, normalize_identity
from mailwright_profile.normalizers import normalize_country
from mailwright_profile.traits import check_trait

__all__ = [
    "CONSENT_EVENT",
    "IncomingEvent",
    "PoisonEvent",
    "decode_event",
    "read_event",
]

log = logging.getLogger(__name__)

CONSENT_EVENT = "Consent Updated"
MAX_MESSAGE_ID = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IDENTIFYING = ("user_id", "email", "phone")
_EMAIL_KINDS = frozenset((EMAIL_SENT, EMAIL_OPEN, EMAIL_CLICK))

_ACTIVITY_BY_NAME = {
    "Product Viewed": PRODUCT_VIEW,
    "Product Added": CART_ADD,
    "Order Completed": ORDER,
    "Email Sent": EMAIL_SENT,
    "Email Delivered": EMAIL_SENT,
    "Email Opened": EMAIL_OPEN,
    "Email Clicked": EMAIL_CLICK,
    "Email Link Clicked": EMAIL_CLICK,
}
_UNSUBSCRIBE = {"Unsubscribed", "Email Unsubscribed"}
_COMPLAINT = {"Email Marked as Spam", "Email Complained"}
_SUBSCRIBE = {"Subscribed", "Email Subscribed"}
_CONFIRM = {"Subscription Confirmed", "Double Opt-in Confirmed"}
# Track events whose properties state a consent (the others' properties are not read).
_CONSENT_TRAITS = frozenset(("email_consent", "email_subscribed", "unsubscribed"))
_CONSENT_NAMES = frozenset(_UNSUBSCRIBE | _COMPLAINT | _SUBSCRIBE | _CONFIRM | {CONSENT_EVENT})
# Segment's reserved traits and the standard keys they state (see the module docstring).
_SEGMENT_TRAITS = {"firstName": "first_name", "lastName": "last_name", "birthday": "birth_date"}
_SEGMENT_ADDRESS = {
    "street": "address_line1",
    "city": "city",
    "state": "region",
    "postalCode": "postal_code",
    "country": "country",
}
_SEGMENT_KEYS = frozenset((*_SEGMENT_TRAITS, "address"))
# Workspaces already found valid (a process sees a handful; the bound keeps a flood of
# made-up ones from growing it).
_WORKSPACES: set[str] = set()
_MAX_WORKSPACES = 4096
_ISO_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].*)?$")


class PoisonEvent(ValueError):
    """An event that can never be applied (undecodable, no workspace, no id)."""


@dataclass(slots=True)
class IncomingEvent:
    """One event, read for applying (see the module docstring). Never changed once read;
    not a frozen dataclass only because building one costs several µs more, per event."""

    workspace: str
    message_id: str
    type: int
    name: str
    timestamp: datetime
    source: str
    identities: tuple[Identity, ...]
    previous_id: str
    profile_hint: str
    traits: Mapping[str, Any]
    activity: Activity
    consents: tuple[ConsentStatement, ...]
    proto: event_pb2.Event
    payload: bytes


def _field(fields: Mapping[str, struct_pb2.Value], *names: str) -> Any:
    """The first of `names` with a value other than null and "" in a Struct's `fields`
    (taken once by the caller: each `struct.fields` makes a new view of the map)."""
    for name in names:
        item = fields.get(name)
        if item is not None:
            found = python_value(item)
            if found is not None and found != "":
                return found
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:255]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _money(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _currency(value: Any) -> str | None:
    text = _text(value)
    if text and len(text) == 3 and text.isalpha():
        return text.upper()
    return None


_SKIP = object()  # a reserved trait's value that states nothing


def _standard_value(key: str, value: Any) -> Any:
    """A reserved trait's value as its standard key holds it; `_SKIP` when it states
    nothing (null stays null: it removes the trait)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a postal code sent as a number
    if not isinstance(value, str) or not value.strip():
        return _SKIP
    value = value.strip()
    if key == "birth_date":
        day = _ISO_DAY.match(value)
        return day.group(1) if day else value
    return value


def _with_standard_traits(traits: dict[str, Any]) -> None:
    """Add the standard keys Segment's reserved traits state (see the module docstring),
    unless the event states them itself."""
    stated: dict[str, Any] = {}
    for key, standard in _SEGMENT_TRAITS.items():
        if key in traits:
            stated[standard] = _standard_value(standard, traits[key])
    address = traits.get("address")
    if isinstance(address, dict):
        for key, standard in _SEGMENT_ADDRESS.items():
            if key in address:
                stated[standard] = _standard_value(standard, address[key])
    for standard, value in stated.items():
        if value is not _SKIP and standard not in traits:
            traits[standard] = value


def decode_event(raw: bytes) -> event_pb2.Event:
    try:
        return event_pb2.Event.FromString(raw)
    except Exception as error:  # protobuf raises DecodeError and others
        raise PoisonEvent(f"undecodable event ({type(error).__name__})") from error


def _identities(
    event: event_pb2.Event, traits: Mapping[str, Any]
) -> tuple[tuple[Identity, ...], bool]:
    """The event's normalised identities, in order and without repeats, and whether one of
    them identifies a person (`Activity.identified`)."""
    email, phone, country = traits.get("email"), traits.get("phone"), traits.get("country")
    found, identified, skipped = _identities_of(
        event.user_id,
        event.anonymous_id,
        event.previous_id,
        event.context.device.id,
        tuple((i.type, i.value) for i in event.identities) if len(event.identities) else (),
        email if isinstance(email, str) else None,
        phone if isinstance(phone, str) else None,
        country if isinstance(country, str) else None,
    )
    for kind, reason in skipped:
        log.info("event %s: identity %s skipped: %s", event.message_id, kind, reason)
    return found, identified


@functools.lru_cache(maxsize=65_536)
def _identities_of(
    user_id: str,
    anonymous_id: str,
    previous_id: str,
    device_id: str,
    listed: tuple[tuple[str, str], ...],
    email: str | None,
    phone: str | None,
    country: str | None,
) -> tuple[tuple[Identity, ...], bool, tuple[tuple[str, str], ...]]:
    """`_identities` of an event's raw ids, remembered (a person's events carry the same
    ids again and again): the identities, whether one identifies, and the (kind, reason)
    of each id skipped."""
    region = normalize_country(country) if country is not None else None
    raw: list[tuple[str, str | None]] = [
        ("user_id", user_id),
        ("anonymous_id", anonymous_id),
        ("anonymous_id", previous_id),
        ("device_id", device_id),
        *listed,
        ("email", email),
        ("phone", phone),
    ]
    found: dict[Identity, None] = {}
    skipped: list[tuple[str, str]] = []
    for kind, value in raw:
        if not value:
            continue
        normal = _normalized(kind, value, region)
        if isinstance(normal, Identity):
            found[normal] = None
        else:
            skipped.append((kind, normal))
    identified = any(i.type in _IDENTIFYING or ":" in i.type for i in found)
    return tuple(found), identified, tuple(skipped)


@functools.lru_cache(maxsize=65_536)
def _normalized(kind: str, value: str, region: str | None) -> Identity | str:
    """`normalize_identity`, remembered (one value comes with many different sets of
    ids): the identity, or why it is none."""
    try:
        return normalize_identity(kind, value, region)
    except IdentityError as error:
        return error.message


def _moment(stamp: timestamp_pb2.Timestamp) -> datetime:
    """A Timestamp as an aware UTC datetime (as `ToDatetime(tzinfo=UTC)`, without its
    general time-zone handling)."""
    moment = datetime.fromtimestamp(stamp.seconds, UTC)
    nanos = stamp.nanos
    return moment.replace(microsecond=nanos // 1000) if nanos else moment


def _activity(event: event_pb2.Event, identified: bool, when: datetime) -> Activity:
    props = event.properties.fields
    kind = OTHER
    if event.type in (event_pb2.EVENT_TYPE_PAGE, event_pb2.EVENT_TYPE_SCREEN):
        kind = PAGE
    elif event.type == event_pb2.EVENT_TYPE_TRACK:
        kind = _ACTIVITY_BY_NAME.get(event.event, OTHER)
    category = _text(event.category) if kind == PAGE else None
    context = event.context
    return Activity(
        time=when,
        kind=kind,
        product=_text(_field(props, "product_id", "sku", "id")) if kind == PRODUCT_VIEW else None,
        category=category or _text(_field(props, "category")),
        revenue=_money(_field(props, "revenue", "total", "value")) if kind == ORDER else None,
        currency=_currency(_field(props, "currency")) if kind == ORDER else None,
        # a send id counts only in email activity (aggregates), where it is read
        send_id=_text(_field(props, *SEND_ID_PROPERTIES)) if kind in _EMAIL_KINDS else None,
        # (read for email events only, where it marks a machine open or click)
        machine=_field(props, "machine") is True if kind in _EMAIL_KINDS else False,
        timezone=context.timezone or None,
        locale=context.locale or None,
        identified=identified,
    )


def _proof(event: event_pb2.Event, extra: Mapping[str, Any]) -> dict[str, str]:
    proof = {
        "ip": event.context.ip,
        "user_agent": event.context.user_agent,
        "form": _text(extra.get("form")) or event.context.page.url,
        "message": _text(extra.get("send_id")) or event.message_id,
        "text": _text(extra.get("consent_text")) or "",
    }
    return {k: v[:1000] for k, v in proof.items() if v}


def _consents(
    event: event_pb2.Event, traits: Mapping[str, Any], when: datetime
) -> list[ConsentStatement]:
    track = event.type == event_pb2.EVENT_TYPE_TRACK
    if not (track and event.event in _CONSENT_NAMES) and _CONSENT_TRAITS.isdisjoint(traits):
        return []  # most events: neither a consent event nor a consent trait
    statements: list[ConsentStatement] = []
    props = struct_to_dict(event.properties) if track and event.event in _CONSENT_NAMES else {}
    source = event.source or "unknown"

    def state(status: str, how: str, extra: Mapping[str, Any]) -> None:
        statements.append(
            ConsentStatement(
                "email", status, how[:64], when, event.message_id, _proof(event, extra)
            )
        )

    name = event.event if event.type == event_pb2.EVENT_TYPE_TRACK else ""
    method = _text(props.get("method")) or ""
    if name in _UNSUBSCRIBE:
        state("unsubscribed", method or "unsubscribe_link", props)
    elif name in _COMPLAINT:
        state("unsubscribed", "complaint", props)
    elif name in _SUBSCRIBE:
        state(
            "pending" if props.get("double_opt_in") is True else "subscribed",
            method or source,
            props,
        )
    elif name in _CONFIRM:
        state("subscribed", method or "double_opt_in", props)
    elif name == CONSENT_EVENT and props.get("channel") == "email":
        status = props.get("status")
        if isinstance(status, str) and status in ("subscribed", "unsubscribed", "pending"):
            proof = {k: v for k, v in props.items() if k in ("form", "consent_text")}
            statement = ConsentStatement(
                "email",
                status,
                (_text(props.get("source")) or source)[:64],
                when,
                event.message_id,
                {
                    **_proof(event, proof),
                    **{k: str(v)[:1000] for k, v in (props.get("proof") or {}).items() if v},
                },
            )
            statements.append(statement)
    status_trait = traits.get("email_consent")
    if isinstance(status_trait, str) and status_trait in ("subscribed", "unsubscribed", "pending"):
        state(status_trait, source, traits)
    elif isinstance(traits.get("email_subscribed"), bool):
        state("subscribed" if traits["email_subscribed"] else "unsubscribed", source, traits)
    elif traits.get("unsubscribed") is True:
        state("unsubscribed", source, traits)
    return statements


def read_event(event: event_pb2.Event, raw: bytes | None = None) -> IncomingEvent:
    """Read an event for applying; PoisonEvent when it can never be applied.

    `raw` is the event as serialised on the bus (kept as is in the history)."""
    workspace, message_id = event.workspace, event.message_id
    if workspace not in _WORKSPACES:  # (a handful of them: checked once each)
        if not WORKSPACE_ID.match(workspace):
            raise PoisonEvent("event has no valid workspace")
        if len(_WORKSPACES) < _MAX_WORKSPACES:
            _WORKSPACES.add(workspace)
    if not message_id or len(message_id) > MAX_MESSAGE_ID:
        raise PoisonEvent("event has no valid message_id")
    if event.HasField("timestamp"):
        when = _moment(event.timestamp)
    elif event.HasField("received_at"):
        when = _moment(event.received_at)
    else:
        raise PoisonEvent("event has neither timestamp nor received_at")
    traits: dict[str, Any] = {}
    # (most events carry no traits: HasField costs a tenth of reading an empty Struct)
    for key, value in (struct_to_dict(event.traits) if event.HasField("traits") else {}).items():
        problem = check_trait(key, value)
        if problem is None:
            traits[key] = value
        else:
            log.info("event %s: a trait was skipped: %s", message_id, problem)
    if traits and not _SEGMENT_KEYS.isdisjoint(traits):
        _with_standard_traits(traits)
    identities, identified = _identities(event, traits)
    kind, name = event.type, event.event
    if (kind == event_pb2.EVENT_TYPE_TRACK and name in _CONSENT_NAMES) or (
        traits and not _CONSENT_TRAITS.isdisjoint(traits)
    ):
        consents = tuple(_consents(event, traits, when))
    else:
        consents = ()  # most events: neither a consent event nor a consent trait
    return IncomingEvent(
        workspace=workspace,
        message_id=message_id,
        type=kind,
        name=(name or event.name)[:255],
        timestamp=when,
        source=(event.source or "unknown")[:64],
        identities=identities,
        previous_id=event.previous_id,
        profile_hint=event.profile_id,
        traits=traits,
        activity=_activity(event, identified, when),
        consents=consents,
        proto=event,
        payload=raw if raw is not None else event.SerializeToString(),
    )


def stored_activity(event: event_pb2.Event, when: datetime) -> Activity:
    """What a stored event (already applied, at `when`) adds to the aggregates, read
    without the identities, traits and consent of `read_event` (the predictive models
    read whole histories this way); `identified` is not derived."""
    return _activity(event, False, when)
