"""The conformance suite of the email provider capability.

A plugin's test module subclasses `EmailProviderConformance` and provides a fixture named
`email_harness` returning an `EmailHarness`: how to open the provider against the fake,
make a message, count what the fake accepted, and make the fake refuse a message the way
the provider does for each kind of error (`ErrorCase`).

The suite checks the declared rate and batch size, that a send returns the provider's
message id, that every documented refusal maps to the right `ErrorKind`, that
`send_batch` gives one outcome per message in order, that a repeated idempotency key
sends once (when the provider deduplicates), that throttling is waited out and, when it
persists, raised as `RATE_LIMITED`, that server errors are retried, and that refused
credentials raise `AUTH` from `send` and `send_batch` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest

from mailwright.connectors import EmailProvider, ErrorKind, OutboundMessage, ProviderError
from mailwright.testing.fakes import RecordedWaits


@dataclass(frozen=True)
class ErrorCase:
    """One way the provider refuses a message, and the kind it must map to.

    `arrange(message)` makes the fake answer `message` (by its recipient, say) that way.
    """

    name: str
    expected: ErrorKind
    arrange: Callable[[OutboundMessage], None]


class EmailHarness(Protocol):
    """What the email provider suite needs to know and do for one connector."""

    deduplicates: bool
    """True when the provider sends a message once per idempotency key."""

    def open(self) -> EmailProvider:
        """A new provider configured to talk to the fake server."""
        ...

    def message(self, n: int) -> OutboundMessage:
        """Message number `n` (its own send id, idempotency key and recipient)."""
        ...

    def accepted(self) -> int:
        """How many messages the fake provider accepted for sending."""
        ...

    def error_cases(self) -> Sequence[ErrorCase]:
        """The refusals the provider documents, each with the kind it maps to."""
        ...

    def rate_limit(self, times: int) -> float | None:
        """Throttle the next `times` requests; return the wait asked for, if any."""
        ...

    def server_error(self, times: int) -> None:
        """Fail the next `times` requests with a 5xx."""
        ...

    def refuse_credentials(self) -> None:
        """Answer every request as to a revoked or wrong key."""
        ...


class EmailProviderConformance:
    """Tests every email provider must pass; subclass it and provide `email_harness`."""

    @pytest.mark.asyncio
    async def test_declares_its_rate_and_batch_size(self, email_harness: EmailHarness) -> None:
        provider = email_harness.open()
        try:
            assert provider.rate_limit.per_second > 0
            assert provider.max_batch_size >= 1
        finally:
            await provider.aclose()

    @pytest.mark.asyncio
    async def test_send_returns_the_provider_message_id(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        provider = email_harness.open()
        try:
            message_id = await provider.send(email_harness.message(1))
        finally:
            await provider.aclose()
        assert isinstance(message_id, str)
        assert message_id
        assert email_harness.accepted() == 1

    @pytest.mark.asyncio
    async def test_provider_refusals_map_to_their_error_kinds(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        cases = email_harness.error_cases()
        assert cases, "declare at least the provider's hard bounce and invalid request"
        wrong: list[str] = []
        provider = email_harness.open()
        try:
            for n, case in enumerate(cases, start=100):
                message = email_harness.message(n)
                case.arrange(message)
                try:
                    await provider.send(message)
                except ProviderError as error:
                    if error.kind is not case.expected:
                        wrong.append(f"{case.name}: {error.kind.value}, not {case.expected.value}")
                else:
                    wrong.append(f"{case.name}: sent, not {case.expected.value}")
        finally:
            await provider.aclose()
        assert not wrong, "; ".join(wrong)

    @pytest.mark.asyncio
    async def test_send_batch_gives_one_outcome_per_message_in_order(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        case = email_harness.error_cases()[0]
        messages = [email_harness.message(n) for n in range(3)]
        case.arrange(messages[1])
        provider = email_harness.open()
        try:
            outcomes = await provider.send_batch(messages)
        finally:
            await provider.aclose()
        assert [o.send_id for o in outcomes] == [m.send_id for m in messages]
        assert outcomes[0].ok
        assert outcomes[2].ok
        assert outcomes[1].error is not None
        assert outcomes[1].error.kind is case.expected

    @pytest.mark.asyncio
    async def test_a_repeated_idempotency_key_sends_once(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        if not email_harness.deduplicates:
            pytest.skip("the provider does not deduplicate by idempotency key")
        message = email_harness.message(7)
        provider = email_harness.open()
        try:
            await provider.send(message)
            await provider.send(message)
        finally:
            await provider.aclose()
        assert email_harness.accepted() == 1

    @pytest.mark.asyncio
    async def test_throttling_is_waited_out(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        asked = email_harness.rate_limit(1)
        provider = email_harness.open()
        try:
            assert await provider.send(email_harness.message(1))
        finally:
            await provider.aclose()
        assert recorded_waits.seconds, "use mailwright.connectors.http to wait"
        if asked is not None:
            assert any(wait == pytest.approx(asked, rel=0.1) for wait in recorded_waits.seconds)

    @pytest.mark.asyncio
    async def test_persistent_throttling_is_raised_as_rate_limited(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        email_harness.rate_limit(1000)
        provider = email_harness.open()
        try:
            with pytest.raises(ProviderError) as caught:
                await provider.send(email_harness.message(1))
        finally:
            await provider.aclose()
        assert caught.value.kind is ErrorKind.RATE_LIMITED
        assert caught.value.retryable

    @pytest.mark.asyncio
    async def test_server_errors_are_retried(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        email_harness.server_error(2)
        provider = email_harness.open()
        try:
            assert await provider.send(email_harness.message(1))
        finally:
            await provider.aclose()
        assert email_harness.accepted() == 1

    @pytest.mark.asyncio
    async def test_refused_credentials_raise_auth_from_send_and_send_batch(
        self, email_harness: EmailHarness, recorded_waits: RecordedWaits
    ) -> None:
        email_harness.refuse_credentials()
        provider = email_harness.open()
        try:
            with pytest.raises(ProviderError) as single:
                await provider.send(email_harness.message(1))
            with pytest.raises(ProviderError) as batch:
                await provider.send_batch([email_harness.message(2), email_harness.message(3)])
        finally:
            await provider.aclose()
        assert single.value.kind is ErrorKind.AUTH
        assert batch.value.kind is ErrorKind.AUTH
