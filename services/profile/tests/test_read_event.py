"""Reading an event for applying: its identities, whether it identifies, its time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from mailwright_profile.events import read_event
from mailwright_profile.identity import Identity
from mailwright_profile.simulate import identify, page, track


def test_identities_come_normalised_in_order_without_repeats() -> None:
    event = identify(
        user_id="u1",
        anonymous_id="a1",
        traits={"email": " Ann@Example.COM ", "phone": "020 7946 0018", "country": "GB"},
        identities={"shopify:customer": "42", "anonymous_id": "a1"},
        context={"device_id": "d1"},
    )
    read = read_event(event)
    assert read.identities == (
        Identity("user_id", "u1"),
        Identity("anonymous_id", "a1"),
        Identity("device_id", "d1"),
        Identity("shopify:customer", "42"),
        Identity("email", "ann@example.com"),
        Identity("phone", "+442079460018"),  # the country trait sets the phone's region
    )
    assert read.activity.identified


@pytest.mark.parametrize(
    ("kind", "value", "identified"),
    [("user_id", "u1", True), ("shopify:customer", "7", True), ("anonymous_id", "a1", False)],
)
def test_an_event_identifies_by_a_user_id_email_phone_or_connector_id(
    kind: str, value: str, identified: bool
) -> None:
    event = track("Product Viewed", identities={kind: value})
    assert read_event(event).activity.identified is identified


def test_a_skipped_identity_is_logged_for_every_event_that_carries_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The reading of a set of ids is remembered; the log still names each event.
    caplog.set_level(logging.INFO, logger="mailwright_profile.events")
    for message_id in ("m1", "m2"):
        read = read_event(
            track(
                "Product Viewed",
                anonymous_id="a9",
                message_id=message_id,
                traits={"email": "not an address"},
            )
        )
        assert read.identities == (Identity("anonymous_id", "a9"),)
    skipped = [r.getMessage() for r in caplog.records if "identity email skipped" in r.getMessage()]
    assert [text.split(":")[0] for text in skipped] == ["event m1", "event m2"]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2025, 6, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC) + timedelta(microseconds=1),
    ],
)
def test_the_event_time_keeps_its_microseconds(moment: datetime) -> None:
    read = read_event(page("Home", anonymous_id="a1", at=moment))
    assert read.timestamp == moment
    assert read.timestamp.tzinfo is UTC
    assert read.activity.time == moment


def test_segments_reserved_traits_are_read_as_the_standard_keys_too() -> None:
    """An identify as analytics.js sends it (Segment's Identify spec): names in camel
    case, the birthday as an ISO time, the address as an object with a numeric postal
    code; the phone has no country code, which the address's country supplies."""
    traits = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "birthday": "1815-12-10T00:00:00.000Z",
        "phone": "(415) 555-0123",
        "address": {
            "street": "1 Market St",
            "city": "San Francisco",
            "state": "CA",
            "postalCode": 94105,
            "country": "US",
        },
    }
    read = read_event(identify(user_id="u1", traits=traits))
    assert read.traits == {
        **traits,  # kept as sent
        "first_name": "Ada",
        "last_name": "Lovelace",
        "birth_date": "1815-12-10",
        "address_line1": "1 Market St",
        "city": "San Francisco",
        "region": "CA",
        "postal_code": "94105",
        "country": "US",
    }
    assert Identity("phone", "+14155550123") in read.identities


def test_a_standard_key_the_event_states_wins_over_a_reserved_one() -> None:
    read = read_event(
        identify(
            user_id="u1",
            traits={"firstName": "Ada", "first_name": "Augusta", "lastName": None, "birthday": ""},
        )
    )
    assert read.traits["first_name"] == "Augusta"
    assert read.traits["last_name"] is None  # null removes it, as it removes lastName
    assert "birth_date" not in read.traits  # an empty birthday states nothing


def test_an_email_event_of_segments_email_spec_names_its_send_by_email_id() -> None:
    """An email provider's source (Segment's Email spec) sends `email_id`, not `send_id`:
    it still names the send, so its opens count for engagement."""
    delivered = read_event(track("Email Delivered", user_id="u1", properties={"email_id": "e1"}))
    opened = read_event(track("Email Opened", user_id="u1", properties={"email_id": "e1"}))
    ours = read_event(
        track("Email Opened", user_id="u1", properties={"email_id": "e1", "send_id": "s1"})
    )
    assert (delivered.activity.send_id, opened.activity.send_id) == ("e1", "e1")
    assert ours.activity.send_id == "s1"
