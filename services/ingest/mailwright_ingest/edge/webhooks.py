"""`POST /webhooks/{connector}/{workspace}`: a provider's signed request, verified by its
connector plugin (the webhook capability), deduplicated by delivery id, published.

`GET` and `HEAD` go to the plugin too: providers check a webhook URL with them when it
is registered (Mailchimp audiences with a GET carrying the URL's secret, Mandrill with a
HEAD); the plugin decides whether that is a validation (200, nothing published) or not
(its refusal). The plugin gets the full URL, query string included (Mailchimp's secret
is in it) and the raw body untouched (signatures are over bytes). Answers:
forged or stale signature 401, unreadable request 400 (both record nothing); a delivery
seen before 200 with `"status": "duplicate"` and nothing processed (providers retry until
they get a 2xx, so a replay must not look like a failure); 503 with `Retry-After` when the
bus is down, and the delivery is not marked seen, so the provider's retry gets through.
An unknown connector, or one without a webhook, is 404.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import (
    CapabilityMissing,
    ConnectorConfigError,
    Headers,
    RejectReason,
    UnknownConnector,
    Webhook,
    WebhookDelivery,
    WebhookRejected,
    WebhookRequest,
)
from mailwright.names import WORKSPACE_ID
from mailwright.plugins import Plugins
from mailwright.runtime.settings import Settings
from mailwright_ingest.catalog import Catalog
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.edge.common import NO_STORE, HttpError, guarded, read_body
from mailwright_ingest.intake import Intake, Outcome, Status

log = logging.getLogger(__name__)

MIN_DELIVERY_MEMORY = timedelta(days=3)
"""Providers retry for up to 48 h (Shopify) or 3 days (Stripe): remember deliveries at
least that long, whatever the workspace's dedup window."""

_ANSWERS = {
    RejectReason.FORGED: 401,
    RejectReason.STALE: 401,
    RejectReason.MALFORMED: 400,
}


def delivery_key(workspace: str, connector: str, delivery_id: str) -> str:
    return f"ingest:webhook:{workspace}:{connector}:{delivery_id[:300]}"


class WebhookEdge:
    def __init__(
        self,
        intake: Intake,
        catalog: Catalog,
        plugins: Plugins,
        settings: Settings,
        ingest_settings: IngestSettings,
    ) -> None:
        self.intake = intake
        self.catalog = catalog
        self.plugins = plugins
        self.settings = settings
        self.limit = ingest_settings.webhook_max_bytes
        self._opened: dict[str, Webhook] = {}

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route(
                "/webhooks/{connector}/{workspace}",
                guarded(self.receive),
                methods=["POST", "GET", "HEAD"],
            )
        ]

    async def aclose(self) -> None:
        for webhook in self._opened.values():
            try:
                await webhook.aclose()
            except Exception:
                log.exception("closing a webhook failed")
        self._opened.clear()

    def _webhook(self, connector: str) -> Webhook:
        opened = self._opened.get(connector)
        if opened is not None:
            return opened
        try:
            opened = self.plugins.connectors.open_webhook(
                connector, self.settings.connectors.get(connector)
            )
        except (UnknownConnector, CapabilityMissing):
            raise HttpError(404, f"no connector {connector[:60]!r} receives webhooks") from None
        except ConnectorConfigError as error:
            log.error("webhook connector %s is not configured: %s", connector, error)
            raise HttpError(503, f"connector {connector!r} is not configured") from None
        self._opened[connector] = opened
        return opened

    async def receive(self, request: Request) -> Response:
        connector = request.path_params["connector"]
        workspace = request.path_params["workspace"]
        if not WORKSPACE_ID.match(workspace):
            raise HttpError(404, "no such workspace")
        webhook = self._webhook(connector)
        body = await read_body(request, self.limit)
        incoming = WebhookRequest(
            method=request.method,
            url=str(request.url),
            headers=Headers(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in request.headers.raw
            ),
            body=body,
            received_at=datetime.now(UTC),
        )
        try:
            delivery = await webhook.verify(incoming)
        except WebhookRejected as rejected:
            return self._refused(connector, rejected)
        key = delivery_key(workspace, connector, delivery.delivery_id)
        if await self.intake.kv.get(key) is not None:
            return _answer("duplicate", delivery)
        try:
            events = list(webhook.parse(incoming, delivery))
        except WebhookRejected as rejected:
            return self._refused(connector, rejected)
        except Exception as error:
            # A connector that trips over a payload: the payload is what is wrong for the
            # provider, and a 5xx would have it redeliver the same bytes forever.
            log.exception(
                "webhook %s could not parse delivery %s", connector, delivery.delivery_id[:60]
            )
            return HttpError(
                400,
                f"malformed: connector {connector!r} could not read it ({type(error).__name__})",
            ).response()
        # UNAVAILABLE and the like become 503 in `guarded`; the delivery stays unseen.
        outcomes = await self._ingest(workspace, connector, events)
        policy = await self.catalog.ensure(workspace)
        memory = max(policy.dedup_window, MIN_DELIVERY_MEMORY)
        await self.intake.kv.set(key, b"1", ttl=memory)
        counts = {status: 0 for status in Status}
        for outcome in outcomes:
            counts[outcome.status] += 1
            if outcome.status is Status.REJECTED:
                log.warning(
                    "webhook %s delivery %s: event %d rejected: %s",
                    connector,
                    delivery.delivery_id[:60],
                    outcome.index,
                    "; ".join(f"{v.field}: {v.description}" for v in outcome.violations),
                )
        return _answer(
            "accepted",
            delivery,
            accepted=counts[Status.ACCEPTED],
            duplicate=counts[Status.DUPLICATE],
            rejected=counts[Status.REJECTED],
        )

    async def _ingest(
        self, workspace: str, connector: str, events: Sequence[Event]
    ) -> list[Outcome]:
        """Ingest a delivery's events. Those the connector marked `backfill` state a past
        fact as of when it happened (a consent given months ago, told now) and are
        ingested as imported history: accepted however old (up to ingest's `MAX_PAST`),
        and they trigger no journey. The others are live events, held to the
        workspace's `max_past`."""
        outcomes: list[Outcome] = []
        for backfill in (False, True):
            chosen = [i for i, event in enumerate(events) if event.backfill is backfill]
            if not chosen:
                continue
            got = await self.intake.ingest(
                workspace,
                [events[i] for i in chosen],
                source=connector,
                field=_names(chosen),
                backfill=backfill,
            )
            outcomes += [dataclasses.replace(o, index=chosen[o.index]) for o in got]
        return sorted(outcomes, key=lambda outcome: outcome.index)

    def _refused(self, connector: str, rejected: WebhookRejected) -> Response:
        if rejected.reason is RejectReason.REPLAYED:
            return JSONResponse({"success": True, "status": "duplicate"}, headers=NO_STORE)
        log.info("webhook %s refused: %s", connector, rejected.reason.value)
        status = _ANSWERS.get(rejected.reason, 400)
        return HttpError(status, f"{rejected.reason.value}: {rejected.detail}").response()


def _names(indexes: list[int]) -> Callable[[int], str]:
    """How violations name event j of a part of a delivery: by its place in the whole."""
    return lambda j: f"events[{indexes[j]}]"


def _answer(status: str, delivery: WebhookDelivery, **counts: int) -> JSONResponse:
    body: dict[str, object] = {
        "success": True,
        "status": status,
        "delivery_id": delivery.delivery_id,
    }
    body.update(counts)
    return JSONResponse(body, headers=NO_STORE)
