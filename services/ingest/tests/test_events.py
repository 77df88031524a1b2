"""One incoming event prepared for the bus: stamped, corrected, normalised, or refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.errors import FieldViolation
from mailwright.taxonomy import default_taxonomy
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.events import Rules, partition_key, prepare, topic_of
from mailwright_ingest.policy import Policy, Unplanned
from mailwright_ingest.taxonomy import Definition, Taxonomy
from mailwright_ingest.values import Limits

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TAXONOMY = Taxonomy(Definition("x", spec, NOW) for spec in default_taxonomy().events)
POLICY = Policy.defaults(IngestSettings())
RULES = Rules(POLICY, TAXONOMY, Limits(), 32 * 1024)


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def track(name: str = "Signed In", **fields: Any) -> event_pb2.Event:
    fields.setdefault("anonymous_id", "anon-1")
    if "properties" in fields:
        fields["properties"] = struct(fields["properties"])
    return event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, event=name, **fields)


def run(event: event_pb2.Event, rules: Rules = RULES, **kwargs: Any) -> list[FieldViolation]:
    return prepare(event, "acme", rules, source="grpc", now=NOW, **kwargs)


def fields(problems: list[FieldViolation]) -> list[str]:
    return [p.field for p in problems]


def stamp(moment: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    value = Timestamp()
    value.FromDatetime(moment)
    return value


# -- server fields ------------------------------------------------------------------------


def test_the_server_stamps_workspace_message_id_times_source_and_family() -> None:
    event = track(properties={"product_id": "p1"})
    event.workspace = "someone-else"
    event.profile_id = "forged"
    assert run(event) == []
    assert event.workspace == "acme"
    assert event.profile_id == ""
    assert len(event.message_id) == 36
    assert event.received_at.ToDatetime(tzinfo=UTC) == NOW
    assert event.timestamp.ToDatetime(tzinfo=UTC) == NOW
    assert event.source == "grpc"
    assert (event.family, topic_of(event)) == ("track", "events.track")


def test_taxonomy_tags_and_weight_are_set_and_client_tags_replaced() -> None:
    event = track("Order Completed", properties={"order_id": "o1"})
    event.tags.append("vip")
    assert run(event) == []
    assert list(event.tags) == ["purchase", "repeat buyer"]
    assert event.weight == 10
    assert topic_of(event) == "events.commerce"


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("Email Link Clicked", "events.email"),
        ("Unsubscribed", "events.email"),
        ("Checkout Started", "events.commerce"),
        ("Order Shipped", "events.commerce"),
        ("Email Forwarded", "events.email"),
        ("Video Played", "events.track"),
    ],
)
def test_event_names_go_to_their_familys_topic(name: str, topic: str) -> None:
    event = track(name, properties={"send_id": "s1", "url": "https://x.example"})
    run(event)
    assert topic_of(event) == topic


@pytest.mark.parametrize(
    ("kind", "topic"),
    [
        (event_pb2.EVENT_TYPE_IDENTIFY, "events.identify"),
        (event_pb2.EVENT_TYPE_PAGE, "events.page"),
        (event_pb2.EVENT_TYPE_SCREEN, "events.page"),
    ],
)
def test_other_types_have_their_own_topic(kind: int, topic: str) -> None:
    event = event_pb2.Event(type=kind, user_id="u1")  # type: ignore[arg-type]
    assert run(event) == []
    assert topic_of(event) == topic


def test_one_persons_events_share_a_partition_key() -> None:
    first, second = track(user_id="u1"), track("Order Completed", user_id="u1")
    run(first)
    run(second)
    assert partition_key(first) == partition_key(second) == "acme:u1"


# -- ids ------------------------------------------------------------------------------------


def test_an_event_naming_nobody_is_refused() -> None:
    event = event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, event="Signed In")
    assert fields(run(event)) == ["event.user_id"]


def test_an_unknown_type_is_refused() -> None:
    assert fields(run(event_pb2.Event(user_id="u"))) == ["event.type"]


def test_a_track_without_name_and_an_alias_without_ids_are_refused() -> None:
    assert fields(run(track(""))) == ["event.event"]
    alias = event_pb2.Event(type=event_pb2.EVENT_TYPE_ALIAS, anonymous_id="a")
    assert fields(run(alias)) == ["event.user_id", "event.previous_id"]


@pytest.mark.parametrize("bad", ["x" * 256, "   ", "a\x00b"])
def test_ids_must_be_short_printable_and_not_blank(bad: str) -> None:
    assert "event.user_id" in fields(run(track(user_id=bad)))


def test_the_prefix_names_the_event_in_a_batch() -> None:
    assert fields(run(track(""), prefix="events[7]")) == ["events[7].event"]


# -- times ----------------------------------------------------------------------------------


def test_client_clock_skew_is_corrected_with_sent_at() -> None:
    client_fast = timedelta(hours=3)
    happened = NOW - timedelta(seconds=10)
    event = track(timestamp=stamp(happened + client_fast), sent_at=stamp(NOW + client_fast))
    assert run(event) == []
    assert event.timestamp.ToDatetime(tzinfo=UTC) == happened
    assert event.original_timestamp.ToDatetime(tzinfo=UTC) == happened + client_fast


def test_without_sent_at_the_client_timestamp_is_kept() -> None:
    event = track(timestamp=stamp(NOW - timedelta(days=2)))
    assert run(event) == []
    assert event.timestamp.ToDatetime(tzinfo=UTC) == NOW - timedelta(days=2)


def test_events_older_than_the_policy_allows_are_refused_with_the_window() -> None:
    problems = run(track(timestamp=stamp(NOW - timedelta(days=31))))
    assert fields(problems) == ["event.timestamp"]
    assert "31 days in the past" in problems[0].description
    assert "30 days" in problems[0].description


def test_epoch_seconds_sent_as_milliseconds_get_a_hint() -> None:
    problems = run(track(timestamp=stamp(datetime(1970, 1, 21, tzinfo=UTC))))
    assert "epoch milliseconds" in problems[0].description


def test_far_future_events_are_refused() -> None:
    problems = run(track(timestamp=stamp(NOW + timedelta(days=3))))
    assert fields(problems) == ["event.timestamp"]
    assert "future" in problems[0].description


# -- identities, traits, context -------------------------------------------------------


def test_traits_email_phone_and_country_are_normalised() -> None:
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_IDENTIFY,
        user_id="u1",
        traits=struct({"email": " Ada@Example.COM ", "phone": "07700 900123", "country": "UK"}),
    )
    assert run(event) == []
    assert dict(event.traits) == {
        "email": "ada@example.com",
        "phone": "+447700900123",
        "country": "GB",
    }


@pytest.mark.parametrize(
    ("traits", "field"),
    [
        ({"email": "not-an-address"}, "event.traits.email"),
        ({"phone": "12"}, "event.traits.phone"),
        ({"address": {"country": "Narnia"}}, "event.traits.address.country"),
    ],
)
def test_bad_traits_are_named(traits: dict[str, Any], field: str) -> None:
    event = event_pb2.Event(type=event_pb2.EVENT_TYPE_IDENTIFY, user_id="u", traits=struct(traits))
    assert fields(run(event)) == [field]


def test_identities_are_normalised_by_type_and_phones_read_in_the_locale() -> None:
    event = track(
        identities=[
            common_pb2.Identity(type="email", value="BOB@Example.com"),
            common_pb2.Identity(type="phone", value="0151 23456789"),
            common_pb2.Identity(type="shopify_customer_id", value="123"),
        ],
        context=event_pb2.Context(locale="de-DE"),
    )
    assert run(event) == []
    assert [(i.type, i.value) for i in event.identities] == [
        ("email", "bob@example.com"),
        ("phone", "+4915123456789"),
        ("shopify_customer_id", "123"),
    ]


def test_bad_identities_and_context_are_named() -> None:
    event = track(
        identities=[common_pb2.Identity(type="Email Address", value="x")],
        context=event_pb2.Context(ip="999.1.1.1", timezone="Mars/Olympus", locale="english!"),
    )
    assert fields(run(event)) == [
        "event.context.ip",
        "event.context.timezone",
        "event.context.locale",
        "event.identities[0].type",
    ]


@pytest.mark.parametrize(("sent", "kept"), [("en-", "en"), ("pt_", "pt"), ("-", "")])
def test_a_locale_with_an_empty_region_is_its_language(sent: str, kept: str) -> None:
    event = track(context=event_pb2.Context(locale=sent))
    assert run(event) == []
    assert event.context.locale == kept


def test_cldr_s_unknown_zone_is_no_zone() -> None:
    event = track(context=event_pb2.Context(timezone="Etc/Unknown"))
    assert run(event) == []
    assert event.context.timezone == ""


# -- taxonomy and unplanned events -------------------------------------------------------


def test_unplanned_events_are_accepted_and_marked_by_default() -> None:
    event = track("Video Played")
    assert run(event) == []
    assert event.unplanned


def test_unplanned_events_are_refused_when_the_policy_says_so() -> None:
    rules = replace(RULES, policy=replace(POLICY, unplanned=Unplanned.REJECT))
    problems = run(track("Video Played"), rules)
    assert fields(problems) == ["event.event"]
    assert "not in this workspace's taxonomy" in problems[0].description


def test_events_made_by_ingest_itself_pass_a_rejecting_policy() -> None:
    rules = replace(RULES, policy=replace(POLICY, unplanned=Unplanned.REJECT))
    event = track("Video Played")
    assert run(event, rules, trusted=True) == []
    assert event.unplanned


def test_required_properties_are_required_even_without_any_properties() -> None:
    assert fields(run(track("Order Completed"))) == ["event.properties.order_id"]


def test_page_calls_are_checked_against_page_viewed() -> None:
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_PAGE, anonymous_id="a", properties=struct({"scroll_depth": "x"})
    )
    assert fields(run(event)) == ["event.properties.scroll_depth"]


# -- limits -------------------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_properties_nested_too_deep_are_refused() -> None:
    assert run(track(properties={"product_id": "p", **nested(6)})) == []
    problems = run(track(properties={"product_id": "p", **nested(7)}))
    assert problems
    assert "nested deeper than 6 levels" in problems[0].description


def test_too_many_properties_are_refused() -> None:
    many = {f"p{i}": i for i in range(501)}
    problems = run(track(properties={"product_id": "p", **many}))
    assert fields(problems) == ["event.properties"]
    assert "more than 500" in problems[0].description


def test_a_huge_string_is_refused_by_its_field() -> None:
    problems = run(track(properties={"product_id": "p", "blob": "x" * 9000}))
    assert fields(problems) == ["event.properties.blob"]


def test_an_event_larger_than_the_limit_once_encoded_is_refused() -> None:
    props = {"product_id": "p", **{f"k{i}": "v" * 100 for i in range(400)}}
    problems = run(track(properties=props))
    assert fields(problems) == ["event"]
    assert "32768 bytes" in problems[0].description


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_any_json_properties_are_accepted_or_refused_by_name_never_raised(value: Any) -> None:
    event = track("Video Played", properties={"v": value})
    for problem in run(event):
        assert problem.field.startswith("event")
