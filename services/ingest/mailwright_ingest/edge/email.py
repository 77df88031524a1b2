"""The email side of the edge: open pixel, click redirect, one-click unsubscribe.

- `GET /t/o/{token}.gif` answers a real 1x1 transparent GIF that no cache keeps, and
  records `Email Opened` when the token is genuine. The GIF is answered whatever the
  token, so a mail client never shows a broken image, but a forged or expired token
  records nothing.
- `GET /t/c/{token}` redirects (302) to the URL the token signs and records `Email Link
  Clicked`. A forged, expired or malformed token gets a 404 page and never a redirect:
  the target comes only from a verified token, so the edge is no open redirect.
- `GET /u/{token}` shows a confirmation page whose form POSTs back; `POST /u/{token}` is
  RFC 8058's one-click unsubscribe (the mail client POSTs `List-Unsubscribe=One-Click`)
  and records `Unsubscribed`. A GET never unsubscribes: link scanners follow GETs.

Events go on `events.email` with `send_id`, `url` (clicks), `machine` and
`machine_reason` properties. Version-2 tokens also name the recipient's profile: the
event carries it as `profile_id`, so the profile service applies it to that person
(engagement, consent). Delivery, which owns sends, updates the send by `send_id`.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailwright.common.v1 import event_pb2
from mailwright.errors import MailwrightError
from mailwright.tracking import (
    ExpiredToken,
    TokenKind,
    TrackingClaims,
    TrackingSigner,
    TrackingTokenError,
)
from mailwright_ingest.edge.common import guarded
from mailwright_ingest.edge.machine import MachineDetector, Verdict
from mailwright_ingest.events import MAX_USER_AGENT_CHARS
from mailwright_ingest.intake import Intake, Status

log = logging.getLogger(__name__)

# GIF89a, 1x1, a two-colour palette, colour 0 transparent, one pixel of colour 0.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
PAGE_HEADERS = {
    **NO_CACHE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
MAX_UNSUBSCRIBE_BODY = 4096


class EmailEdge:
    def __init__(self, intake: Intake, signer: TrackingSigner, detector: MachineDetector) -> None:
        self.intake = intake
        self.signer = signer
        self.detector = detector

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/t/o/{token}.gif", guarded(self.open_pixel), methods=["GET"]),
            Route("/t/c/{token}", guarded(self.click), methods=["GET"]),
            Route("/u/{token}", guarded(self.unsubscribe_page), methods=["GET"]),
            Route("/u/{token}", guarded(self.unsubscribe), methods=["POST"]),
        ]

    def _verify(self, token: str, kind: TokenKind) -> TrackingClaims | TrackingTokenError:
        try:
            return self.signer.verify(token, kind=kind)
        except TrackingTokenError as error:
            log.info("tracking token refused (%s): %s", kind.name, type(error).__name__)
            return error

    # -- opens and clicks ---------------------------------------------------------------

    async def open_pixel(self, request: Request) -> Response:
        claims = self._verify(request.path_params["token"], TokenKind.OPEN)
        if isinstance(claims, TrackingClaims):
            ip, agent = _client(request)
            verdict = await self.detector.judge_open(claims.workspace, claims.send_id, ip, agent)
            await self._record(claims, "Email Opened", request, verdict, {})
        return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)

    async def click(self, request: Request) -> Response:
        claims = self._verify(request.path_params["token"], TokenKind.CLICK)
        if not isinstance(claims, TrackingClaims) or not _redirectable(claims.url):
            expired = isinstance(claims, ExpiredToken)
            return _page(
                404,
                "This link has expired" if expired else "This link is not valid",
                "The address may have been copied incompletely. Nothing was recorded.",
            )
        assert claims.url is not None
        ip, agent = _client(request)
        verdict = await self.detector.judge_click(
            claims.workspace, claims.send_id, claims.url, ip, agent, request.method
        )
        await self._record(claims, "Email Link Clicked", request, verdict, {"url": claims.url})
        return RedirectResponse(claims.url, status_code=302, headers=NO_CACHE)

    async def _record(
        self,
        claims: TrackingClaims,
        name: str,
        request: Request,
        verdict: Verdict,
        extra: dict[str, Any],
    ) -> None:
        """Publish the event; an open or click that cannot be recorded must still show
        the image or reach the page, so a failure is logged, not answered."""
        event = _email_event(claims, name, request, str(uuid.uuid4()))
        event.properties.update(
            {**extra, "machine": verdict.machine, "machine_reason": verdict.reason}
        )
        try:
            await self.intake.ingest(
                claims.workspace, [event], source="tracking", field=lambda _: "event", trusted=True
            )
        except MailwrightError as error:
            log.warning("%s of send %s not recorded: %s", name, claims.send_id, error.message)

    # -- unsubscribe --------------------------------------------------------------------

    async def unsubscribe_page(self, request: Request) -> Response:
        claims = self._verify(request.path_params["token"], TokenKind.UNSUBSCRIBE)
        if not isinstance(claims, TrackingClaims):
            return _invalid_unsubscribe()
        form = (
            '<form method="post"><input type="hidden" name="source" value="page">'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return _page(
            200,
            "Unsubscribe from these emails?",
            "You will no longer receive this kind of email from us.",
            form,
        )

    async def unsubscribe(self, request: Request) -> Response:
        claims = self._verify(request.path_params["token"], TokenKind.UNSUBSCRIBE)
        if not isinstance(claims, TrackingClaims):
            return _invalid_unsubscribe()
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UNSUBSCRIBE_BODY:
                break
        one_click = b"List-Unsubscribe=One-Click" in body
        event = _email_event(claims, "Unsubscribed", request, f"unsubscribe-{claims.send_id}")
        event.properties.update({"method": "one-click" if one_click else "page"})
        try:
            (outcome,) = await self.intake.ingest(
                claims.workspace, [event], source="tracking", field=lambda _: "event", trusted=True
            )
        except MailwrightError as error:
            log.warning("unsubscribe of send %s failed: %s", claims.send_id, error.message)
            return _page(
                503,
                "We could not unsubscribe you just now",
                "Please try again in a minute.",
                headers={"Retry-After": "5"},
            )
        if outcome.status is Status.REJECTED:
            log.error(
                "unsubscribe event of send %s rejected: %s", claims.send_id, outcome.violations
            )
        return _page(200, "You are unsubscribed", "You will no longer receive these emails.")


def _client(request: Request) -> tuple[str, str]:
    ip = request.client.host if request.client is not None else ""
    agent = request.headers.get("user-agent", "")[:MAX_USER_AGENT_CHARS]
    return ip, agent


def _redirectable(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("https://", "http://"))  # type: ignore[union-attr]


def _email_event(
    claims: TrackingClaims, name: str, request: Request, message_id: str
) -> event_pb2.Event:
    ip, agent = _client(request)
    properties = struct_pb2.Struct()
    properties.update({"send_id": claims.send_id})
    return event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK,
        event=name,
        message_id=message_id,
        properties=properties,
        context=event_pb2.Context(ip=ip, user_agent=agent),
        profile_id=claims.profile_id,
    )


def _invalid_unsubscribe() -> Response:
    return _page(
        404,
        "This unsubscribe link is not valid",
        "It may have expired or been copied incompletely. Use the link in a recent email.",
    )


def _page(
    status: int, title: str, text: str, extra: str = "", headers: dict[str, str] | None = None
) -> HTMLResponse:
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font:16px/1.5 system-ui,sans-serif;max-width:32em;'
        'margin:4em auto;padding:0 1em">'
        f'<h1 style="font-size:1.4em">{html.escape(title)}</h1><p>{html.escape(text)}</p>'
        f"{extra}</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
