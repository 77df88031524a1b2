"""Erasure leaves nothing of the person; export gives everything (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.requests import RequestLog
from mailwright_profile.export import export_document
from mailwright_profile.identity import Identity
from mailwright_profile.simulate import Clock, identify, page, track
from mailwright_profile.store import DELETED_TOPIC, ProfileStore
from mailwright_profile.store import tables as t

NOW = Clock().now
Apply = Callable[..., Any]
# Tables that keep a record of the erasure itself, and nothing that identifies the person.
RECORD_TABLES = {"profile_erasures", "profile_erased_events"}


def _person(store: ProfileStore, apply: Apply, clock: Clock) -> str:
    apply(page("Home", anonymous_id="anon-ada-1", message_id="msg-page-1", at=NOW))
    apply(
        identify(
            user_id="user-ada-1",
            anonymous_id="anon-ada-2",
            message_id="msg-identify-1",
            at=NOW,
            traits={"email": "Ada@Example.com", "first_name": "Ada", "city": "London"},
        ),
        identify(
            user_id="user-ada-1", anonymous_id="anon-ada-1", message_id="msg-identify-2", at=NOW
        ),
        identify(
            user_id="user-ada-1",
            message_id="msg-identify-3",
            traits={"first_name": "Ada L."},
            source="crm",
        ),
        track(
            "Order Completed",
            user_id="user-ada-1",
            message_id="msg-order-1",
            properties={"revenue": "9.90"},
        ),
    )
    apply(
        identify(user_id="user-bob-2", anonymous_id="anon-ada-2", message_id="msg-identify-4")
    )  # refused: two user ids
    view = store.lookup("acme", Identity("user_id", "user-ada-1"))
    assert view is not None
    return view.profile_id


def _rows_mentioning(store: ProfileStore, needles: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    with store.db.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                text = " ".join(
                    value.decode(errors="replace")
                    if isinstance(value, bytes)
                    else json.dumps(value, default=str)
                    for value in row
                )
                if any(needle.lower() in text.lower() for needle in needles):
                    found[table.name] = found.get(table.name, 0) + 1
    return found


def test_erasure_leaves_no_row_about_the_person(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    profile_id = _person(store, apply, clock)
    view = store.get("acme", profile_id)
    assert view is not None
    merged = list(view.merged_profiles)
    erased = store.erase("acme", profile_id, clock())
    # The outbox holds the erasure notice until it is published; the publisher then
    # deletes it as it does here.
    store.delete_outbox([o.id for o in erased.outgoing])
    needles = [
        "ada@example.com",
        "user-ada-1",
        "anon-ada-1",
        "London",
        "msg-identify-1",
        "msg-order-1",
        profile_id,
        *merged,
    ]
    found = _rows_mentioning(store, needles)
    assert set(found) <= RECORD_TABLES, found
    assert store.get("acme", profile_id) is None
    assert erased.events == 5
    assert erased.identities == 4


def test_erasure_keeps_the_other_person_of_a_refused_merge(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    profile_id = _person(store, apply, clock)
    store.erase("acme", profile_id, clock())
    other = store.lookup("acme", Identity("user_id", "user-bob-2"))
    assert other is not None
    assert store.explain("acme", other.profile_id, None, None).refusals == []


def test_erasure_announces_hashed_emails(store: ProfileStore, apply: Apply, clock: Clock) -> None:
    profile_id = _person(store, apply, clock)
    erased = store.erase("acme", profile_id, clock())
    (message,) = [o for o in erased.outgoing if o.topic == DELETED_TOPIC]
    deleted = profile_pb2.ProfileDeleted.FromString(message.payload)
    assert deleted.profile_id == profile_id
    assert hashlib.sha256(b"ada@example.com").hexdigest() in deleted.email_hashes
    assert len(deleted.merged_profile_ids) == 1


def test_erasure_drops_logged_responses_that_show_the_person(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    profile_id = _person(store, apply, clock)
    log = RequestLog(store.db, t.request_log)
    key = ("acme", "UpdateConsent", "r-1")
    log._reserve(key, "digest")
    log._complete(key, profile_id.encode() + b" response")
    store.erase("acme", profile_id, clock())
    with store.db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.request_log)).scalar_one() == 0


def test_a_late_copy_of_an_erased_event_does_not_bring_the_person_back(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    profile_id = _person(store, apply, clock)
    store.erase("acme", profile_id, clock())
    late = apply(page("Home", anonymous_id="anon-ada-1", message_id="msg-page-1", at=NOW))
    assert (late.applied, late.dropped) == (0, 1)
    assert store.lookup("acme", Identity("anonymous_id", "anon-ada-1")) is None


def test_events_addressed_to_an_erased_profile_are_dropped(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    profile_id = _person(store, apply, clock)
    store.erase("acme", profile_id, clock())
    result = apply(
        track("Email Opened", anonymous_id="x", profile_id=profile_id, properties={"send_id": "s"})
    )
    assert result.dropped == 1


def test_export_holds_everything_the_profile_holds(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    profile_id = _person(store, apply, clock)
    data = store.export("acme", profile_id)
    assert data is not None
    document = json.loads(export_document(data, clock() + timedelta(days=1)))
    assert document["profile"]["profile_id"] == profile_id
    assert {(i["type"], i["value"]) for i in document["identities"]} == {
        ("user_id", "user-ada-1"),
        ("anonymous_id", "anon-ada-1"),
        ("anonymous_id", "anon-ada-2"),
        ("email", "ada@example.com"),
    }
    assert document["traits"]["first_name"] == {
        "value": "Ada L.",
        "source": "crm",
        "event_time": document["traits"]["first_name"]["event_time"],
    }
    assert sorted(e["message_id"] for e in document["events"]) == sorted(
        ["msg-identify-1", "msg-identify-2", "msg-identify-3", "msg-order-1", "msg-page-1"]
    )
    assert len(document["merges"]) == 1
    assert len(document["refused_merges"]) == 1
    assert document["computed_traits"]["orders_count"] == 1
    assert document["trait_conflicts"][0]["trait"] == "first_name"
