"""Consent per channel: from events and traits, latest statement wins, proof kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.profile.v1 import profile_pb2
from mailwright_profile.consent import ConsentBook, ConsentStatement
from mailwright_profile.identity import Identity
from mailwright_profile.simulate import Clock, identify, track
from mailwright_profile.store import CHANGED_TOPIC, ProfileStore

NOW = Clock().now
Apply = Callable[..., Any]


def consent_of(store: ProfileStore) -> dict[str, Any]:
    view = store.lookup("acme", Identity("user_id", "u1"))
    assert view is not None
    return dict(view.consents.get("email", {}))


def test_an_unsubscribe_event_unsubscribes_with_its_proof(
    store: ProfileStore, apply: Apply
) -> None:
    apply(identify(user_id="u1", traits={"email_subscribed": True}, at=NOW, source="form"))
    apply(
        track(
            "Unsubscribed",
            user_id="u1",
            at=NOW + timedelta(days=1),
            message_id="un-1",
            properties={"send_id": "send-9", "method": "list_unsubscribe"},
            context={"ip": "203.0.113.7", "user_agent": "Mail/1.0"},
        )
    )
    consent = consent_of(store)
    assert (consent["status"], consent["source"]) == ("unsubscribed", "list_unsubscribe")
    assert consent["proof"] == {"ip": "203.0.113.7", "user_agent": "Mail/1.0", "message": "send-9"}
    assert consent["message_id"] == "un-1"


def test_an_older_subscribe_does_not_undo_a_newer_unsubscribe(
    store: ProfileStore, apply: Apply
) -> None:
    apply(track("Unsubscribed", user_id="u1", at=NOW))
    apply(
        identify(user_id="u1", traits={"email_consent": "subscribed"}, at=NOW - timedelta(days=2))
    )
    assert consent_of(store)["status"] == "unsubscribed"


def test_double_opt_in_is_pending_until_confirmed(store: ProfileStore, apply: Apply) -> None:
    apply(
        track(
            "Subscribed",
            user_id="u1",
            at=NOW,
            properties={"double_opt_in": True, "form": "footer", "consent_text": "Yes, mail me"},
        )
    )
    pending = consent_of(store)
    assert pending["status"] == "pending"
    assert (pending["proof"]["form"], pending["proof"]["text"]) == ("footer", "Yes, mail me")
    apply(track("Subscription Confirmed", user_id="u1", at=NOW + timedelta(minutes=5)))
    assert consent_of(store)["status"] == "subscribed"


def test_a_complaint_unsubscribes(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", traits={"email_consent": "subscribed"}, at=NOW))
    apply(track("Email Marked as Spam", user_id="u1", at=NOW + timedelta(hours=1)))
    assert consent_of(store)["source"] == "complaint"


def test_consent_changes_are_announced_and_readable_as_a_computed_trait(
    store: ProfileStore, apply: Apply
) -> None:
    result = apply(identify(user_id="u1", traits={"email_subscribed": False}, at=NOW))
    (message,) = [o for o in result.outgoing if o.topic == CHANGED_TOPIC]
    changed = profile_pb2.ProfileChanged.FromString(message.payload)
    assert [c.status for c in changed.consents] == [profile_pb2.CONSENT_STATUS_UNSUBSCRIBED]
    assert changed.computed_traits["email_consent"] == "unsubscribed"


statements = st.lists(
    st.builds(
        ConsentStatement,
        channel=st.just("email"),
        status=st.sampled_from(["subscribed", "unsubscribed", "pending"]),
        source=st.sampled_from(["form", "api", "import"]),
        time=st.integers(0, 3).map(lambda h: NOW + timedelta(hours=h)),
        message_id=st.sampled_from(["m1", "m2", "m3"]),
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(items=statements, data=st.data())
def test_consent_does_not_depend_on_the_order_of_statements(
    items: list[ConsentStatement], data: st.DataObject
) -> None:
    first, second = ConsentBook(), ConsentBook()
    for item in items:
        first.record(item)
    for item in data.draw(st.permutations(items)):
        second.record(item)
    assert first.entries == second.entries


def test_on_a_tie_the_more_protective_status_wins() -> None:
    book = ConsentBook()
    book.record(ConsentStatement("email", "unsubscribed", "api", NOW, "m1"))
    book.record(ConsentStatement("email", "subscribed", "api", NOW, "m2"))
    assert book.entries["email"]["status"] == "unsubscribed"
