"""Plugins enrich accepted events before they are published; one that fails costs only the
event it failed on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.plugins import get_plugins, hookimpl

from .conftest import PARENT, StartIngest


class GeoPlugin:
    @hookimpl
    def mailwright_enrich_event(self, event: event_pb2.Event) -> None:
        if event.event == "Boom":
            raise KeyError("geo")
        if event.event == "Hijack":
            event.message_id = "stolen"
        event.properties.update({"geo_country": "FR"})


@pytest.fixture
def geo() -> Iterator[None]:
    plugins = get_plugins()
    plugin = GeoPlugin()
    name = f"geo-test-{uuid.uuid4().hex[:8]}"
    plugins.register(plugin, name)
    try:
        yield
    finally:
        plugins.manager.unregister(plugin, name=name)


def track(name: str, message_id: str) -> event_pb2.Event:
    return event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK, event=name, user_id="u1", message_id=message_id
    )


async def test_enrichment_is_published_and_a_failing_plugin_rejects_only_its_event(
    geo: None, start_ingest: StartIngest
) -> None:
    ingest = await start_ingest()
    reply = await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(
            parent=PARENT,
            events=[track("Signed In", "a"), track("Boom", "b"), track("Hijack", "c")],
        )
    )
    assert [r.status for r in reply.results] == [
        ingest_pb2.EVENT_STATUS_ACCEPTED,
        ingest_pb2.EVENT_STATUS_REJECTED,
        ingest_pb2.EVENT_STATUS_REJECTED,
    ]
    assert "plugin failed" in reply.results[1].violations[0].description
    assert "changed its workspace, message_id" in reply.results[2].violations[0].description
    (published,) = await ingest.tap.quiet()
    assert published.properties["geo_country"] == "FR"
