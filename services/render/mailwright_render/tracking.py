"""Tracking at render time: signed click URLs, the open pixel, unsubscribe URL and headers.

Tokens are signed with the SDK's `mailwright.tracking` (the ingest edge verifies them
with the same code). A `Tracker` serves one recipient's message: it signs each distinct
URL once, so a link that appears in both the HTML and the text part costs one HMAC.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from markupsafe import Markup, escape

from mailwright.tracking import TokenKind, TrackingSigner

_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")
_TRACKABLE = ("https://", "http://")
_PIXEL_START = Markup('<img src="')
_PIXEL_END = Markup(
    '" width="1" height="1" alt="" border="0"'
    ' style="display:block;width:1px;height:1px;border:0;" />'
)


@dataclass(frozen=True)
class TrackingConfig:
    """Where tracking URLs point and how long their tokens live.

    `base_url` is the public HTTPS origin of the ingest edge. `unsubscribe_mailto`, if
    set, is the address offered in `List-Unsubscribe` beside the one-click URL.
    """

    base_url: str
    signer: TrackingSigner
    click_ttl: timedelta = timedelta(days=180)
    open_ttl: timedelta = timedelta(days=180)
    unsubscribe_ttl: timedelta = timedelta(days=400)
    unsubscribe_mailto: str | None = None
    track_clicks: bool = True
    track_opens: bool = True

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("tracking base_url must be an absolute http(s) URL")

    @functools.cached_property
    def unsubscribe_prefix(self) -> str:
        return self.base_url.rstrip("/") + "/u/"

    @functools.cached_property
    def ttl_seconds(self) -> tuple[int, int, int]:
        """Lifetimes of click, open and unsubscribe tokens, in whole seconds."""
        return (
            int(self.click_ttl.total_seconds()),
            int(self.open_ttl.total_seconds()),
            int(self.unsubscribe_ttl.total_seconds()),
        )

    @functools.cached_property
    def click_prefix(self) -> str:
        return self.base_url.rstrip("/") + "/t/c/"

    @functools.cached_property
    def pixel_parts(self) -> tuple[str, str]:
        """The open pixel's HTML around its token (a token is URL-safe base64: no escaping)."""
        start = _PIXEL_START + escape(self.base_url.rstrip("/") + "/t/o/")
        return str(start), ".gif" + str(_PIXEL_END)


class Tracker:
    """Signs one recipient's tracking URLs for one send; the tokens name the recipient's
    profile, so the edge records opens, clicks and unsubscribes against the person."""

    def __init__(
        self,
        config: TrackingConfig,
        workspace: str,
        send_id: str,
        issued_at: float,
        profile_id: str = "",
    ) -> None:
        self._config = config
        signer = config.signer.for_send(workspace, send_id, profile_id)
        # Expiries count from the start of the hour, so a whole batch shares them.
        now = int(issued_at) // 3600 * 3600
        click_ttl, open_ttl, unsubscribe_ttl = config.ttl_seconds
        self._click = signer.bind(TokenKind.CLICK, now + click_ttl)
        self._open = signer.bind(TokenKind.OPEN, now + open_ttl)
        self._unsubscribe_signer = signer.bind(TokenKind.UNSUBSCRIBE, now + unsubscribe_ttl)
        self._click_base = config.click_prefix
        self._unsubscribe_prefix = config.unsubscribe_prefix
        self._track_clicks = config.track_clicks
        self._clicks: dict[str, str] = {}
        self._unsubscribe: str | None = None

    def click(self, url: str) -> str:
        """The tracked URL for `url`, or `url` itself when it is not trackable."""
        tracked = self._clicks.get(url)
        if tracked is not None:
            return tracked
        target = url.strip()
        if (
            self._track_clicks
            and target.startswith(_TRACKABLE)
            and not target.startswith(self._unsubscribe_prefix)
        ):
            # The common case, lower-case http(s): sign it.
            tracked = self._click_base + self._click.sign(target)
            self._clicks[url] = tracked
            return tracked
        lowered = target[:11].lower()
        if lowered.startswith(_UNSAFE_SCHEMES):
            tracked = "#"
        elif (
            not self._config.track_clicks
            or not lowered.startswith(("https://", "http://"))
            or target.startswith(self._unsubscribe_prefix)
        ):
            tracked = target
        else:
            tracked = self._click_base + self._click.sign(target)
        self._clicks[url] = tracked
        return tracked

    def unsubscribe_url(self) -> str:
        if self._unsubscribe is None:
            self._unsubscribe = self._unsubscribe_prefix + self._unsubscribe_signer.sign()
        return self._unsubscribe

    def open_pixel(self) -> Markup:
        if not self._config.track_opens:
            return Markup("")
        start, end = self._config.pixel_parts
        return Markup(start + self._open.sign() + end)  # noqa: S704 - escaped parts, base64 token

    def headers(self) -> tuple[tuple[str, str], ...]:
        """`List-Unsubscribe` and, for the HTTPS URL, RFC 8058's one-click header."""
        url = self.unsubscribe_url()
        targets = [f"<{url}>"]
        mailto = self._config.unsubscribe_mailto
        if mailto:
            token = url.rsplit("/", 1)[-1]
            targets.append(f"<mailto:{mailto}?subject=unsubscribe-{token}>")
        headers = [("List-Unsubscribe", ", ".join(targets))]
        if url.startswith("https://"):
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return tuple(headers)


def untracked_click(url: str) -> str:
    """A link as written, minus script URLs, for renders without tracking (previews)."""
    target = url.strip()
    return "#" if target.lower().startswith(_UNSAFE_SCHEMES) else target
