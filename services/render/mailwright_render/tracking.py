"""Tracking at render time: signed click URLs, the open pixel, unsubscribe URL and headers.

Tokens are signed with the SDK's `mailwright.tracking` (the ingest edge verifies them
with the same code). A `Tracker` serves one recipient's message: it signs each distinct
URL once, so a link that appears in both the HTML and the text part costs one HMAC.
What all recipients' tokens share in an hour (`TokenTails`: expiries, the open and
unsubscribe fields, the fields of the template's fixed links) is encoded once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from markupsafe import Markup, escape

from mailwright.tracking import ClickTails, TokenKind, TrackingSigner, token_tail
from mailwright_render.guards import marked

_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")
_TRACKABLE = ("https://", "http://")
_PIXEL_START = Markup('<img src="')
_EMPTY = Markup("")
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


class TokenTails:
    """What the tokens of every recipient share within one hour: their expiries (which
    count from the start of the hour), the encoded open and unsubscribe tails, and the
    click tails of a template's fixed links. A renderer keeps the current hour's, so
    per recipient only the HMACs remain. It also holds the configuration's URL prefixes,
    read on every tracked link."""

    __slots__ = (
        "_fixed",
        "click_prefix",
        "clicks",
        "config",
        "hour",
        "open",
        "track_clicks",
        "unsubscribe",
        "unsubscribe_prefix",
    )

    def __init__(self, config: TrackingConfig, hour: int) -> None:
        click_ttl, open_ttl, unsubscribe_ttl = config.ttl_seconds
        self.config = config
        self.hour = hour
        self.clicks = ClickTails(hour + click_ttl)
        self.open = token_tail(TokenKind.OPEN, hour + open_ttl)
        self.unsubscribe = token_tail(TokenKind.UNSUBSCRIBE, hour + unsubscribe_ttl)
        self.track_clicks = config.track_clicks
        self.click_prefix = config.click_prefix
        self.unsubscribe_prefix = config.unsubscribe_prefix
        self._fixed: dict[str, bytes] = {}

    def fixed(self, url: str) -> bytes:
        """The click tail of a URL written in a template, encoded once per hour."""
        tail = self._fixed.get(url)
        if tail is None:
            if len(self._fixed) >= _MAX_FIXED_URLS:
                self._fixed.clear()
            tail = self._fixed[url] = self.clicks.tail(url)
        return tail


_MAX_FIXED_URLS = 4096


def issued_hour(issued_at: float) -> int:
    return int(issued_at) // 3600 * 3600


class Tracker:
    """Signs one recipient's tracking URLs for one send; the tokens name the recipient's
    profile, so the edge records opens, clicks and unsubscribes against the person.

    Each distinct URL is signed once per message (a link in both the HTML and the text
    part costs one HMAC)."""

    __slots__ = ("_clicks", "_signer", "_tails", "_unsubscribe")

    def __init__(
        self,
        config: TrackingConfig,
        workspace: str,
        send_id: str,
        issued_at: float,
        profile_id: str = "",
        tails: TokenTails | None = None,
    ) -> None:
        self._signer = config.signer.for_send(workspace, send_id, profile_id)
        hour = int(issued_at) // 3600 * 3600
        # Expiries count from the start of the hour, so a whole batch shares them.
        if tails is None or tails.hour != hour or tails.config is not config:
            tails = TokenTails(config, hour)
        self._tails = tails
        self._clicks: dict[str, str] = {}
        self._unsubscribe: str | None = None

    @property
    def tails(self) -> TokenTails:
        return self._tails

    def click(self, url: str) -> str:
        """The tracked URL for a rendered `url`, or `url` itself when it is not trackable."""
        tracked = self._clicks.get(url)
        if tracked is None:
            tracked = self._clicks[url] = self._track(url, fixed=False)
        return tracked

    def fixed_click(self, url: str) -> str:
        """`click` for a URL written in the template: its tail is encoded once an hour."""
        tracked = self._clicks.get(url)
        if tracked is None:
            tracked = self._clicks[url] = self._track(url, fixed=True)
        return tracked

    def _track(self, url: str, *, fixed: bool) -> str:
        target = url.strip()
        tails = self._tails
        if not (
            tails.track_clicks
            and target.startswith(_TRACKABLE)
            and not target.startswith(tails.unsubscribe_prefix)
        ):
            return self._other(target)
        # The common case, lower-case http(s): sign it.
        if fixed:
            return tails.click_prefix + self._signer.sign_tail(tails.fixed(target))
        return tails.click_prefix + self._signer.sign_click(tails.clicks, target)

    def _other(self, target: str) -> str:
        """A URL off the common path: script URLs neutralised, upper-case schemes
        signed, everything else (mailto:, anchors, our own unsubscribe URL) as is."""
        tails = self._tails
        lowered = target[:11].lower()
        if lowered.startswith(_UNSAFE_SCHEMES):
            return "#"
        if (
            not tails.track_clicks
            or not lowered.startswith(_TRACKABLE)
            or target.startswith(tails.unsubscribe_prefix)
        ):
            return target
        return tails.click_prefix + self._signer.sign_tail(tails.clicks.tail(target))

    def unsubscribe_url(self) -> str:
        if self._unsubscribe is None:
            tails = self._tails
            self._unsubscribe = tails.unsubscribe_prefix + self._signer.sign_tail(tails.unsubscribe)
        return self._unsubscribe

    def open_pixel(self) -> Markup:
        config = self._tails.config
        if not config.track_opens:
            return _EMPTY
        start, end = config.pixel_parts
        # Escaped parts around a base64url token: safe as it is.
        return marked(start + self._signer.sign_tail(self._tails.open) + end)

    def headers(self) -> tuple[tuple[str, str], ...]:
        """`List-Unsubscribe` and, for the HTTPS URL, RFC 8058's one-click header."""
        url = self.unsubscribe_url()
        mailto = self._tails.config.unsubscribe_mailto
        if mailto:
            token = url.rsplit("/", 1)[-1]
            targets = f"<{url}>, <mailto:{mailto}?subject=unsubscribe-{token}>"
        else:
            targets = f"<{url}>"
        if url.startswith("https://"):
            return (("List-Unsubscribe", targets), _ONE_CLICK)
        return (("List-Unsubscribe", targets),)


_ONE_CLICK = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")


def untracked_click(url: str) -> str:
    """A link as written, minus script URLs, for renders without tracking (previews)."""
    target = url.strip()
    return "#" if target.lower().startswith(_UNSAFE_SCHEMES) else target
