"""Which email events become engagement facts: the tracking edge's names included."""

from __future__ import annotations

from mailwright_segment.facts import EmailFact, EventFact, email_fact


def fact(name: str, **properties: object) -> EmailFact | None:
    return email_fact(EventFact("m1", name, 1_000, properties))  # type: ignore[arg-type]


def test_a_click_recorded_by_the_tracking_edge_counts_as_a_click() -> None:
    # The edge and the default taxonomy name a click "Email Link Clicked".
    found = fact("Email Link Clicked", send_id="s1", url="https://shop.example/")
    assert found == EmailFact("m1", "s1", "click", 1_000)


def test_email_clicked_is_still_read_as_a_click() -> None:
    found = fact("Email Clicked", send_id="s1")
    assert found is not None
    assert found.kind == "click"


def test_a_machine_open_is_kept_apart_and_an_event_without_send_id_is_no_fact() -> None:
    machine = fact("Email Opened", send_id="s1", machine=True)
    assert machine is not None
    assert machine.kind == "machine_open"
    assert fact("Email Link Clicked", url="https://shop.example/") is None


def test_segments_email_spec_counts_the_same_way() -> None:
    """What an email provider's source sends (Segment's Email spec): the send is an
    `Email Delivered`, and `email_id` names the email when there is no `send_id`."""
    assert fact("Email Delivered", email_id="e1") == EmailFact("m1", "e1", "sent", 1_000)
    assert fact("Email Opened", email_id="e1") == EmailFact("m1", "e1", "open", 1_000)
    assert fact("Email Link Clicked", email_id="e1", send_id="s1") == EmailFact(
        "m1", "s1", "click", 1_000
    )  # our own `send_id` first
    assert fact("Email Opened", email_id="") is None
