"""The connectors' HTTP helper: retries on 429/5xx honouring Retry-After, full-jitter
backoff, final answers mapped to ProviderError, pacing — against a real local server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors.http import (
    Backoff,
    Fail,
    Pacer,
    ProviderHttp,
    Retry,
    retry_after,
)
from mailwright.testing.fakes import FakeServer, Fault, RecordedWaits

StartFake = Callable[..., FakeServer]


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True, "path": request.url.path})


async def throttled_body(request: Request) -> Response:
    return JSONResponse({"throttled": True})


def app() -> Starlette:
    return Starlette(
        routes=[
            Route("/items", ok, methods=["GET", "POST"]),
            Route("/graphql", throttled_body, methods=["POST"]),
        ]
    )


@pytest.fixture
def server(fake_server: StartFake) -> FakeServer:
    return fake_server(app())


def client(server: FakeServer, **options: object) -> ProviderHttp:
    return ProviderHttp("acme", server.url, backoff=Backoff(attempts=4), **options)  # type: ignore[arg-type]


async def test_a_successful_answer_is_returned(server: FakeServer) -> None:
    http = client(server)
    body = await http.get_json("/items")
    await http.aclose()
    assert body == {"ok": True, "path": "/items"}


async def test_429_waits_the_retry_after_then_succeeds(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(429, {"error": "slow"}, headers={"Retry-After": "7"}))
    http = client(server)
    assert await http.get_json("/items")
    await http.aclose()
    assert recorded_waits.seconds == [7.0]
    assert len(server.requests_to("/items")) == 2


async def test_5xx_is_retried_with_jittered_backoff_within_the_cap(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(503, times=3))
    http = ProviderHttp("acme", server.url, backoff=Backoff(attempts=4, base=1.0, cap=3.0))
    assert await http.get_json("/items")
    await http.aclose()
    assert len(recorded_waits.seconds) == 3
    for retry, wait in enumerate(recorded_waits.seconds, start=1):
        assert 0 <= wait <= min(3.0, 2 ** (retry - 1))


async def test_attempts_running_out_on_429_raises_rate_limited_with_retry_after(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(429, headers={"Retry-After": "2"}, times=None))
    http = client(server)
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == timedelta(seconds=2)
    assert caught.value.code == "429"
    assert len(server.requests) == 4


async def test_attempts_running_out_on_5xx_raises_transient(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(502, "bad gateway", times=None))
    http = client(server)
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert caught.value.retryable


async def test_a_wait_longer_than_max_wait_fails_at_once(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(429, headers={"Retry-After": "86400"}))
    http = ProviderHttp("acme", server.url, backoff=Backoff(max_wait=60))
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == timedelta(days=1)
    assert not recorded_waits.seconds


@pytest.mark.parametrize(("status", "kind"), [(401, ErrorKind.AUTH), (403, ErrorKind.AUTH)])
async def test_refused_credentials_are_auth_and_not_retried(
    server: FakeServer, recorded_waits: RecordedWaits, status: int, kind: ErrorKind
) -> None:
    server.fail(Fault(status, {"message": "bad token"}))
    http = client(server)
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is kind
    assert "bad token" in caught.value.detail
    assert len(server.requests) == 1


async def test_a_bad_request_is_invalid_with_the_provider_message_redacted(
    server: FakeServer,
) -> None:
    server.fail(Fault(400, {"message": "ada@example.com is not a valid address"}))
    http = client(server)
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is ErrorKind.INVALID
    assert "ada@example.com" not in str(caught.value)
    assert "<address>" in caught.value.detail


async def test_a_classifier_turns_a_200_into_a_retry(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    calls = 0

    def classify(response: httpx.Response) -> Retry | None:
        nonlocal calls
        calls += 1
        return Retry(ErrorKind.RATE_LIMITED, "throttled", after=1.5) if calls == 1 else None

    http = client(server, classify=classify)
    assert await http.post_json("/graphql", {"query": "{}"})
    await http.aclose()
    assert recorded_waits.seconds == [1.5]


async def test_a_classifier_can_make_an_answer_final(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(429, {"policyName": "DAILY"}))
    daily = ProviderError(ErrorKind.RATE_LIMITED, "daily limit reached", code="DAILY")

    def classify(response: httpx.Response) -> Fail | None:
        return Fail(daily) if response.status_code == 429 else None

    http = client(server, classify=classify)
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value is daily
    assert not recorded_waits.seconds


async def test_a_non_idempotent_request_is_not_retried_after_a_500(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(500))
    http = client(server)
    with pytest.raises(ProviderError):
        await http.request("POST", "/items", json={}, idempotent=False)
    await http.aclose()
    assert len(server.requests) == 1


async def test_a_non_idempotent_request_is_retried_after_a_429(
    server: FakeServer, recorded_waits: RecordedWaits
) -> None:
    server.fail(Fault(429, headers={"Retry-After": "1"}))
    http = client(server)
    await http.request("POST", "/items", json={}, idempotent=False)
    await http.aclose()
    assert len(server.requests) == 2


async def test_an_unreachable_provider_is_transient_after_retries(
    recorded_waits: RecordedWaits,
) -> None:
    stopped = FakeServer(app()).start()
    stopped.stop()
    http = ProviderHttp("acme", stopped.url, backoff=Backoff(attempts=3))
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert len(recorded_waits.seconds) == 2


async def test_a_body_that_is_not_json_is_transient(fake_server: StartFake) -> None:
    async def html(request: Request) -> Response:
        return Response("<html>maintenance</html>", media_type="text/html")

    server = fake_server(Starlette(routes=[Route("/items", html)]))
    http = client(server)
    with pytest.raises(ProviderError) as caught:
        await http.get_json("/items")
    await http.aclose()
    assert caught.value.kind is ErrorKind.TRANSIENT


async def test_the_pacer_spaces_requests_beyond_its_burst(recorded_waits: RecordedWaits) -> None:
    pacer = Pacer(per_second=10, burst=3)
    for _ in range(5):
        await pacer.take()
    assert len(recorded_waits.seconds) == 2
    assert all(0 < wait <= 0.1 for wait in recorded_waits.seconds)


def response_with(header: str | None) -> httpx.Response:
    headers = {"Retry-After": header} if header is not None else {}
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("0", 0.0), ("1.5", 1.5), (None, None), ("soon", None), ("-3", None)],
)
def test_retry_after_reads_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after(response_with(header)) == seconds


def test_retry_after_reads_an_http_date() -> None:
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after(response_with(header), now=now) == 90.0


@given(retry=st.integers(min_value=1, max_value=200))
def test_full_jitter_stays_between_zero_and_the_capped_exponential(retry: int) -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    assert 0 <= backoff.delay(retry) <= min(30.0, 0.5 * 2 ** (retry - 1))


def test_the_fake_server_answers_from_its_own_thread_while_the_loop_is_busy(
    server: FakeServer,
) -> None:
    async def call() -> int:
        async with httpx.AsyncClient() as http:
            return (await http.get(server.url + "/items")).status_code

    assert asyncio.run(call()) == 200
