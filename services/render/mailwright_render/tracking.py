"""Tracking at render time: signed click URLs, the open pixel, unsubscribe URL and headers.

Tokens are signed with the SDK's `mailwright.tracking` (the ingest edge verifies them
with the same code). A `Tracker` serves one recipient's message: it signs each distinct
URL once, so a link that appears in both the HTML and the text part costs one HMAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from markupsafe import Markup, escape

from mailwright.tracking import TokenKind, TrackingSigner, tracking_url

_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")
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

    @property
    def unsubscribe_prefix(self) -> str:
        return self.base_url.rstrip("/") + "/u/"


class Tracker:
    """Signs one recipient's tracking URLs for one send."""

    def __init__(
        self, config: TrackingConfig, workspace: str, send_id: str, issued_at: float
    ) -> None:
        self._config = config
        signer = config.signer.for_send(workspace, send_id)
        # Expiries count from the start of the hour, so a whole batch shares them.
        now = int(issued_at) // 3600 * 3600
        self._click = signer.bind(TokenKind.CLICK, now + int(config.click_ttl.total_seconds()))
        self._open = signer.bind(TokenKind.OPEN, now + int(config.open_ttl.total_seconds()))
        self._unsubscribe_signer = signer.bind(
            TokenKind.UNSUBSCRIBE, now + int(config.unsubscribe_ttl.total_seconds())
        )
        base = config.base_url.rstrip("/")
        self._click_base = base + "/t/c/"
        self._unsubscribe_prefix = base + "/u/"
        self._clicks: dict[str, str] = {}
        self._unsubscribe: str | None = None

    def click(self, url: str) -> str:
        """The tracked URL for `url`, or `url` itself when it is not trackable."""
        tracked = self._clicks.get(url)
        if tracked is not None:
            return tracked
        target = url.strip()
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
        url = tracking_url(self._config.base_url, TokenKind.OPEN, self._open.sign())
        return _PIXEL_START + escape(url) + _PIXEL_END

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
