"""The conformance suite of the webhook capability.

A plugin's test module subclasses `WebhookConformance` and provides a fixture named
`webhook_harness` returning a `WebhookHarness`: how to open the connector's webhook, a
representative payload, and how the provider signs and redelivers a request.

The suite checks, through the same verify → dedup → parse sequence as ingest
(`mailwright.testing.webhooks.IngestDesk`): a valid request is accepted and parsed into
well-formed events with stable message ids; a tampered body, a missing signature, a
signature made with another secret and a second signature header are `FORGED`; a signed
timestamp outside the provider's window is `STALE` (skipped for providers that sign no
time); a replayed request and the provider's own redelivery carry the same delivery id and
are `REPLAYED`; a signed payload that cannot be read is `MALFORMED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from mailwright.common.v1.event_pb2 import EVENT_TYPE_UNSPECIFIED
from mailwright.connectors import RejectReason, Webhook, WebhookRejected, WebhookRequest
from mailwright.testing.webhooks import IngestDesk, tampered, with_header, without_headers


class WebhookHarness(Protocol):
    """What the webhook suite needs to know and do for one connector.

    A harness may also have `secret_parameter: str`, for providers that sign nothing and
    authenticate with a secret in the webhook URL (Mailchimp's audience webhooks): the
    query parameter that carries it. The suite then forges by dropping or repeating that
    parameter, and skips the tampered-body test (such a body is protected by TLS alone).
    """

    connector: str
    """The connector's name; every event's `source`."""
    signature_headers: Sequence[str]
    """The headers that carry the signature (the suite removes them to forge a request)."""
    window: timedelta | None
    """How far a signed timestamp may be from the time of receipt; None when the provider
    signs no timestamp."""

    def open(self) -> Webhook:
        """The connector's webhook, configured with the secret `sign` uses."""
        ...

    def sample_body(self, n: int = 0) -> bytes:
        """A valid payload of a topic the connector turns into events; different `n`,
        different deliveries (other event ids)."""
        ...

    def sign(
        self,
        body: bytes,
        *,
        signed_at: datetime,
        received_at: datetime,
        secret: str | None = None,
    ) -> WebhookRequest:
        """The request the provider would send with `body`, signed at `signed_at` with the
        configured secret (or `secret`), as ingest received it at `received_at`."""
        ...

    def redeliver(self, request: WebhookRequest, *, at: datetime) -> WebhookRequest:
        """The provider's retry of the same delivery, sent again at `at`."""
        ...


class WebhookConformance:
    """Tests every webhook must pass; subclass it and provide a `webhook_harness` fixture."""

    async def _receive(
        self, harness: WebhookHarness, request: WebhookRequest, desk: IngestDesk | None = None
    ) -> list[object]:
        webhook = harness.open()
        try:
            return list(await (desk or IngestDesk()).receive(webhook, request))
        finally:
            await webhook.aclose()

    async def _rejection(self, harness: WebhookHarness, request: WebhookRequest) -> RejectReason:
        with pytest.raises(WebhookRejected) as caught:
            await self._receive(harness, request)
        return caught.value.reason

    def _signed(
        self, harness: WebhookHarness, n: int = 0, secret: str | None = None
    ) -> WebhookRequest:
        now = datetime.now(UTC)
        body = harness.sample_body(n)
        return harness.sign(body, signed_at=now, received_at=now, secret=secret)

    @pytest.mark.asyncio
    async def test_valid_request_is_accepted_and_parsed_into_events(
        self, webhook_harness: WebhookHarness
    ) -> None:
        webhook = webhook_harness.open()
        try:
            request = self._signed(webhook_harness)
            delivery = await webhook.verify(request)
            events = webhook.parse(request, delivery)
        finally:
            await webhook.aclose()
        assert delivery.delivery_id
        assert events, "the sample payload becomes at least one event"
        for event in events:
            assert event.source == webhook_harness.connector
            assert event.message_id
            assert event.type != EVENT_TYPE_UNSPECIFIED
            assert event.user_id or event.anonymous_id, "ingest needs user_id or anonymous_id"

    @pytest.mark.asyncio
    async def test_parsing_is_stable(self, webhook_harness: WebhookHarness) -> None:
        webhook = webhook_harness.open()
        try:
            request = self._signed(webhook_harness)
            delivery = await webhook.verify(request)
            first = [e.message_id for e in webhook.parse(request, delivery)]
            second = [e.message_id for e in webhook.parse(request, delivery)]
        finally:
            await webhook.aclose()
        assert first == second

    @pytest.mark.asyncio
    async def test_tampered_body_is_forged(self, webhook_harness: WebhookHarness) -> None:
        if _secret_parameter(webhook_harness) is not None:
            pytest.skip("the provider signs nothing: its body is protected by TLS alone")
        request = tampered(self._signed(webhook_harness))
        assert await self._rejection(webhook_harness, request) is RejectReason.FORGED

    @pytest.mark.asyncio
    async def test_missing_signature_is_forged(self, webhook_harness: WebhookHarness) -> None:
        request = without_headers(self._signed(webhook_harness), *webhook_harness.signature_headers)
        parameter = _secret_parameter(webhook_harness)
        if parameter is not None:
            request = _with_query(request, [(k, v) for k, v in _query(request) if k != parameter])
        assert await self._rejection(webhook_harness, request) is RejectReason.FORGED

    @pytest.mark.asyncio
    async def test_signature_with_another_secret_is_forged(
        self, webhook_harness: WebhookHarness
    ) -> None:
        request = self._signed(webhook_harness, secret="not-the-secret-" + "x" * 20)
        assert await self._rejection(webhook_harness, request) is RejectReason.FORGED

    @pytest.mark.asyncio
    async def test_a_second_signature_header_is_refused(
        self, webhook_harness: WebhookHarness
    ) -> None:
        request = self._signed(webhook_harness)
        for name in webhook_harness.signature_headers:
            request = with_header(request, name, "c2Vjb25kLXNpZ25hdHVyZQ==")
        parameter = _secret_parameter(webhook_harness)
        if parameter is not None:
            request = _with_query(request, [*_query(request), (parameter, "second-secret")])
        reason = await self._rejection(webhook_harness, request)
        assert reason in (RejectReason.FORGED, RejectReason.MALFORMED)

    @pytest.mark.asyncio
    async def test_stale_signature_is_refused(self, webhook_harness: WebhookHarness) -> None:
        if webhook_harness.window is None:
            pytest.skip("the provider signs no timestamp; replays are caught by delivery id")
        now = datetime.now(UTC)
        old = now - webhook_harness.window - timedelta(minutes=1)
        request = webhook_harness.sign(
            webhook_harness.sample_body(), signed_at=old, received_at=now
        )
        assert await self._rejection(webhook_harness, request) is RejectReason.STALE

    @pytest.mark.asyncio
    async def test_signature_dated_in_the_future_is_refused(
        self, webhook_harness: WebhookHarness
    ) -> None:
        if webhook_harness.window is None:
            pytest.skip("the provider signs no timestamp")
        now = datetime.now(UTC)
        later = now + webhook_harness.window + timedelta(minutes=1)
        request = webhook_harness.sign(
            webhook_harness.sample_body(), signed_at=later, received_at=now
        )
        assert await self._rejection(webhook_harness, request) is RejectReason.STALE

    @pytest.mark.asyncio
    async def test_signature_inside_the_window_is_accepted(
        self, webhook_harness: WebhookHarness
    ) -> None:
        if webhook_harness.window is None:
            pytest.skip("the provider signs no timestamp")
        now = datetime.now(UTC)
        earlier = now - webhook_harness.window / 2
        request = webhook_harness.sign(
            webhook_harness.sample_body(), signed_at=earlier, received_at=now
        )
        assert await self._receive(webhook_harness, request)

    @pytest.mark.asyncio
    async def test_replayed_request_is_rejected_by_its_delivery_id(
        self, webhook_harness: WebhookHarness
    ) -> None:
        desk = IngestDesk()
        request = self._signed(webhook_harness)
        assert await self._receive(webhook_harness, request, desk)
        with pytest.raises(WebhookRejected) as caught:
            await self._receive(webhook_harness, request, desk)
        assert caught.value.reason is RejectReason.REPLAYED

    @pytest.mark.asyncio
    async def test_provider_redelivery_is_recognised_as_the_same_delivery(
        self, webhook_harness: WebhookHarness
    ) -> None:
        desk = IngestDesk()
        request = self._signed(webhook_harness)
        assert await self._receive(webhook_harness, request, desk)
        retry = webhook_harness.redeliver(request, at=datetime.now(UTC) + timedelta(seconds=30))
        with pytest.raises(WebhookRejected) as caught:
            await self._receive(webhook_harness, retry, desk)
        assert caught.value.reason is RejectReason.REPLAYED

    @pytest.mark.asyncio
    async def test_distinct_deliveries_have_distinct_ids(
        self, webhook_harness: WebhookHarness
    ) -> None:
        webhook = webhook_harness.open()
        try:
            one = await webhook.verify(self._signed(webhook_harness, 1))
            two = await webhook.verify(self._signed(webhook_harness, 2))
        finally:
            await webhook.aclose()
        assert one.delivery_id != two.delivery_id

    @pytest.mark.asyncio
    async def test_signed_payload_that_cannot_be_read_is_malformed(
        self, webhook_harness: WebhookHarness
    ) -> None:
        now = datetime.now(UTC)
        request = webhook_harness.sign(b"{not json", signed_at=now, received_at=now)
        assert await self._rejection(webhook_harness, request) is RejectReason.MALFORMED


def _secret_parameter(harness: WebhookHarness) -> str | None:
    value = getattr(harness, "secret_parameter", None)
    return value if isinstance(value, str) and value else None


def _query(request: WebhookRequest) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(request.url).query, keep_blank_values=True)


def _with_query(request: WebhookRequest, pairs: list[tuple[str, str]]) -> WebhookRequest:
    parts = urlsplit(request.url)
    return replace(request, url=urlunsplit(parts._replace(query=urlencode(pairs))))
