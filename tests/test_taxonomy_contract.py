"""What delivery publishes on `events.email` is what the default taxonomy declares.

Segment rules and journeys are checked against the taxonomy, so a property delivery
publishes but the taxonomy does not declare cannot be used in a rule; one of the wrong
type would be refused by ingest if it came in from outside. Every shape of send (campaign
with a variant, journey step, transactional send to a bare address) is published through
the same constructors delivery's handover uses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format

from mailwright.common.v1 import event_pb2
from mailwright.errors import FieldViolation
from mailwright.taxonomy import default_taxonomy
from mailwright_delivery.events import TOPIC, bounced_event, sent_event
from mailwright_delivery.model import Category, SendState
from mailwright_delivery.records import OutboxMessage, SendRecord
from mailwright_ingest.properties import check_properties

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def send(**fields: Any) -> SendRecord:
    values: dict[str, Any] = {
        "id": "s1",
        "workspace": "acme",
        "idempotency_key": "k1",
        "category": Category.MARKETING,
        "priority": 10,
        "state": SendState.SENDING,
        "reason": "",
        "due_at": NOW,
        "created_at": NOW,
        "profile_id": "p1",
        "campaign_id": "",
        "journey_id": "",
        "journey_version": 0,
        "step_id": "",
        "enrolment_id": "",
        "email_hash": "h",
        "address": "",
        "template": "news",
        "variant": "",
        "subject_variant": "",
        "preheader_variant": "",
        "holdout": False,
        "awaiting_winner": False,
        "hold": False,
        "segment": "",
        "sender": "",
        "context": "",
        "provider": "",
        "provider_message_id": "",
        "attempts": 0,
    }
    values.update(fields)
    return SendRecord(**values)


SHAPES = {
    "campaign": send(campaign_id="spring", variant="b"),
    "journey": send(journey_id="welcome", journey_version=2, step_id="email-1"),
    "transactional": send(category=Category.TRANSACTIONAL, profile_id="", address="a@b.c"),
}


def published(shape: SendRecord) -> list[OutboxMessage]:
    return [
        sent_event(shape, NOW, address="ann@example.com", provider="smtp"),
        bounced_event(shape, NOW, address="ann@example.com", reason="hard_bounce: 550 no (5.1.1)"),
    ]


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_every_event_delivery_publishes_is_declared(shape: str) -> None:
    taxonomy = default_taxonomy()
    for message in published(SHAPES[shape]):
        assert message.topic == TOPIC
        event = event_pb2.Event.FromString(message.payload)
        spec = taxonomy.event(event.event)
        assert spec is not None, f"{event.event} is not in the default taxonomy"
        assert spec.family.value == event.family
        values = json_format.MessageToDict(event.properties)
        undeclared = sorted(name for name in values if spec.property(name) is None)
        assert undeclared == [], f"{event.event} publishes undeclared {undeclared}"
        problems: list[FieldViolation] = []
        check_properties(values, spec.properties, "properties", problems)
        assert problems == [], f"{event.event}: {problems}"


def test_the_check_catches_an_undeclared_property() -> None:
    spec = default_taxonomy().event("Email Sent")
    assert spec is not None
    assert spec.property("not_a_declared_property") is None
    problems: list[FieldViolation] = []
    check_properties({"send_id": 3}, spec.properties, "properties", problems)
    assert [problem.field for problem in problems] == ["properties.send_id"]
