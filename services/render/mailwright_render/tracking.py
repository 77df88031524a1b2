"""Tracking at render time: signed click URLs, the open pixel, unsubscribe URL and headers.

Tokens are signed with the SDK's `mailwright.tracking` (the ingest edge verifies them
with the same code). A `Tracker` serves one recipient's message: it signs each distinct
URL once, so a link that appears in both the HTML and the text part costs one HMAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from markupsafe import Markup

from mailwright.tracking import TokenKind, TrackingClaims, TrackingSigner, tracking_url

_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")


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

    @property
    def unsubscribe_prefix(self) -> str:
        return self.base_url.rstrip("/") + "/u/"


class Tracker:
    """Signs one recipient's tracking URLs for one send."""

    def __init__(
        self, config: TrackingConfig, workspace: str, send_id: str, issued_at: float
    ) -> None:
        self._config = config
        self._workspace = workspace
        self._send_id = send_id
        self._now = int(issued_at)
        self._clicks: dict[str, str] = {}
        self._unsubscribe: str | None = None

    def _sign(self, kind: TokenKind, ttl: timedelta, url: str | None = None) -> str:
        claims = TrackingClaims(
            self._workspace, self._send_id, kind, self._now + int(ttl.total_seconds()), url
        )
        return tracking_url(self._config.base_url, kind, self._config.signer.sign(claims))

    def click(self, url: str) -> str:
        """The tracked URL for `url`, or `url` itself when it is not trackable."""
        target = url.strip()
        lowered = target.lower()
        if lowered.startswith(_UNSAFE_SCHEMES):
            return "#"
        if (
            not self._config.track_clicks
            or not lowered.startswith(("https://", "http://"))
            or target.startswith(self._config.unsubscribe_prefix)
        ):
            return target
        tracked = self._clicks.get(target)
        if tracked is None:
            tracked = self._sign(TokenKind.CLICK, self._config.click_ttl, target)
            self._clicks[target] = tracked
        return tracked

    def unsubscribe_url(self) -> str:
        if self._unsubscribe is None:
            self._unsubscribe = self._sign(TokenKind.UNSUBSCRIBE, self._config.unsubscribe_ttl)
        return self._unsubscribe

    def open_pixel(self) -> Markup:
        if not self._config.track_opens:
            return Markup("")
        url = self._sign(TokenKind.OPEN, self._config.open_ttl)
        return Markup(
            '<img src="{}" width="1" height="1" alt="" border="0"'
            ' style="display:block;width:1px;height:1px;border:0;" />'
        ).format(url)

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
