"""Simulated readers: some recipients open their email and click, as people would.

Each `.eml` file in the outbox is read like a mail client reads it: the HTML part's open
pixel and tracked links. A deterministic share of recipients (by a hash of the seed, the
address and the subject) "open" by fetching the pixel from the HTTP edge with a browser's
user agent, and some of those "click" a tracked link a few seconds later (sooner would
look like a link scanner). Some clickers then buy. Everything goes through the real
edge, so opens and clicks reach delivery's reports and the profiles as events.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import httpx

from .generate import Customer, Product

OPEN_SHARE = 0.4
CLICK_SHARE = 0.35
"""Of those who opened."""
ORDER_SHARE = 0.3
"""Of those who clicked."""
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)
# Sooner than the edge's first_touch_window (2 s) after the open, a click is a scanner's.
CLICK_DELAY = 2.5


@dataclass(frozen=True)
class Received:
    """What a reader finds in one message."""

    path: Path
    to: str
    subject: str
    pixel: str
    links: tuple[str, ...]
    list_unsubscribe: str


@dataclass
class Engagement:
    messages: int = 0
    opened: list[Received] = field(default_factory=list)
    clicked: list[Received] = field(default_factory=list)
    buyers: list[str] = field(default_factory=list)
    """Addresses of the clickers who then ordered."""


def _header(value: str | None) -> str:
    """A header's text, its RFC 2047 encoded words decoded."""
    return str(make_header(decode_header(value))) if value else ""


def read_message(path: Path, edge: str) -> Received:
    # The compat32 policy keeps headers as strings until asked: parsing the demo's 5,400
    # messages with the default policy's header objects took seven times the CPU (most of
    # the step) for the same three headers and HTML part.
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    html = ""
    for part in parsed.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                html = payload.decode(part.get_content_charset() or "utf-8", "replace")
            break
    base = re.escape(edge.rstrip("/"))
    pixel = re.search(rf'{base}/t/o/[^"\s<>]+', html)
    links = re.findall(rf'href="({base}/t/c/[^"\s<>]+)"', html)
    return Received(
        path=path,
        to=_header(parsed["To"]),
        subject=_header(parsed["Subject"]),
        pixel=pixel.group(0) if pixel else "",
        links=tuple(dict.fromkeys(links)),
        list_unsubscribe=_header(parsed["List-Unsubscribe"]),
    )


def outbox_messages(outbox: Path, edge: str) -> list[Received]:
    return [read_message(path, edge) for path in sorted(outbox.glob("*.eml"))]


def _draw(seed: int, what: str, reader: str) -> float:
    digest = hashlib.sha256(f"{seed}:{what}:{reader}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose(seed: int, messages: Sequence[Received]) -> Engagement:
    """Who opens, who clicks and who buys: decided by the recipient's address (and how
    many messages they had before), so the same people engage on every run."""
    chosen = Engagement(messages=len(messages))
    seen: dict[str, int] = {}
    for message in sorted(messages, key=lambda m: (m.to, m.path.name)):
        seen[message.to] = seen.get(message.to, 0) + 1
        reader = f"{message.to}:{seen[message.to]}"
        if not message.pixel or _draw(seed, "open", reader) >= OPEN_SHARE:
            continue
        chosen.opened.append(message)
        if message.links and _draw(seed, "click", reader) < CLICK_SHARE:
            chosen.clicked.append(message)
            if _draw(seed, "order", reader) < ORDER_SHARE:
                chosen.buyers.append(message.to)
    return chosen


async def _fetch_all(
    client: httpx.AsyncClient, urls: Sequence[str], tick: Callable[[], None]
) -> None:
    slots = asyncio.Semaphore(16)

    async def fetch(url: str) -> None:
        async with slots:
            reply = await client.get(url)
        if reply.status_code not in (200, 302):
            raise RuntimeError(f"the edge answered {reply.status_code} for {url}")
        tick()

    await asyncio.gather(*(fetch(url) for url in urls))


async def engage(chosen: Engagement, tick: Callable[[], None]) -> None:
    """Open, wait as a reader would, then click (the first link of each chosen message)."""
    async with httpx.AsyncClient(
        headers={"User-Agent": BROWSER}, follow_redirects=False, timeout=30
    ) as client:
        await _fetch_all(client, [m.pixel for m in chosen.opened], tick)
        if chosen.clicked:
            await asyncio.sleep(CLICK_DELAY)
            await _fetch_all(client, [m.links[0] for m in chosen.clicked], tick)


def live_shoppers(customers: Sequence[Customer], every: int = 40) -> list[Customer]:
    """The customers shopping right now: every `every`-th one (at least one)."""
    return list(customers[::every]) or list(customers[:1])


def checkout_batch(shoppers: Sequence[Customer], products: Sequence[Product]) -> dict[str, Any]:
    """A Segment-style `/v1/batch` body: each shopper adds a product and starts a checkout."""
    calls: list[dict[str, Any]] = []
    for n, customer in enumerate(shoppers):
        product = products[(n * 7) % len(products)]
        item = {"product_id": product.product_id, "name": product.name, "quantity": 1}
        price = str(product.price)
        calls.append(
            {
                "type": "track",
                "messageId": f"demo-live-add-{customer.user_id}",
                "userId": customer.user_id,
                "event": "Product Added",
                "properties": {**item, "price": price, "currency": "EUR"},
            }
        )
        calls.append(
            {
                "type": "track",
                "messageId": f"demo-live-checkout-{customer.user_id}",
                "userId": customer.user_id,
                "event": "Checkout Started",
                "properties": {
                    "checkout_id": f"live-{customer.user_id}",
                    "value": price,
                    "currency": "EUR",
                    "products": [{**item, "price": price}],
                },
            }
        )
    return {"batch": calls, "context": {"userAgent": BROWSER}}


async def post_batch(edge: str, write_key: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(auth=(write_key, ""), timeout=30) as client:
        reply = await client.post(f"{edge.rstrip('/')}/v1/batch", json=body)
    if reply.status_code != 200:
        raise RuntimeError(f"the edge answered {reply.status_code}: {reply.text[:200]}")
    answer: dict[str, Any] = reply.json()
    return answer
