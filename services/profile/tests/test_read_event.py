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
