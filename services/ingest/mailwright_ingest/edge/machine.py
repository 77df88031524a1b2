"""Telling machine opens and clicks from people's, so engagement counts only people.

A machine open or click is still recorded (with `machine: true` and the reason); segments
and reports count human ones. What gives a machine away:

- Apple Mail Privacy Protection fetches every image at delivery, through Apple's relays
  (17.0.0.0/8) with the bare user agent `Mozilla/5.0`;
- link scanners (Microsoft Safe Links, Mimecast, Proofpoint, Barracuda, …) and previewers
  announce themselves in their user agent, or send HEAD requests, or none at all;
- scanners follow every link of a message within a second or two: a click sooner than
  `first_touch_window` after the send's first open or click, or the `click_burst_links`-th
  different link of one send within `click_burst_window`, is a machine's.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from mailwright.runtime.kv import KeyValueError, KeyValueStore
from mailwright_ingest.config import IngestSettings

log = logging.getLogger(__name__)

APPLE_RELAYS = ("17.0.0.0/8",)
MPP_USER_AGENT = "Mozilla/5.0"
SCANNER_PATTERNS = (
    r"bot\b",
    r"spider",
    r"crawler",
    r"scanner",
    r"python-requests",
    r"python-httpx",
    r"aiohttp",
    r"curl/",
    r"wget",
    r"go-http-client",
    r"\bjava/",
    r"okhttp",
    r"libwww",
    r"httpclient",
    r"barracuda",
    r"mimecast",
    r"proofpoint",
    r"ironport",
    r"symantec",
    r"trendmicro",
    r"forcepoint",
    r"fortiguard",
    r"microsoft office existence discovery",
    r"ms-office",
    r"bingpreview",
    r"safelinks",
    r"headlesschrome",
    r"phantomjs",
    r"facebookexternalhit",
    r"skypeuripreview",
    r"slack-imgproxy",
)
TOUCH_TTL = timedelta(days=2)


@dataclass(frozen=True)
class Verdict:
    machine: bool
    reason: str = ""


HUMAN = Verdict(False)


class MachineDetector:
    def __init__(self, settings: IngestSettings, kv: KeyValueStore) -> None:
        self.kv = kv
        ranges: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for cidr in (*APPLE_RELAYS, *settings.machine_ip_ranges):
            ranges.append(ipaddress.ip_network(cidr, strict=False))
        self._apple = ranges[: len(APPLE_RELAYS)]
        self._ranges = ranges[len(APPLE_RELAYS) :]
        patterns: Sequence[str] = (*SCANNER_PATTERNS, *settings.scanner_user_agents)
        self._scanner = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        self.first_touch = settings.first_touch_window.total_seconds()
        self.burst_links = settings.click_burst_links
        self.burst_window = settings.click_burst_window

    def by_request(self, ip: str, user_agent: str, method: str) -> Verdict:
        """What the request alone says."""
        address = _address(ip)
        if address is not None and any(address in net for net in self._apple):
            return Verdict(True, "apple_privacy_proxy")
        if user_agent.strip() == MPP_USER_AGENT:
            return Verdict(True, "apple_privacy_proxy")
        if address is not None and any(address in net for net in self._ranges):
            return Verdict(True, "known_machine_range")
        if method == "HEAD":
            return Verdict(True, "head_request")
        if not user_agent.strip():
            return Verdict(True, "no_user_agent")
        if self._scanner.search(user_agent):
            return Verdict(True, "scanner_user_agent")
        return HUMAN

    async def judge_open(self, workspace: str, send_id: str, ip: str, user_agent: str) -> Verdict:
        verdict = self.by_request(ip, user_agent, "GET")
        await self._first_touch(workspace, send_id)
        return verdict

    async def judge_click(
        self, workspace: str, send_id: str, url: str, ip: str, user_agent: str, method: str
    ) -> Verdict:
        verdict = self.by_request(ip, user_agent, method)
        if verdict.machine:
            await self._first_touch(workspace, send_id)
            return verdict
        try:
            first = await self._first_touch(workspace, send_id)
            if first is not None and time.time() - first < self.first_touch:
                return Verdict(True, "too_fast")
            links = await self.kv.window_add(
                f"ingest:clicks:{workspace}:{send_id}", self.burst_window, member=url
            )
        except KeyValueError as error:
            log.warning("machine-click check skipped: %s", type(error).__name__)
            return HUMAN
        if links >= self.burst_links:
            return Verdict(True, "link_burst")
        return HUMAN

    async def _first_touch(self, workspace: str, send_id: str) -> float | None:
        """Record the send's first open or click; return when an earlier one happened."""
        key = f"ingest:touch:{workspace}:{send_id}"
        now = time.time()
        try:
            if await self.kv.set_if_absent(key, f"{now:.3f}".encode(), ttl=TOUCH_TTL):
                return None
            held = await self.kv.get(key)
        except KeyValueError as error:
            log.warning("first-touch record skipped: %s", type(error).__name__)
            return None
        try:
            return float(held) if held is not None else None
        except ValueError:
            return None


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None
