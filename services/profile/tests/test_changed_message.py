"""`profiles.changed`: each message carries the events applied, as they came, with the
profile they now belong to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailwright.common.v1 import event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright_profile.convert import _applied_events
from mailwright_profile.events import read_event
from mailwright_profile.simulate import identify, page, track
from mailwright_profile.store import CHANGED_TOPIC, ProfileStore


def test_each_event_comes_as_sent_with_its_profile_set(
    store: ProfileStore, apply: Callable[..., Any]
) -> None:
    sent = [
        identify(user_id="u1", anonymous_id="a1", message_id="i1", traits={"plan": "pro"}),
        page("Home", anonymous_id="a1", message_id="p1", context={"timezone": "Europe/Paris"}),
        track(
            "Order Completed",
            user_id="u1",
            message_id="o1",
            properties={"revenue": 12.5, "items": [{"sku": "A", "qty": 2}], "note": "😀"},
        ),
    ]
    result = apply(batch=sent)
    (outgoing,) = [o for o in result.outgoing if o.topic == CHANGED_TOPIC]
    changed = profile_pb2.ProfileChanged.FromString(outgoing.payload)
    expected = []
    for event in sent:
        copy = event_pb2.Event()
        copy.CopyFrom(event)
        copy.profile_id = changed.profile_id
        expected.append(copy)
    assert list(changed.events) == expected
    assert changed.traits.fields["plan"].string_value == "pro"


def test_a_profile_the_event_named_is_replaced_by_the_one_it_belongs_to() -> None:
    # An event addressed to a profile since merged away belongs to the kept one now.
    event = track("Product Viewed", anonymous_id="a1", profile_id="absorbed")
    wire = _applied_events([read_event(event)], "kept")
    (applied,) = profile_pb2.ProfileChanged.FromString(wire).events
    assert applied.profile_id == "kept"
    assert applied.anonymous_id == "a1"
    assert _applied_events([], "kept") == b""
