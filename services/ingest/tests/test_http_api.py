"""Segment's HTTP tracking API on the edge: auth by write key, limits, bad input, CORS,
rate, and the browser collector script."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.protobuf import duration_pb2

from mailwright.ingest.v1 import ingest_pb2

from .conftest import PARENT, Ingest


async def write_key(ingest: Ingest) -> str:
    created = await ingest.clients.ingest.CreateWriteKey(
        ingest_pb2.CreateWriteKeyRequest(parent=PARENT, display_name="site")
    )
    return created.write_key.key


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
async def keyed(ingest: Ingest) -> tuple[Ingest, str]:
    return ingest, await write_key(ingest)


def call(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": "u1", "event": "Signed In"}
    body.update(fields)
    return body


async def test_a_track_call_with_basic_auth_is_accepted_and_published(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    answer = await ingest.http.post(
        "/v1/track", json=call(messageId="m1", properties={"method": "email"}), headers=basic(key)
    )
    assert answer.status_code == 200
    assert answer.json() == {"success": True, "messageId": "m1", "status": "accepted"}
    (event,) = await ingest.tap.wait(1)
    assert (event.event, event.user_id, event.source) == ("Signed In", "u1", "http")
    assert event.context.ip == "127.0.0.1"


async def test_the_write_key_may_come_in_the_body(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    answer = await ingest.http.post("/v1/identify", json={"userId": "u1", "writeKey": key})
    assert answer.status_code == 200


async def test_a_retried_call_is_a_duplicate(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    for expected in ("accepted", "duplicate"):
        answer = await ingest.http.post("/v1/track", json=call(messageId="m1"), headers=basic(key))
        assert answer.json()["status"] == expected
    assert len(await ingest.tap.quiet()) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic bm9wZTo="},
        {"Authorization": "Bearer x"},
        basic("mwk_" + "x" * 40),
    ],
)
async def test_a_missing_or_unknown_write_key_is_401_with_a_json_body(
    ingest: Ingest, headers: dict[str, str]
) -> None:
    answer = await ingest.http.post("/v1/track", json=call(), headers=headers)
    assert answer.status_code == 401
    assert answer.json()["success"] is False
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert await ingest.tap.quiet() == []


async def test_a_revoked_write_key_is_refused(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    listed = await ingest.clients.ingest.ListWriteKeys(
        ingest_pb2.ListWriteKeysRequest(parent=PARENT)
    )
    await ingest.clients.ingest.RevokeWriteKey(
        ingest_pb2.RevokeWriteKeyRequest(name=listed.write_keys[0].name)
    )
    answer = await ingest.http.post("/v1/track", json=call(), headers=basic(key))
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "malformed JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[" * 5000 + b"]" * 5000, "malformed JSON"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    keyed: tuple[Ingest, str], body: bytes, words: str
) -> None:
    ingest, key = keyed
    answer = await ingest.http.post("/v1/track", content=body, headers=basic(key))
    assert answer.status_code == 400
    assert words in answer.json()["error"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"userId": {"id": 1}}, ["userId"]),
        ({"userId": None}, ["userId"]),
        ({"properties": "cheap"}, ["properties"]),
        ({"timestamp": "last tuesday"}, ["timestamp"]),
        ({"context": {"ip": "not-an-ip"}}, ["context.ip"]),
        (
            {"event": "Order Completed", "properties": {"revenue": "1,5"}},
            ["properties.order_id", "properties.revenue"],
        ),
        ({"type": "identify"}, ["type"]),
    ],
)
async def test_a_bad_call_is_400_naming_each_field_as_sent(
    keyed: tuple[Ingest, str], fields: dict[str, Any], named: list[str]
) -> None:
    ingest, key = keyed
    answer = await ingest.http.post("/v1/track", json=call(**fields), headers=basic(key))
    assert answer.status_code == 400
    assert [v["field"] for v in answer.json()["violations"]] == named


async def test_properties_nested_too_deep_or_too_many_are_400(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    deep: dict[str, Any] = {"x": 1}
    for _ in range(10):
        deep = {"n": deep}
    answer = await ingest.http.post("/v1/track", json=call(properties=deep), headers=basic(key))
    assert answer.status_code == 400
    assert "nested deeper" in answer.json()["violations"][0]["description"]
    many = {f"p{i}": i for i in range(600)}
    answer = await ingest.http.post("/v1/track", json=call(properties=many), headers=basic(key))
    assert answer.status_code == 400


async def test_a_call_over_32_kb_is_413(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    answer = await ingest.http.post(
        "/v1/track", json=call(properties={"blob": "x" * 40_000}), headers=basic(key)
    )
    assert answer.status_code == 413
    assert answer.json()["success"] is False


async def test_a_batch_over_500_kb_is_413(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    batch = [call(type="track", properties={"note": "x" * 6000}) for _ in range(100)]
    answer = await ingest.http.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert answer.status_code == 413


async def test_gzip_bodies_are_read_and_gzip_bombs_refused(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    headers = {**basic(key), "Content-Encoding": "gzip"}
    small = gzip.compress(json.dumps(call(messageId="gz")).encode())
    assert (await ingest.http.post("/v1/track", content=small, headers=headers)).status_code == 200
    bomb = gzip.compress(b'{"userId": "u1", "pad": "' + b"0" * 5_000_000 + b'"}')
    assert len(bomb) < 32_000
    answer = await ingest.http.post("/v1/track", content=bomb, headers=headers)
    assert answer.status_code == 413


async def test_a_batch_answers_each_call_and_keeps_the_good_ones(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    batch = [
        {"type": "track", "event": "Signed In", "userId": "u1", "messageId": "a"},
        {"type": "track", "event": "Signed In", "messageId": "b"},
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "properties": {"order_id": 7},
        },
        {"type": "group", "userId": "u1", "groupId": "g"},
        "not a call",
        {"type": "identify", "userId": "u1", "traits": {"email": "A@B.example"}, "messageId": "f"},
    ]
    answer = await ingest.http.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 4)
    results = body["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert [v["field"] for v in results[1]["violations"]] == ["batch[1].userId"]
    assert [v["field"] for v in results[2]["violations"]] == ["batch[2].properties.order_id"]
    assert "group calls" in results[3]["violations"][0]["description"]
    published = await ingest.tap.wait(2)
    assert sorted(e.message_id for e in published) == ["a", "f"]


async def test_a_batch_of_only_bad_calls_is_400(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    answer = await ingest.http.post(
        "/v1/batch", json={"batch": [{"type": "track"}]}, headers=basic(key)
    )
    assert answer.status_code == 400
    assert answer.json()["rejected"] == 1


async def test_the_batch_context_and_sent_at_apply_to_every_call(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    skew = timedelta(hours=5)
    client_now = datetime.now(UTC) + skew
    happened = client_now - timedelta(minutes=1)
    payload = {
        "context": {"locale": "en-GB", "library": {"name": "analytics-python", "version": "2"}},
        "sentAt": client_now.isoformat(),
        "batch": [
            {
                "type": "track",
                "event": "Signed In",
                "userId": "u1",
                "timestamp": happened.isoformat(),
            },
            {"type": "track", "event": "Signed In", "userId": "u2", "context": {"locale": "fr-FR"}},
        ],
    }
    answer = await ingest.http.post("/v1/batch", json=payload, headers=basic(key))
    assert answer.json()["accepted"] == 2
    events = sorted(await ingest.tap.wait(2), key=lambda e: e.user_id)
    assert [e.context.locale for e in events] == ["en-GB", "fr-FR"]
    assert events[0].context.library.name == "analytics-python"
    corrected = events[0].timestamp.ToDatetime(tzinfo=UTC)
    assert abs(corrected - (datetime.now(UTC) - timedelta(minutes=1))) < timedelta(seconds=30)


async def test_a_batch_must_be_a_list_of_at_most_a_thousand(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    answer = await ingest.http.post("/v1/batch", json={"batch": {"a": 1}}, headers=basic(key))
    assert answer.status_code == 400
    calls = [{"type": "track"}] * 1001
    answer = await ingest.http.post("/v1/batch", json={"batch": calls}, headers=basic(key))
    assert answer.status_code == 400
    assert answer.json()["violations"][0]["field"] == "batch"


async def test_only_post_is_allowed(keyed: tuple[Ingest, str]) -> None:
    ingest, _ = keyed
    answer = await ingest.http.get("/v1/track")
    assert answer.status_code == 405
    assert answer.json()["success"] is False


async def set_policy(ingest: Ingest, **fields: Any) -> None:
    name = f"{PARENT}/ingestPolicy"
    api = ingest.clients.ingest
    policy = (await api.GetIngestPolicy(ingest_pb2.GetIngestPolicyRequest(name=name))).policy
    for field, value in fields.items():
        if isinstance(value, list):
            getattr(policy, field)[:] = value
        elif isinstance(value, duration_pb2.Duration):
            getattr(policy, field).CopyFrom(value)
        else:
            setattr(policy, field, value)
    await api.UpdateIngestPolicy(ingest_pb2.UpdateIngestPolicyRequest(policy=policy))


async def test_a_write_key_over_its_rate_gets_429_with_retry_after(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    await set_policy(ingest, rate_limit_per_second=0.2, rate_limit_burst=2)
    batch = [call(type="track", messageId=f"m{i}") for i in range(2)]
    first = await ingest.http.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert first.status_code == 200
    answer = await ingest.http.post("/v1/track", json=call(messageId="m9"), headers=basic(key))
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) >= 1
    assert "rate limit" in answer.json()["error"]
    assert len(await ingest.tap.quiet()) == 2


async def test_a_browser_preflight_is_answered(ingest: Ingest) -> None:
    answer = await ingest.http.options(
        "/v1/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "Content-Type" in answer.headers["access-control-allow-headers"]


async def test_browsers_are_answered_for_allowed_origins_only(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    await set_policy(ingest, allowed_origins=["https://shop.example"])
    shop = await ingest.http.post(
        "/v1/track",
        content=json.dumps(call(writeKey=key)),
        headers={"Origin": "https://shop.example", "Content-Type": "text/plain"},
    )
    assert shop.status_code == 200
    assert shop.headers["access-control-allow-origin"] == "https://shop.example"
    other = await ingest.http.post(
        "/v1/track",
        content=json.dumps(call(writeKey=key, messageId="other")),
        headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
    )
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    assert [e.message_id for e in await ingest.tap.quiet()] != ["other"]
    assert len(ingest.tap.messages) == 1


async def test_the_collector_script_is_served_as_javascript_with_an_etag(ingest: Ingest) -> None:
    answer = await ingest.http.get("/c.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/javascript; charset=utf-8"
    assert "sendBeacon" in answer.text
    assert "/v1/batch" in answer.text
    again = await ingest.http.get("/c.js", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304


async def test_nothing_is_published_for_any_refused_http_call(ingest: Ingest) -> None:
    async with httpx.AsyncClient(base_url=ingest.base_url) as client:
        await client.post("/v1/track", content=b"{")
        await client.post("/v1/batch", json={"batch": [call()]})
    assert await ingest.tap.quiet() == []
