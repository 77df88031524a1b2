"""The HTTP edge against the requests real Segment-compatible clients send: the paths,
headers, authentication, encodings and body shapes of analytics.js, the mobile SDKs
(analytics-swift, analytics-kotlin), the server libraries (analytics-python,
analytics-node, analytics-go), RudderStack's JavaScript SDK and curl following Segment's
HTTP Tracking API documentation. Each body below is shaped as that client builds it."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from .conftest import Ingest, StartIngest
from .test_http_api import basic, set_policy, write_key

SHOP = "https://shop.example"


@pytest.fixture
async def keyed(ingest: Ingest) -> tuple[Ingest, str]:
    return ingest, await write_key(ingest)


def iso_ms(moment: datetime) -> str:
    """`new Date().toISOString()`: milliseconds and `Z` (analytics.js, node, the mobile
    SDKs)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def ajs_event(kind: str, key: str, **fields: Any) -> dict[str, Any]:
    """One call as analytics.js (analytics-next) posts it: the write key, `_metadata` and
    a browser context in the body."""
    event: dict[str, Any] = {
        "type": kind,
        "messageId": "ajs-next-1700000000000-0f1e2d3c",
        "anonymousId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "timestamp": iso_ms(now()),
        "sentAt": iso_ms(now()),
        "context": {
            "page": {
                "path": "/shoes",
                "referrer": "",
                "search": "?utm_source=news",
                "title": "Shoes",
                "url": f"{SHOP}/shoes?utm_source=news",
            },
            "campaign": {"source": "news", "id": "spring"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
            "userAgentData": {"brands": [{"brand": "Chromium", "version": "126"}]},
            "locale": "en-GB",
            "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
        },
        "integrations": {},
        "properties": {},
        "writeKey": key,
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    event.update(fields)
    return event


def browser(content: bytes | str) -> dict[str, Any]:
    """What `fetch(url, {headers: {'Content-Type': 'text/plain'}})` sends from a page."""
    return {
        "content": content,
        "headers": {"Origin": SHOP, "Content-Type": "text/plain"},
    }


# -- analytics.js ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "fields"),
    [
        ("/v1/t", "track", {"event": "Product Viewed", "properties": {"product_id": "sku-7"}}),
        (
            "/v1/p",
            "page",
            {
                "name": "Shoes",
                "properties": {
                    "path": "/shoes",
                    "referrer": "",  # a direct visit
                    "search": "?utm_source=news",
                    "title": "Shoes",
                    "url": f"{SHOP}/shoes?utm_source=news",
                },
            },
        ),
        ("/v1/i", "identify", {"userId": "u-42", "traits": {"email": "ada@example.com"}}),
        ("/v1/s", "screen", {"name": "Home"}),
        ("/v1/a", "alias", {"userId": "u-42", "previousId": "anon-1"}),
    ],
)
async def test_analytics_js_posts_each_call_to_its_one_letter_path(
    keyed: tuple[Ingest, str], path: str, kind: str, fields: dict[str, Any]
) -> None:
    ingest, key = keyed
    answer = await ingest.http.post(path, **browser(json.dumps(ajs_event(kind, key, **fields))))
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    assert answer.headers["access-control-allow-origin"] == SHOP
    (event,) = await ingest.tap.wait(1)
    assert event.anonymous_id == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert event.context.page.url == f"{SHOP}/shoes?utm_source=news"
    assert event.context.library.name == "analytics.js"


async def test_analytics_js_from_a_browser_that_cannot_tell_its_zone_is_accepted(
    keyed: tuple[Ingest, str],
) -> None:
    """analytics.js sets context.timezone from Intl.DateTimeFormat, which Chrome and
    Safari answer with CLDR's `Etc/Unknown` when the system's zone is not one they
    know."""
    ingest, key = keyed
    call = ajs_event("track", key, event="Signed In")
    call["context"]["timezone"] = "Etc/Unknown"
    answer = await ingest.http.post("/v1/t", **browser(json.dumps(call)))
    assert answer.status_code == 200, answer.text
    (event,) = await ingest.tap.wait(1)
    assert event.context.timezone == ""


async def test_analytics_js_batching_posts_to_v1_b(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    events = [
        ajs_event("page", key, messageId="ajs-1"),
        ajs_event("track", key, messageId="ajs-2", event="Signed In"),
    ]
    for event in events:
        del event["sentAt"]  # the batched dispatcher keeps one sentAt, at the top
    body = {"writeKey": key, "batch": events, "sentAt": iso_ms(now())}
    answer = await ingest.http.post("/v1/b", **browser(json.dumps(body)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2, answer.text
    assert sorted(e.message_id for e in await ingest.tap.wait(2)) == ["ajs-1", "ajs-2"]


async def test_analytics_js_reads_its_rate_limit_wait_from_x_ratelimit_reset(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    await set_policy(ingest, rate_limit_per_second=0.1, rate_limit_burst=1)
    body = {"writeKey": key, "batch": [ajs_event("page", key)], "sentAt": iso_ms(now())}
    assert (await ingest.http.post("/v1/b", **browser(json.dumps(body)))).status_code == 200
    body["batch"] = [ajs_event("page", key, messageId="ajs-over")]
    answer = await ingest.http.post("/v1/b", **browser(json.dumps(body)))
    assert answer.status_code == 429
    # The batched dispatcher waits x-ratelimit-reset seconds (a page reads it only when
    # the answer exposes it); Segment sends it beside Retry-After.
    assert int(answer.headers["x-ratelimit-reset"]) == int(answer.headers["retry-after"]) >= 1
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "x-ratelimit-reset" in exposed
    assert "retry-after" in exposed


async def test_a_group_call_on_v1_g_is_refused_by_name(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    call = ajs_event("group", key, groupId="g-1", traits={"name": "Initech"})
    answer = await ingest.http.post("/v1/g", **browser(json.dumps(call)))
    assert answer.status_code == 400
    (violation,) = answer.json()["violations"]
    assert violation["field"] == "type"
    assert "group calls" in violation["description"]


# -- the mobile SDKs ---------------------------------------------------------------------


def mobile_event(kind: str, **fields: Any) -> dict[str, Any]:
    """One event as analytics-kotlin serialises it (defaults encoded: an anonymous
    user's `userId` is the empty string)."""
    event: dict[str, Any] = {
        "type": kind,
        "messageId": "5e3c1f7a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        "anonymousId": "7b0d6a52-2f7e-4c1a-9c3b-1d2e3f4a5b6c",
        "userId": "",
        "integrations": {},
        "timestamp": iso_ms(now()),
        "context": {
            "app": {"name": "Shop", "version": "3.2.1", "build": "321"},
            "device": {
                "id": "a1b2c3",
                "manufacturer": "Google",
                "model": "Pixel 8",
                "name": "shiba",
                "type": "android",
                "adTrackingEnabled": False,
            },
            "library": {"name": "com.segment.analytics.kotlin.android", "version": "1.16.0"},
            "locale": "en-GB",
            "network": {"wifi": True, "cellular": False},
            "os": {"name": "Android", "version": "14"},
            "screen": {"width": 1080, "height": 2400, "density": 2.625},
            "timezone": "Europe/London",
            "instanceId": "d4c3b2a1",
        },
        "_metadata": {"bundled": [], "unbundled": [], "bundledIds": []},
    }
    event.update(fields)
    return event


async def test_analytics_kotlin_posts_gzip_text_plain_to_v1_b(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    body = {
        "batch": [
            mobile_event("screen", name="Home"),
            mobile_event("track", event="Signed In", messageId="k-2"),
        ],
        "sentAt": iso_ms(now()),
        "writeKey": key,
    }
    compressed = gzip.compress(json.dumps(body).encode())

    async def chunks() -> AsyncIterator[bytes]:
        # setChunkedStreamingMode(0): no Content-Length, the body in chunks
        for start in range(0, len(compressed), 256):
            yield compressed[start : start + 256]

    answer = await ingest.http.post(
        "/v1/b",
        content=chunks(),
        headers={**basic(key), "Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2, answer.text
    events = await ingest.tap.wait(2)
    assert {e.context.device.model for e in events} == {"Pixel 8"}
    assert all(e.user_id == "" and e.anonymous_id for e in events)


async def test_analytics_kotlin_on_a_device_without_a_region_is_accepted(
    keyed: tuple[Ingest, str],
) -> None:
    """analytics-kotlin writes `language + "-" + country`: `en-` on a device whose locale
    names no country."""
    ingest, key = keyed
    event = mobile_event("screen", name="Home")
    event["context"]["locale"] = "en-"
    body = {"batch": [event], "sentAt": iso_ms(now()), "writeKey": key}
    answer = await ingest.http.post(
        "/v1/b",
        content=gzip.compress(json.dumps(body).encode()),
        headers={**basic(key), "Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1, answer.text
    (published,) = await ingest.tap.wait(1)
    assert published.context.locale == "en"


async def test_analytics_swift_posts_json_to_v1_b_with_basic_auth(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    event = mobile_event("identify", userId="u-42", traits={"email": "ada@example.com"})
    event["context"]["library"] = {"name": "analytics-swift", "version": "1.5.0"}
    body = {"batch": [event], "sentAt": iso_ms(now()), "writeKey": key}
    answer = await ingest.http.post(
        "/v1/b",
        content=json.dumps(body),
        headers={**basic(key), "Content-Type": "application/json; charset=utf-8"},
    )
    assert answer.status_code == 200, answer.text
    (published,) = await ingest.tap.wait(1)
    assert published.user_id == "u-42"


# -- RudderStack's JavaScript SDK --------------------------------------------------------


async def test_rudderstack_js_preflight_allows_the_headers_it_sends(ingest: Ingest) -> None:
    answer = await ingest.http.options(
        "/v1/track",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "anonymousid,authorization,content-type",
        },
    )
    assert answer.status_code == 204
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"anonymousid", "authorization", "content-type"} <= allowed


async def test_rudderstack_js_calls_are_accepted(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    anonymous = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
    stamp = iso_ms(now())
    call = {
        "channel": "web",
        "context": {
            "app": {"name": "RudderLabs JavaScript SDK", "version": "2.48.0"},
            "library": {"name": "RudderLabs JavaScript SDK", "version": "2.48.0"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "locale": "en-GB",
            "os": {"name": "", "version": ""},
            "screen": {"density": 1, "width": 1920, "height": 1080},
            "traits": {},
            "page": {"path": "/", "referrer": "$direct", "search": "", "title": "Shop"},
        },
        "type": "track",
        "messageId": "8c7b6a59-4d3e-2f1a-0b9c-8d7e6f5a4b3c",
        "originalTimestamp": stamp,
        "anonymousId": anonymous,
        "userId": "",
        "event": "Signed In",
        "properties": {},
        "integrations": {"All": True},
        "sentAt": stamp,
    }
    answer = await ingest.http.post(
        "/v1/track",
        content=json.dumps(call),
        headers={
            **basic(key),
            "Content-Type": "application/json",
            "AnonymousId": base64.b64encode(anonymous.encode()).decode(),
            "Origin": SHOP,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == SHOP
    (event,) = await ingest.tap.wait(1)
    assert event.anonymous_id == anonymous


async def test_rudderstack_js_beacon_batches_carry_the_write_key_in_the_query(
    keyed: tuple[Ingest, str],
) -> None:
    """RudderStack's beacon transport (`navigator.sendBeacon`, which cannot set headers)
    posts to `/beacon/v1/batch?writeKey=…` as text/plain."""
    ingest, key = keyed
    call = {
        "type": "page",
        "anonymousId": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "messageId": "rs-beacon-1",
        "originalTimestamp": iso_ms(now()),
        "properties": {"path": "/", "url": f"{SHOP}/", "title": "Shop"},
        "context": {"library": {"name": "RudderLabs JavaScript SDK", "version": "3.11.0"}},
    }
    body = json.dumps({"batch": [call], "sentAt": iso_ms(now())})
    answer = await ingest.http.post(f"/beacon/v1/batch?writeKey={key}", **browser(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    (event,) = await ingest.tap.wait(1)
    assert event.message_id == "rs-beacon-1"


async def test_a_write_key_in_the_query_counts_only_on_the_beacon_path(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    body = {"batch": [{"type": "track", "userId": "u-42", "event": "Signed In"}]}
    answer = await ingest.http.post(f"/v1/batch?writeKey={key}", json=body)
    assert answer.status_code == 401


# -- the caller's address -----------------------------------------------------------------


async def test_context_ip_is_the_forwarded_client_behind_a_trusted_proxy(
    start_ingest: StartIngest,
) -> None:
    ingest = await start_ingest(trusted_proxies=["127.0.0.0/8"])
    key = await write_key(ingest)
    answer = await ingest.http.post(
        "/v1/p",
        **browser(json.dumps(ajs_event("page", key))),
    )
    assert answer.status_code == 200
    forwarded = await ingest.http.post(
        "/v1/p",
        content=json.dumps(ajs_event("page", key, messageId="ajs-proxied")),
        headers={"Content-Type": "text/plain", "X-Forwarded-For": "203.0.113.9"},
    )
    assert forwarded.status_code == 200
    direct, proxied = await ingest.tap.wait(2)
    assert (direct.context.ip, proxied.context.ip) == ("127.0.0.1", "203.0.113.9")


async def test_x_forwarded_for_from_an_untrusted_address_is_ignored(
    start_ingest: StartIngest,
) -> None:
    ingest = await start_ingest(trusted_proxies=["10.0.0.0/8"])
    key = await write_key(ingest)
    answer = await ingest.http.post(
        "/v1/p",
        content=json.dumps(ajs_event("page", key)),
        headers={"Content-Type": "text/plain", "X-Forwarded-For": "203.0.113.9"},
    )
    assert answer.status_code == 200
    (event,) = await ingest.tap.wait(1)
    assert event.context.ip == "127.0.0.1"


# -- the server libraries ------------------------------------------------------------------


def python_call(kind: str, **fields: Any) -> dict[str, Any]:
    """One message as analytics-python enqueues it: `timestamp` from `datetime.isoformat()`
    (microseconds, `+00:00`), ids stringified or null, `integrations` and `context` always
    there."""
    message: dict[str, Any] = {
        "integrations": {},
        "anonymousId": None,
        "timestamp": now().isoformat(),
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        "userId": "u-42",
        "type": kind,
        "messageId": "2b0c7f8e-3d4a-4e5f-9a6b-7c8d9e0f1a2b",
        "properties": {},
    }
    message.update(fields)
    return message


async def test_analytics_python_posts_a_gzip_batch_with_basic_auth_and_write_key(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    body = {
        "batch": [
            python_call("track", event="Signed In"),
            python_call(
                "identify",
                messageId="py-2",
                userId=None,
                anonymousId="anon-7",
                traits={"email": "ada@example.com"},
            ),
        ],
        "sentAt": now().isoformat(),
        "writeKey": key,
    }
    answer = await ingest.http.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(body).encode()),
        headers={
            **basic(key),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": "analytics-python/2.3.3",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    events = sorted(await ingest.tap.wait(2), key=lambda e: e.type)
    assert [(e.user_id, e.anonymous_id) for e in events] == [("u-42", ""), ("", "anon-7")]


def python_sdk_error(answer: httpx.Response) -> tuple[int, str, str]:
    """What analytics-python makes of an answer other than 200:
    `APIError(status, payload['code'], payload['message'])`. A JSON body without those
    keys raises KeyError instead, which its consumer does not recognise as a client error
    and retries ten times with exponential backoff, stalling its queue for minutes."""
    payload = answer.json()
    return answer.status_code, payload["code"], payload["message"]


async def test_analytics_python_gives_up_on_a_refusal_it_can_read(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    good = {"batch": [python_call("track", event="Signed In")]}
    every_one_bad = {"batch": [{"type": "track"}]}
    too_big = {"batch": [python_call("track", properties={"x": "y" * 600_000})]}
    refusals = [
        await ingest.http.post("/v1/batch", json=good, headers=basic("mwk_" + "x" * 40)),
        await ingest.http.post("/v1/batch", json=every_one_bad, headers=basic(key)),
        await ingest.http.post("/v1/batch", json=too_big, headers=basic(key)),
        await ingest.http.post("/v1/batch", content=b"{", headers=basic(key)),
    ]
    await set_policy(ingest, rate_limit_per_second=0.1, rate_limit_burst=1)
    assert (await ingest.http.post("/v1/batch", json=good, headers=basic(key))).status_code == 200
    refusals.append(await ingest.http.post("/v1/batch", json=good, headers=basic(key)))
    read = [python_sdk_error(answer) for answer in refusals]
    assert [status for status, _, _ in read] == [401, 400, 413, 400, 429]
    assert all(code and message for _, code, message in read)
    assert [code for _, code, _ in read] == [
        "unauthorized",
        "invalid_request",
        "payload_too_large",
        "invalid_request",
        "rate_limited",
    ]


async def test_analytics_node_posts_its_batch_with_metadata(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    message = {
        "type": "track",
        "event": "Signed In",
        "userId": 1234,  # analytics-node sends a number as the caller gave it
        "properties": {"plan": "pro"},
        "context": {"library": {"name": "@segment/analytics-node", "version": "2.1.0"}},
        "integrations": {},
        "messageId": "node-next-1700000000000-ab12cd34",
        "timestamp": iso_ms(now()),
        "_metadata": {"nodeVersion": "20.11.0", "jsRuntime": "node"},
    }
    answer = await ingest.http.post(
        "/v1/batch",
        json={"batch": [message], "sentAt": iso_ms(now())},
        headers={**basic(key), "User-Agent": "analytics-node-next/latest"},
    )
    assert answer.status_code == 200, answer.text
    (event,) = await ingest.tap.wait(1)
    assert event.user_id == "1234"


async def test_analytics_go_posts_rfc3339_nano_times_with_its_batch_id(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    # Go's time.Time marshals as RFC 3339 with up to nine fraction digits, in the
    # machine's zone.
    paris = timezone(timedelta(hours=2))
    happened = now() - timedelta(minutes=3)
    stamp = happened.astimezone(paris).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123+02:00"
    body = {
        "messageId": "c0ffee00-batch",
        "sentAt": now().astimezone(paris).strftime("%Y-%m-%dT%H:%M:%S.%f") + "456+02:00",
        "batch": [
            {
                "type": "track",
                "messageId": "go-1",
                "userId": "u-42",
                "event": "Signed In",
                "timestamp": stamp,
                "properties": {},
            }
        ],
        "context": {"library": {"name": "analytics-go", "version": "3.3.0"}},
    }
    answer = await ingest.http.post(
        "/v1/batch",
        json=body,
        headers={**basic(key), "User-Agent": "analytics-go (version: 3.3.0)"},
    )
    assert answer.status_code == 200, answer.text
    (event,) = await ingest.tap.wait(1)
    assert event.context.library.name == "analytics-go"
    recorded = event.timestamp.ToDatetime(tzinfo=UTC)
    assert abs(recorded - happened) < timedelta(seconds=5)


# -- curl, following Segment's HTTP API documentation -----------------------------------


def encoded(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.mark.parametrize(
    "auth",
    [
        "basic",  # -u "$WRITE_KEY:"
        "basic without the colon",  # accepted by Segment for backward compatibility
        "write key in the body",
        "bearer with the write key in the body",  # Segment's OAuth: the token, and the key
    ],
)
async def test_each_documented_way_to_send_the_write_key_works(
    keyed: tuple[Ingest, str], auth: str
) -> None:
    ingest, key = keyed
    call: dict[str, Any] = {"userId": "u-42", "event": "Signed In", "messageId": "curl-1"}
    headers = {"Content-Type": "application/json"}
    if auth == "basic":
        headers |= encoded(f"{key}:")
    elif auth == "basic without the colon":
        headers |= encoded(key)
    else:
        call["writeKey"] = key
        if auth.startswith("bearer"):
            headers["Authorization"] = "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
    answer = await ingest.http.post("/v1/track", content=json.dumps(call), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "messageId": "curl-1", "status": "accepted"}


# -- times, ids and retries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("render", "whole_seconds"),
    [
        (iso_ms, False),  # analytics.js, node, swift, kotlin: 2026-…T12:00:00.250Z
        (lambda t: t.isoformat(), False),  # analytics-python: microseconds, +00:00
        (lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"), True),  # curl: no fraction
        (lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000", False),  # analytics-ios
        (lambda t: int(t.timestamp() * 1000), False),  # epoch milliseconds
    ],
    ids=["ms-Z", "micro-offset", "seconds-Z", "offset-without-colon", "epoch-ms"],
)
async def test_the_iso_8601_forms_clients_emit_are_read_as_the_same_moment(
    keyed: tuple[Ingest, str], render: Any, whole_seconds: bool
) -> None:
    ingest, key = keyed
    happened = (now() - timedelta(hours=1)).replace(microsecond=0 if whole_seconds else 250_000)
    call = {"userId": "u-42", "event": "Signed In", "timestamp": render(happened)}
    answer = await ingest.http.post("/v1/track", json=call, headers=basic(key))
    assert answer.status_code == 200, answer.text
    (event,) = await ingest.tap.wait(1)
    assert event.timestamp.ToDatetime(tzinfo=UTC) == happened
    assert event.original_timestamp.ToDatetime(tzinfo=UTC) == happened


async def test_original_timestamp_and_sent_at_correct_a_skewed_client_clock(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    client_now = (now() + timedelta(hours=3)).replace(microsecond=0)  # three hours ahead
    call = {
        "anonymousId": "anon-1",
        "type": "track",
        "event": "Signed In",
        "originalTimestamp": iso_ms(client_now - timedelta(seconds=90)),
        "sentAt": iso_ms(client_now),
    }
    answer = await ingest.http.post("/v1/track", json=call, headers=basic(key))
    assert answer.status_code == 200, answer.text
    (event,) = await ingest.tap.wait(1)
    received = event.received_at.ToDatetime(tzinfo=UTC)
    corrected = event.timestamp.ToDatetime(tzinfo=UTC)
    # timestamp = receivedAt - (sentAt - originalTimestamp), exactly
    assert corrected == received - timedelta(seconds=90)
    assert event.original_timestamp.ToDatetime(tzinfo=UTC) == client_now - timedelta(seconds=90)
    assert event.sent_at.ToDatetime(tzinfo=UTC) == client_now


async def test_a_call_without_message_id_gets_one_and_each_call_its_own(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    ids = []
    for _ in range(2):
        answer = await ingest.http.post(
            "/v1/identify", json={"anonymousId": "anon-1"}, headers=basic(key)
        )
        assert answer.status_code == 200
        ids.append(answer.json()["messageId"])
    assert all(ids)
    assert ids[0] != ids[1]
    assert sorted(e.message_id for e in await ingest.tap.wait(2)) == sorted(ids)


async def test_a_retried_batch_is_deduplicated_by_message_id(keyed: tuple[Ingest, str]) -> None:
    ingest, key = keyed
    body = {
        "batch": [python_call("track", event="Signed In", messageId=f"r-{i}") for i in range(3)]
        + [python_call("track", messageId="r-bad")],  # no event name
        "sentAt": now().isoformat(),
    }
    first = await ingest.http.post("/v1/batch", json=body, headers=basic(key))
    retry = await ingest.http.post("/v1/batch", json=body, headers=basic(key))
    assert [first.status_code, retry.status_code] == [200, 200]
    counts = [
        (a.json()["accepted"], a.json()["duplicate"], a.json()["rejected"]) for a in (first, retry)
    ]
    assert counts == [(3, 0, 1), (0, 3, 1)]
    assert [r["status"] for r in retry.json()["results"]] == ["duplicate"] * 3 + ["rejected"]
    assert len(await ingest.tap.quiet()) == 3


async def test_a_batch_call_over_32_kb_is_rejected_by_its_index_and_the_rest_kept(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    big = {f"note{i}": "x" * 4000 for i in range(9)}  # 36 KB, each string under the limit
    body = {
        "batch": [
            python_call("track", event="Signed In", messageId="small"),
            python_call("track", event="Signed In", messageId="big", properties=big),
        ]
    }
    answer = await ingest.http.post("/v1/batch", json=body, headers=basic(key))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    (violation,) = results[1]["violations"]
    assert violation["field"] == "batch[1]"
    assert "32768 bytes" in violation["description"]
    assert [e.message_id for e in await ingest.tap.quiet()] == ["small"]


async def test_a_gzip_bomb_in_a_batch_is_413_and_records_nothing(
    keyed: tuple[Ingest, str],
) -> None:
    ingest, key = keyed
    bomb = gzip.compress(b'{"batch": [], "pad": "' + b"0" * 20_000_000 + b'"}')
    answer = await ingest.http.post(
        "/v1/batch", content=bomb, headers={**basic(key), "Content-Encoding": "gzip"}
    )
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["error"]
    assert await ingest.tap.quiet() == []


async def test_a_retry_racing_its_original_is_told_to_retry_as_every_sdk_understands(
    keyed: tuple[Ingest, str],
) -> None:
    """analytics-python, analytics.js and the mobile SDKs drop a batch answered with any
    4xx but 429; only a 5xx or 429 makes them send it again. The original call still
    holds one message id of the batch (it has not published yet)."""
    ingest, key = keyed
    dedup = ingest.app().intake.dedup
    original = await dedup.claim("acme", ["race-1"], timedelta(hours=24))
    body = {
        "batch": [
            python_call("track", event="Signed In", messageId="race-1"),
            python_call("track", event="Signed In", messageId="race-2"),
        ]
    }
    answer = await ingest.http.post("/v1/batch", json=body, headers=basic(key))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["success"] is False
    assert await ingest.tap.quiet() == []
    await dedup.release(original)  # the original failed: nothing of it was published
    again = await ingest.http.post("/v1/batch", json=body, headers=basic(key))
    assert again.json()["accepted"] == 2
