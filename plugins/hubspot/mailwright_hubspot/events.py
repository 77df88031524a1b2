"""HubSpot contacts and webhook events as Mailwright events.

| from | event | message id |
|---|---|---|
| a contact (source) | identify, configured properties as traits | `hubspot:contact:<id>:<ms>` |
| `contact.creation` | identify (the contact's id) | `hubspot:event:<portal>:<eventId>` |
| `contact.propertyChange` of a mapped property or `email` | identify with that trait | the same |
| `contact.deletion`, `contact.privacyDeletion` | track `Contact Deleted` | the same |

`<ms>` is the contact's `lastmodifieddate` in epoch milliseconds. The generic `object.*`
subscriptions of contacts (`objectTypeId` `0-1`) are read alike. A person is
`anonymous_id = hubspot:contact:<id>` with the identities `hubspot:contact` and `email`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event

SOURCE = "hubspot"
CONTACT_IDENTITY = "hubspot:contact"
CONTACT_OBJECT_TYPE = "0-1"


class ContactError(ValueError):
    """A contact or webhook event that cannot be read; the message names the field."""


def contact_id(value: object, field: str = "id") -> str:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isdigit() or len(text) > 20:
        raise ContactError(f"{field}: not a HubSpot record id")
    return text


def parse_time(value: object, field: str) -> datetime:
    """HubSpot's times: ISO 8601 (`2019-12-07T16:50:06.678Z`) or epoch milliseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ContactError(f"{field}: not a time") from None
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise ContactError(f"{field}: not a time")


def millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _stamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _identities(record_id: str, email: str | None) -> list[Identity]:
    found = [Identity(type=CONTACT_IDENTITY, value=record_id)]
    if email:
        found.append(Identity(type="email", value=email.strip().lower()))
    return found


def _traits(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in values.items() if v not in (None, "")})
    return struct


def contact_identify(contact: Mapping[str, Any], properties: Mapping[str, str]) -> Event:
    """The identify event of a contact from the CRM API, as of its `lastmodifieddate`.

    `properties` maps trait names to HubSpot property names (the configuration)."""
    record_id = contact_id(contact.get("id"))
    values = contact.get("properties")
    if not isinstance(values, Mapping):
        raise ContactError("properties: missing")
    modified = parse_time(
        values.get("lastmodifieddate") or contact.get("updatedAt"), "lastmodifieddate"
    )
    email = values.get("email") if isinstance(values.get("email"), str) else None
    traits: dict[str, Any] = {"email": email.strip().lower() if email else None}
    for trait, prop in properties.items():
        value = values.get(prop)
        traits[trait] = value if isinstance(value, str | int | float | bool) else None
    created = values.get("createdate")
    if created:
        traits["created_at"] = parse_time(created, "createdate").isoformat()
    return Event(
        type=EVENT_TYPE_IDENTIFY,
        message_id=f"hubspot:contact:{record_id}:{millis(modified)}",
        anonymous_id=f"hubspot:contact:{record_id}",
        identities=_identities(record_id, email),
        timestamp=_stamp(modified),
        traits=_traits(traits),
        source=SOURCE,
    )


def webhook_event(item: Mapping[str, Any], properties: Mapping[str, str]) -> Event | None:
    """One event of a webhook request as an event, or None for what is not followed."""
    kind = str(item.get("subscriptionType", ""))
    resource, _, action = kind.partition(".")
    if resource == "object":
        if str(item.get("objectTypeId", "")) != CONTACT_OBJECT_TYPE:
            return None
    elif resource != "contact":
        return None
    record_id = contact_id(item.get("objectId"), "objectId")
    event_id = contact_id(item.get("eventId"), "eventId")
    portal = contact_id(item.get("portalId"), "portalId")
    occurred = parse_time(item.get("occurredAt"), "occurredAt")
    common: dict[str, Any] = {
        "message_id": f"hubspot:event:{portal}:{event_id}",
        "anonymous_id": f"hubspot:contact:{record_id}",
        "timestamp": _stamp(occurred),
        "source": SOURCE,
    }
    if action == "creation":
        return Event(type=EVENT_TYPE_IDENTIFY, identities=_identities(record_id, None), **common)
    if action == "propertyChange":
        name = str(item.get("propertyName", ""))
        value = item.get("propertyValue")
        if name == "email":
            email = value if isinstance(value, str) and value else None
            traits = {"email": email.strip().lower() if email else None}
            return Event(
                type=EVENT_TYPE_IDENTIFY,
                identities=_identities(record_id, email),
                traits=_traits(traits),
                **common,
            )
        trait = {prop: trait for trait, prop in properties.items()}.get(name)
        if trait is None:
            return None
        return Event(
            type=EVENT_TYPE_IDENTIFY,
            identities=_identities(record_id, None),
            traits=_traits({trait: value}),
            **common,
        )
    if action in ("deletion", "privacyDeletion"):
        return Event(
            type=EVENT_TYPE_TRACK,
            event="Contact Deleted",
            identities=_identities(record_id, None),
            properties=_traits({"privacy": action == "privacyDeletion", "record_id": record_id}),
            **common,
        )
    return None
