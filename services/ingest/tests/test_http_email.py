"""Open pixel, click redirect and one-click unsubscribe: genuine tokens record, forged and
expired ones record nothing and never redirect, machines are flagged."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest

from mailwright.tracking import SigningKey, TokenKind, TrackingClaims, TrackingSigner

from .conftest import SIGNING_KEY, Ingest, StartIngest

KEY_ID, _, SECRET = SIGNING_KEY.partition(":")
SIGNER = TrackingSigner([SigningKey(KEY_ID, SECRET.encode())])
FORGER = TrackingSigner([SigningKey(KEY_ID, b"f" * 40)])
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5"


def token(
    kind: TokenKind,
    url: str | None = None,
    send: str = "send-1",
    signer: TrackingSigner = SIGNER,
    expires_in: int = 3600,
    profile: str = "",
) -> str:
    claims = TrackingClaims("acme", send, kind, int(time.time()) + expires_in, url, profile)
    return signer.sign(claims)


def props(event: Any) -> dict[str, Any]:
    return dict(event.properties)


async def test_the_pixel_is_a_real_uncached_gif_and_records_the_open(ingest: Ingest) -> None:
    answer = await ingest.http.get(
        f"/t/o/{token(TokenKind.OPEN)}.gif", headers={"User-Agent": BROWSER}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert "no-store" in answer.headers["cache-control"]
    gif = answer.content
    assert gif[:6] == b"GIF89a"
    assert struct.unpack("<HH", gif[6:10]) == (1, 1)
    assert gif[-1:] == b";"
    (event,) = await ingest.tap.wait(1)
    assert event.event == "Email Opened"
    assert ingest.tap.messages[0].topic == "events.email"
    assert props(event) == {"send_id": "send-1", "machine": False, "machine_reason": ""}
    assert event.source == "tracking"


@pytest.mark.parametrize(
    "bad",
    [
        token(TokenKind.OPEN, signer=FORGER),
        token(TokenKind.OPEN, expires_in=-10),
        token(TokenKind.CLICK, url="https://shop.example"),
        "not-a-token",
        "A" * 9000,
    ],
    ids=["forged", "expired", "click-token", "garbage", "oversized"],
)
async def test_a_bad_open_token_still_gets_the_gif_but_records_nothing(
    ingest: Ingest, bad: str
) -> None:
    answer = await ingest.http.get(f"/t/o/{bad}.gif", headers={"User-Agent": BROWSER})
    assert answer.status_code == 200
    assert answer.content[:6] == b"GIF89a"
    assert await ingest.tap.quiet() == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"User-Agent": "Mozilla/5.0"}, "apple_privacy_proxy"),
        ({"User-Agent": "Mozilla/5.0 (compatible; BingPreview/1.0b)"}, "scanner_user_agent"),
        ({"User-Agent": ""}, "no_user_agent"),
    ],
)
async def test_machine_opens_are_flagged_not_counted_as_human(
    ingest: Ingest, headers: dict[str, str], reason: str
) -> None:
    await ingest.http.get(f"/t/o/{token(TokenKind.OPEN)}.gif", headers=headers)
    (event,) = await ingest.tap.wait(1)
    assert props(event)["machine"] is True
    assert props(event)["machine_reason"] == reason


async def test_apple_relay_addresses_are_machines(start_ingest: StartIngest) -> None:
    from mailwright_ingest.config import IngestSettings
    from mailwright_ingest.edge.machine import MachineDetector

    ingest = await start_ingest()
    detector = MachineDetector(IngestSettings(), ingest.platform.runtime.kv)  # type: ignore[union-attr]
    assert detector.by_request("17.58.101.1", BROWSER, "GET").reason == "apple_privacy_proxy"
    assert not detector.by_request("203.0.113.9", BROWSER, "GET").machine


async def test_a_click_redirects_to_the_signed_url_and_records_it(ingest: Ingest) -> None:
    target = "https://shop.example/sale?utm_source=email"
    answer = await ingest.http.get(
        f"/t/c/{token(TokenKind.CLICK, url=target)}", headers={"User-Agent": BROWSER}
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == target
    assert "no-store" in answer.headers["cache-control"]
    (event,) = await ingest.tap.wait(1)
    assert event.event == "Email Link Clicked"
    assert props(event) == {
        "send_id": "send-1",
        "url": target,
        "machine": False,
        "machine_reason": "",
    }


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (token(TokenKind.CLICK, url="https://evil.example", signer=FORGER), "not valid"),
        (token(TokenKind.CLICK, url="https://shop.example", expires_in=-5), "expired"),
        (token(TokenKind.OPEN), "not valid"),
        ("garbage", "not valid"),
    ],
    ids=["forged", "expired", "open-token", "garbage"],
)
async def test_a_bad_click_token_never_redirects_and_records_nothing(
    ingest: Ingest, bad: str, words: str
) -> None:
    answer = await ingest.http.get(f"/t/c/{bad}", headers={"User-Agent": BROWSER})
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert words in answer.text
    assert await ingest.tap.quiet() == []


async def test_a_scanners_head_request_is_flagged_and_still_redirected(ingest: Ingest) -> None:
    target = "https://shop.example/a"
    answer = await ingest.http.head(
        f"/t/c/{token(TokenKind.CLICK, url=target)}", headers={"User-Agent": BROWSER}
    )
    assert answer.status_code == 302
    (event,) = await ingest.tap.wait(1)
    assert (props(event)["machine"], props(event)["machine_reason"]) == (True, "head_request")


async def test_a_click_within_seconds_of_the_open_is_a_machines(ingest: Ingest) -> None:
    headers = {"User-Agent": BROWSER}
    await ingest.http.get(f"/t/o/{token(TokenKind.OPEN)}.gif", headers=headers)
    await ingest.http.get(
        f"/t/c/{token(TokenKind.CLICK, url='https://s.example/1')}", headers=headers
    )
    events = await ingest.tap.wait(2)
    click = next(e for e in events if e.event == "Email Link Clicked")
    assert props(click)["machine_reason"] == "too_fast"


async def test_every_link_of_a_send_followed_at_once_is_a_scanner(
    start_ingest: StartIngest,
) -> None:
    ingest = await start_ingest(services={"ingest": {"first_touch_window": "1ms"}})
    headers = {"User-Agent": BROWSER}
    for index in range(3):
        url = f"https://shop.example/{index}"
        await ingest.http.get(f"/t/c/{token(TokenKind.CLICK, url=url)}", headers=headers)
    events = sorted(await ingest.tap.wait(3), key=lambda e: props(e)["url"])
    assert [props(e)["machine_reason"] for e in events] == ["", "", "link_burst"]


async def test_the_unsubscribe_page_asks_before_anything_happens(ingest: Ingest) -> None:
    answer = await ingest.http.get(f"/u/{token(TokenKind.UNSUBSCRIBE)}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in answer.text
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert await ingest.tap.quiet() == []


async def test_a_one_click_post_unsubscribes_once(ingest: Ingest) -> None:
    url = f"/u/{token(TokenKind.UNSUBSCRIBE)}"
    body = {"Content-Type": "application/x-www-form-urlencoded"}
    first = await ingest.http.post(url, content=b"List-Unsubscribe=One-Click", headers=body)
    again = await ingest.http.post(url, content=b"List-Unsubscribe=One-Click", headers=body)
    assert first.status_code == again.status_code == 200
    assert "unsubscribed" in first.text
    events = await ingest.tap.quiet()
    assert len(events) == 1
    assert events[0].event == "Unsubscribed"
    assert ingest.tap.messages[0].topic == "events.email"
    assert props(events[0]) == {"send_id": "send-1", "method": "one-click"}


async def test_events_name_the_profile_the_token_names(ingest: Ingest) -> None:
    """Opens, clicks and unsubscribes reach the person: the token names their profile,
    and the event carries it (keyed on the bus as delivery keys that profile's events)."""
    await ingest.http.get(
        f"/t/o/{token(TokenKind.OPEN, profile='prof-9')}.gif", headers={"User-Agent": BROWSER}
    )
    click = token(TokenKind.CLICK, url="https://shop.example/p", profile="prof-9")
    answer = await ingest.http.get(f"/t/c/{click}", headers={"User-Agent": BROWSER})
    assert answer.status_code == 302
    await ingest.http.post(
        f"/u/{token(TokenKind.UNSUBSCRIBE, profile='prof-9')}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    events = await ingest.tap.wait(3)
    assert sorted(event.event for event in events) == [
        "Email Link Clicked",
        "Email Opened",
        "Unsubscribed",
    ]
    assert {event.profile_id for event in events} == {"prof-9"}
    assert {message.key for message in ingest.tap.messages} == {"acme:prof-9"}


@pytest.mark.parametrize(
    "bad",
    [
        token(TokenKind.UNSUBSCRIBE, signer=FORGER),
        token(TokenKind.UNSUBSCRIBE, expires_in=-1),
        token(TokenKind.OPEN),
    ],
    ids=["forged", "expired", "open-token"],
)
async def test_a_bad_unsubscribe_token_records_nothing(ingest: Ingest, bad: str) -> None:
    assert (
        await ingest.http.post(f"/u/{bad}", content=b"List-Unsubscribe=One-Click")
    ).status_code == 404
    assert (await ingest.http.get(f"/u/{bad}")).status_code == 404
    assert await ingest.tap.quiet() == []
