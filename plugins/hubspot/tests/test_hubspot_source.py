"""The HubSpot contacts source beyond the conformance suite: the daily limit stops it,
the burst limit is waited out, searches page by key and survive edits and crowded
milliseconds, and bad configuration names its field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format

from mailwright.connectors import ConnectorConfigError, ErrorKind, ProviderError, load_config
from mailwright.testing.conformance import pull_all
from mailwright.testing.fakes import FakeServer, RecordedWaits
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.fake import FakeHubSpot
from mailwright_hubspot.source import HubSpotSource

MakeConfig = Callable[..., HubSpotConfig]


async def pull(config: HubSpotConfig, cursor: str | None = None) -> list[Any]:
    source = HubSpotSource(config)
    try:
        return await pull_all(source, "contacts", cursor)
    finally:
        await source.aclose()


def searches(server: FakeServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests_to("/crm/v3/objects/contacts/search")]


async def test_the_daily_limit_stops_the_pull_at_once_with_a_clear_error(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(30)
    hubspot.daily_limit = 3
    with pytest.raises(ProviderError) as caught:
        await pull(make_config())
    assert (caught.value.kind, caught.value.code) == (ErrorKind.RATE_LIMITED, "DAILY")
    assert "daily" in caught.value.detail
    assert len(hubspot_server.requests) == 4, "the refused request is not retried"


async def test_the_burst_limit_is_waited_out(
    fake_server: Callable[..., FakeServer], recorded_waits: RecordedWaits
) -> None:
    # Five requests per ten seconds, on a clock the recorded waits advance.
    hubspot = FakeHubSpot(ten_second_limit=5, clock=lambda: sum(recorded_waits.seconds))
    hubspot.add_contacts(60)
    server = fake_server(hubspot.app())
    values = {"access_token": hubspot.token, "base_url": server.url, "page_size": 7}
    config = load_config("hubspot", HubSpotConfig, values, environ={})
    batches = await pull(config)
    assert sum(len(b.events) for b in batches) == 60
    pages = len(batches) + 1  # and the count
    assert len(server.requests) > pages, "some requests were refused, then retried"
    assert recorded_waits.total >= 10, "ten requests at five per ten seconds take ten seconds"


async def test_contacts_become_identify_events_with_the_mapped_traits(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(1)
    [batch] = await pull(make_config())
    [event] = batch.events
    traits = json_format.MessageToDict(event.traits)
    assert traits["email"] == "contact0@example.com"
    assert (traits["first_name"], traits["last_name"]) == ("Grace0", "Hopper")
    assert traits["lifecycle_stage"] == "lead"
    assert event.anonymous_id == f"hubspot:contact:{next(iter(hubspot.contacts))}"
    assert event.source == "hubspot"


async def test_the_first_run_lists_and_the_next_searches_from_the_newest_contact(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(10)
    first = await pull(make_config())
    assert hubspot_server.requests_to("/crm/v3/objects/contacts", method="GET")
    newest = max(int(e.timestamp.ToMilliseconds()) for b in first for e in b.events)
    assert json.loads(first[-1].cursor) == {"since": newest - 10_000}
    hubspot_server.clear_requests()
    await pull(make_config(), first[-1].cursor)
    [search] = searches(hubspot_server)
    assert search["filterGroups"][0]["filters"][0] == {
        "propertyName": "lastmodifieddate",
        "operator": "GTE",
        "value": str(newest - 10_000),
    }
    assert search["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]


async def test_searches_page_by_key_so_an_edit_during_the_pull_is_not_missed(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(12)
    cursor = (await pull(make_config()))[-1].cursor
    hubspot.edit_contacts(12)
    source = HubSpotSource(make_config())
    seen: set[str] = set()
    async for batch in source.pull("contacts", cursor):
        seen |= {e.anonymous_id for e in batch.events}
        if len(seen) == 5:
            hubspot.edit_contacts(1)  # the oldest again: it moves to the end of the order
    await source.aclose()
    assert len(seen) == 12
    offsets = [s.get("after") for s in searches(hubspot_server)]
    assert set(offsets) == {None}, "pages are asked by lastmodifieddate, not by offset"


async def test_a_crowded_millisecond_is_paged_by_offset_inside_it(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(12)
    cursor = (await pull(make_config()))[-1].cursor
    crowded = "2030-01-01T00:00:00.000Z"
    for contact in hubspot.contacts.values():
        contact["properties"]["lastmodifieddate"] = crowded
    hubspot_server.clear_requests()
    batches = await pull(make_config(), cursor)
    assert len({e.anonymous_id for b in batches for e in b.events}) == 12
    # From the cursor to the crowded millisecond by key, then inside it by offset.
    assert [s.get("after") for s in searches(hubspot_server)] == [None, None, "5", "10"]


async def test_more_than_a_search_can_return_in_one_millisecond_is_an_error(
    fake_server: Callable[..., FakeServer], recorded_waits: RecordedWaits
) -> None:
    hubspot = FakeHubSpot(search_max_results=10)
    hubspot.add_contacts(30)
    server = fake_server(hubspot.app())
    values = {"access_token": hubspot.token, "base_url": server.url, "search_max_results": 10}
    config = load_config("hubspot", HubSpotConfig, {**values, "search_page_size": 5}, environ={})
    for contact in hubspot.contacts.values():
        contact["properties"]["lastmodifieddate"] = "2030-01-01T00:00:00.000Z"
    with pytest.raises(ProviderError) as caught:
        await pull(config, json.dumps({"since": 0}))
    assert caught.value.kind is ErrorKind.INVALID
    assert "same millisecond" in caught.value.detail


async def test_a_contact_that_cannot_be_read_is_reported_and_the_rest_imported(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(5)
    broken = sorted(hubspot.contacts)[2]
    hubspot.contacts[broken]["properties"]["createdate"] = "yesterday"
    batches = await pull(make_config())
    assert sum(len(b.events) for b in batches) == 4
    assert [skip for b in batches for skip in b.skipped] == [
        f"contact {broken}: createdate: not a time"
    ]


async def test_a_cursor_this_connector_did_not_write_is_refused(make_config: MakeConfig) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await pull(make_config(), '{"offset": 3}')


async def test_the_source_needs_the_access_token(make_config: MakeConfig) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        HubSpotSource(make_config(access_token=None))
    assert caught.value.field == "access_token"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"base_url": "http://api.example.com"}, "base_url"),
        ({"page_size": 101}, "page_size"),
        ({"search_page_size": 201}, "search_page_size"),
        ({"properties": {"first_name": "First Name"}}, "properties"),
        ({"properties": {"a": "city", "b": "city"}}, "properties"),
        ({"email_endpoint": "smtp"}, "email_endpoint"),
    ],
)
def test_bad_configuration_names_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("hubspot", HubSpotConfig, values, environ={})
    assert caught.value.field == field


def test_a_property_map_can_come_from_the_environment_as_json() -> None:
    config = load_config(
        "hubspot",
        HubSpotConfig,
        {},
        environ={"MAILWRIGHT_CONNECTOR_HUBSPOT_PROPERTIES": '{"plan": "hs_plan"}'},
    )
    assert config.properties == {"plan": "hs_plan"}
    assert config.read_properties == ["email", "lastmodifieddate", "createdate", "hs_plan"]
