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
from email.message import EmailMessage
from pathlib import Path

import httpx

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


def read_message(path: Path, edge: str) -> Received:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part = parsed.get_body(preferencelist=("html",))
    html = html_part.get_content() if html_part is not None else ""
    base = re.escape(edge.rstrip("/"))
    pixel = re.search(rf'{base}/t/o/[^"\s<>]+', html)
    links = re.findall(rf'href="({base}/t/c/[^"\s<>]+)"', html)
    return Received(
        path=path,
        to=str(parsed["To"] or ""),
        subject=str(parsed["Subject"] or ""),
        pixel=pixel.group(0) if pixel else "",
        links=tuple(dict.fromkeys(links)),
        list_unsubscribe=str(parsed["List-Unsubscribe"] or ""),
    )


def outbox_messages(outbox: Path, edge: str) -> list[Received]:
    return [read_message(path, edge) for path in sorted(outbox.glob("*.eml"))]


def _draw(seed: int, what: str, message: Received) -> float:
    digest = hashlib.sha256(f"{seed}:{what}:{message.to}:{message.subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose(seed: int, messages: Sequence[Received]) -> Engagement:
    """Who opens, who clicks and who buys: the same on every run for the same mail."""
    chosen = Engagement(messages=len(messages))
    for message in messages:
        if not message.pixel or _draw(seed, "open", message) >= OPEN_SHARE:
            continue
        chosen.opened.append(message)
        if message.links and _draw(seed, "click", message) < CLICK_SHARE:
            chosen.clicked.append(message)
            if _draw(seed, "order", message) < ORDER_SHARE:
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
