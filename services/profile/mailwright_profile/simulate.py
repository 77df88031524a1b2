"""Events as a client would send them: builders, and a generator of realistic streams.

The builders make `mailwright.common.v1.Event`s stamped as ingest stamps them (workspace,
message id, timestamps, family). `event_stream` makes a shop's traffic: visitors browse
anonymously, some sign up or log in (identify), view products, add them to carts, order,
and receive and open emails — the mix the benchmark and the tests feed the service.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import common_pb2, event_pb2

__all__ = ["Clock", "alias", "event_stream", "identify", "page", "track"]

_FAMILY: dict[int, str] = {
    event_pb2.EVENT_TYPE_TRACK: "track",
    event_pb2.EVENT_TYPE_IDENTIFY: "identify",
    event_pb2.EVENT_TYPE_PAGE: "page",
    event_pb2.EVENT_TYPE_ALIAS: "alias",
}


class Clock:
    """A clock that moves only when told: `clock()` is now, `advance(days=1)` moves it."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _struct(values: Mapping[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if values:
        struct.update(dict(values))
    return struct


def _event(
    kind: int,
    *,
    workspace: str,
    at: datetime | None,
    message_id: str | None,
    user_id: str,
    anonymous_id: str,
    source: str,
    identities: Mapping[str, str] | None,
    context: Mapping[str, str] | None,
    profile_id: str = "",
) -> event_pb2.Event:
    moment = at or datetime.now(UTC)
    event = event_pb2.Event(
        workspace=workspace,
        message_id=message_id or str(uuid.uuid4()),
        type=kind,  # type: ignore[arg-type]
        user_id=user_id,
        anonymous_id=anonymous_id,
        source=source,
        timestamp=_stamp(moment),
        received_at=_stamp(moment),
        original_timestamp=_stamp(moment),
        family=_FAMILY.get(kind, "track"),
        profile_id=profile_id,
        identities=[common_pb2.Identity(type=k, value=v) for k, v in (identities or {}).items()],
    )
    for key, value in (context or {}).items():
        if key == "device_id":
            event.context.device.id = value
        elif key == "url":
            event.context.page.url = value
        else:
            setattr(event.context, key, value)
    return event


def track(
    name: str,
    *,
    workspace: str = "acme",
    at: datetime | None = None,
    message_id: str | None = None,
    user_id: str = "",
    anonymous_id: str = "",
    properties: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    source: str = "http",
    identities: Mapping[str, str] | None = None,
    context: Mapping[str, str] | None = None,
    profile_id: str = "",
) -> event_pb2.Event:
    event = _event(
        event_pb2.EVENT_TYPE_TRACK,
        workspace=workspace,
        at=at,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        source=source,
        identities=identities,
        context=context,
        profile_id=profile_id,
    )
    event.event = name
    event.properties.CopyFrom(_struct(properties))
    if traits:
        event.traits.CopyFrom(_struct(traits))
    if name.startswith("Email ") or name == "Unsubscribed":
        event.family = "email"
    elif name in ("Order Completed", "Product Added"):
        event.family = "commerce"
    return event


def identify(
    *,
    workspace: str = "acme",
    at: datetime | None = None,
    message_id: str | None = None,
    user_id: str = "",
    anonymous_id: str = "",
    traits: Mapping[str, Any] | None = None,
    source: str = "http",
    identities: Mapping[str, str] | None = None,
    context: Mapping[str, str] | None = None,
) -> event_pb2.Event:
    event = _event(
        event_pb2.EVENT_TYPE_IDENTIFY,
        workspace=workspace,
        at=at,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        source=source,
        identities=identities,
        context=context,
    )
    event.traits.CopyFrom(_struct(traits))
    return event


def page(
    name: str = "",
    *,
    category: str = "",
    workspace: str = "acme",
    at: datetime | None = None,
    message_id: str | None = None,
    user_id: str = "",
    anonymous_id: str = "",
    source: str = "browser",
    context: Mapping[str, str] | None = None,
) -> event_pb2.Event:
    event = _event(
        event_pb2.EVENT_TYPE_PAGE,
        workspace=workspace,
        at=at,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        source=source,
        identities=None,
        context=context,
    )
    event.name = name
    event.category = category
    return event


def alias(
    *,
    user_id: str,
    previous_id: str,
    workspace: str = "acme",
    at: datetime | None = None,
    message_id: str | None = None,
    source: str = "http",
) -> event_pb2.Event:
    event = _event(
        event_pb2.EVENT_TYPE_ALIAS,
        workspace=workspace,
        at=at,
        message_id=message_id,
        user_id=user_id,
        anonymous_id="",
        source=source,
        identities=None,
        context=None,
    )
    event.previous_id = previous_id
    return event


_CATEGORIES = ("shoes", "bags", "coats", "hats", "shirts", "jeans")
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Donald")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Allen", "Knuth")


def event_stream(
    count: int,
    *,
    people: int = 1000,
    workspace: str = "acme",
    seed: int = 0,
    start: datetime | None = None,
    days: int = 60,
) -> Iterator[event_pb2.Event]:
    """`count` events of `people` shoppers over `days` days, in time order.

    How active people are follows a Zipf-like law (exponent 0.6): the busiest of 1,000
    people sends about 2 % of the events.

    About two in three people sign up at some point (an identify with traits, stitching
    their anonymous browsing); events are 45 % product views, 20 % pages, 8 % cart adds,
    3 % orders, 12 % email sends, opens (a third of them machine opens) and clicks, and
    identifies for the rest.
    """
    rng = random.Random(seed)
    begin = start or datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(days=days) / max(count, 1)
    known: dict[int, bool] = {}
    sends: dict[int, list[str]] = {}
    # Some people are far more active than others (Zipf-like, exponent 0.6).
    weights = list(accumulate(1.0 / (rank + 1) ** 0.6 for rank in range(people)))
    for index in range(count):
        person = rng.choices(range(people), cum_weights=weights)[0]
        at = begin + step * index
        anonymous = f"anon-{person:07d}"
        user = f"user-{person:07d}" if known.get(person) else ""
        roll = rng.random()
        product = f"sku-{rng.randrange(500):04d}"
        category = _CATEGORIES[int(product[4:]) % len(_CATEGORIES)]
        context = {"timezone": "Europe/Paris", "locale": "fr-FR"} if person % 3 == 0 else None
        if roll < 0.45:
            yield track(
                "Product Viewed",
                workspace=workspace,
                at=at,
                user_id=user,
                anonymous_id=anonymous,
                properties={"product_id": product, "category": category, "price": "19.90"},
                context=context,
            )
        elif roll < 0.65:
            yield page(
                "Home",
                category=category,
                workspace=workspace,
                at=at,
                user_id=user,
                anonymous_id=anonymous,
            )
        elif roll < 0.73:
            yield track(
                "Product Added",
                workspace=workspace,
                at=at,
                user_id=user,
                anonymous_id=anonymous,
                properties={"product_id": product, "quantity": 1},
            )
        elif roll < 0.76:
            yield track(
                "Order Completed",
                workspace=workspace,
                at=at,
                user_id=user,
                anonymous_id=anonymous,
                properties={
                    "order_id": f"o-{index}",
                    "revenue": f"{rng.randrange(1000, 30000) / 100:.2f}",
                    "currency": "EUR",
                },
            )
        elif roll < 0.88 and known.get(person):
            held = sends.setdefault(person, [])
            if not held or rng.random() < 0.4:
                held.append(f"send-{index}")
                yield track(
                    "Email Sent",
                    workspace=workspace,
                    at=at,
                    user_id=user,
                    source="delivery",
                    properties={"send_id": held[-1]},
                )
            else:
                name = "Email Opened" if rng.random() < 0.7 else "Email Clicked"
                yield track(
                    name,
                    workspace=workspace,
                    at=at,
                    user_id=user,
                    source="delivery",
                    properties={"send_id": rng.choice(held), "machine": rng.random() < 0.33},
                )
        else:
            known[person] = known.get(person, False) or rng.random() < 0.7
            user = f"user-{person:07d}" if known[person] else ""
            yield identify(
                workspace=workspace,
                at=at,
                user_id=user,
                anonymous_id=anonymous,
                traits={
                    "email": f"person{person}@example.com",
                    "first_name": _FIRST[person % len(_FIRST)],
                    "last_name": _LAST[(person // 8) % len(_LAST)],
                    "plan": rng.choice(["free", "pro"]),
                },
            )
