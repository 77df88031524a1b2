"""The SMTP email provider against real aiosmtpd servers on localhost."""

from __future__ import annotations

import asyncio
import email
import logging
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest

from mailwright.connectors import EmailProvider, ErrorKind, Headers, OutboundMessage, ProviderError
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.provider import SmtpEmailProvider
from mailwright_smtp.sink import SmtpSink

RECIPIENT = "ada.lovelace@example.org"
PASSWORD = "relay-password-do-not-log"


def outbound(number: int = 1, **changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "send_id": f"send-{number}",
        "idempotency_key": f"campaign-7:profile-{number}",
        "from_address": "Shop <news@shop.example>",
        "to_address": RECIPIENT,
        "subject": "Your cart misses you",
        "text": "Hello Ada, your cart is waiting.",
        "html": "<p>Hello Ada, your cart is waiting.</p>",
    }
    fields.update(changes)
    return OutboundMessage(**fields)


def config(port: int, **changes: Any) -> SmtpConfig:
    fields: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none"}
    fields.update(changes)
    return SmtpConfig(**fields)


async def sending(cfg: SmtpConfig, *messages: OutboundMessage) -> SmtpEmailProvider:
    provider = SmtpEmailProvider(cfg)
    try:
        for message in messages:
            await provider.send(message)
    finally:
        await provider.aclose()
    return provider


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_provider_implements_the_email_provider_protocol() -> None:
    provider = SmtpEmailProvider(config(2525, rate_per_second=5, burst=3, pool_size=2))

    assert isinstance(provider, EmailProvider)
    assert (provider.rate_limit.per_second, provider.rate_limit.burst) == (5, 3)
    assert provider.rate_limit.concurrency == 2


# -- DKIM -----------------------------------------------------------------------------------


def dkim_config(port: int, keys: Any) -> SmtpConfig:
    return config(
        port,
        dkim_domain="shop.example",
        dkim_selector="mw2025",
        dkim_private_key=keys.private_pem,
    )


def dns_for(keys: Any, asked: list[bytes]) -> Any:
    def lookup(name: bytes, timeout: float = 5) -> bytes:
        asked.append(name)
        return keys.dns_record if name == b"mw2025._domainkey.shop.example." else b""

    return lookup


async def test_a_sent_message_arrives_with_a_valid_dkim_signature(
    tmp_path: Path, dkim_keys: Any
) -> None:
    unsubscribe = Headers(
        {
            "List-Unsubscribe": "<https://mw.example/u/token>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    )
    async with SmtpSink(tmp_path) as sink:
        await sending(dkim_config(sink.port, dkim_keys), outbound(headers=unsubscribe))
        [path] = await sink.wait_for(1)

    asked: list[bytes] = []
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_for(dkim_keys, asked))
    assert asked == [b"mw2025._domainkey.shop.example."]


async def test_the_signature_covers_the_headers_that_matter(
    smtp_server: Any, dkim_keys: Any
) -> None:
    server = await smtp_server()
    headers = Headers({"List-Unsubscribe": "<https://mw.example/u/t>"})

    await sending(dkim_config(server.port, dkim_keys), outbound(headers=headers))

    parsed = email.message_from_bytes(server.recorder.messages[0].content)
    tags = dict(
        part.strip().split("=", 1) for part in " ".join(parsed["DKIM-Signature"].split()).split(";")
    )
    signed = [name.strip() for name in tags["h"].split(":")]
    for name in ("from", "to", "subject", "date", "message-id", "list-unsubscribe"):
        assert name in signed
    assert signed.count("from") == 2  # oversigned: a second From added later breaks it
    assert tags["c"] == "relaxed/relaxed"


async def test_a_message_changed_in_transit_fails_verification(
    smtp_server: Any, dkim_keys: Any
) -> None:
    server = await smtp_server()
    await sending(dkim_config(server.port, dkim_keys), outbound())

    tampered = server.recorder.messages[0].content.replace(b"your cart", b"your card")

    assert not dkim.verify(tampered, dnsfunc=dns_for(dkim_keys, []))


async def test_signing_in_worker_processes_gives_a_valid_signature(
    smtp_server: Any, dkim_keys: Any
) -> None:
    server = await smtp_server()

    await sending(
        dkim_config(server.port, dkim_keys).model_copy(update={"dkim_processes": 1}), outbound()
    )

    assert dkim.verify(server.recorder.messages[0].content, dnsfunc=dns_for(dkim_keys, []))


async def test_raw_mime_is_sent_as_given_with_a_message_id_added(
    smtp_server: Any, dkim_keys: Any
) -> None:
    server = await smtp_server()
    mime = (
        b"From: news@shop.example\nTo: ada.lovelace@example.org\nSubject: Raw\n"
        b"Date: Sat, 01 Mar 2025 12:00:00 +0000\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain\n\nPrepared by render.\n"
    )

    provider = SmtpEmailProvider(dkim_config(server.port, dkim_keys))
    message_id = await provider.send(outbound(mime=mime))
    await provider.aclose()

    content = server.recorder.messages[0].content
    assert b"Prepared by render." in content
    assert email.message_from_bytes(content)["Message-ID"] == f"<{message_id}>"
    assert dkim.verify(content, dnsfunc=dns_for(dkim_keys, []))


# -- identity of a send ----------------------------------------------------------------------


async def test_the_provider_message_id_is_the_message_id_header(smtp_server: Any) -> None:
    server = await smtp_server()
    provider = SmtpEmailProvider(config(server.port))

    message_id = await provider.send(outbound())
    await provider.aclose()

    parsed = email.message_from_bytes(server.recorder.messages[0].content)
    assert parsed["Message-ID"] == f"<{message_id}>"
    assert message_id.endswith("@shop.example")


async def test_a_retried_send_carries_the_same_message_id(smtp_server: Any) -> None:
    server = await smtp_server()
    provider = SmtpEmailProvider(config(server.port))

    first = await provider.send(outbound(1))
    again = await provider.send(outbound(1, send_id="send-1-retry"))
    other = await provider.send(outbound(2))
    await provider.aclose()

    assert first == again != other


async def test_the_envelope_uses_bare_addresses_and_the_bounce_address(smtp_server: Any) -> None:
    server = await smtp_server()

    await sending(config(server.port, envelope_from="bounces+x@mail.shop.example"), outbound())

    [received] = server.recorder.messages
    assert (received.mail_from, received.rcpt_tos) == ("bounces+x@mail.shop.example", [RECIPIENT])


# -- TLS and authentication -------------------------------------------------------------------


async def test_starttls_with_a_trusted_self_signed_certificate(
    smtp_server: Any, certificate: Any
) -> None:
    server = await smtp_server(tls_context=certificate.server_context(), require_starttls=True)

    await sending(
        config(server.port, security="starttls", ca_file=certificate.cert_file), outbound()
    )

    [received] = server.recorder.messages
    assert received.tls


async def test_starttls_refuses_an_untrusted_certificate(
    smtp_server: Any, certificate: Any
) -> None:
    server = await smtp_server(tls_context=certificate.server_context(), require_starttls=True)

    with pytest.raises(ProviderError) as caught:
        await sending(config(server.port, security="starttls"), outbound())

    assert caught.value.kind is ErrorKind.AUTH
    assert server.recorder.messages == []


async def test_starttls_is_required_when_configured(smtp_server: Any) -> None:
    server = await smtp_server()  # offers no STARTTLS

    with pytest.raises(ProviderError) as caught:
        await sending(config(server.port, security="starttls"), outbound())

    assert caught.value.kind is ErrorKind.AUTH
    assert server.recorder.messages == []


async def test_implicit_tls(smtp_server: Any, certificate: Any) -> None:
    server = await smtp_server(ssl_context=certificate.server_context())

    await sending(config(server.port, security="tls", ca_file=certificate.cert_file), outbound())

    [received] = server.recorder.messages
    assert received.tls


async def authenticating_server(
    smtp_server: Any, authenticator: Any, certificate: Any, password: str
) -> Any:
    """A relay that offers AUTH only after STARTTLS, as relays do."""
    return await smtp_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=authenticator("shop", password),
        auth_required=True,
    )


def tls_config(port: int, certificate: Any, **changes: Any) -> SmtpConfig:
    return config(port, security="starttls", ca_file=certificate.cert_file, **changes)


async def test_authentication_with_the_right_password(
    smtp_server: Any, authenticator: Any, certificate: Any
) -> None:
    server = await authenticating_server(smtp_server, authenticator, certificate, PASSWORD)

    await sending(
        tls_config(server.port, certificate, username="shop", password=PASSWORD), outbound()
    )

    assert len(server.recorder.messages) == 1


async def test_a_refused_login_is_an_auth_error_that_does_not_quote_the_password(
    smtp_server: Any, authenticator: Any, certificate: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await authenticating_server(smtp_server, authenticator, certificate, "another")
    cfg = tls_config(server.port, certificate, username="shop", password=PASSWORD)

    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as caught:
        await sending(cfg, outbound())

    assert caught.value.kind is ErrorKind.AUTH
    assert caught.value.code == "535"
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(cfg)
    assert server.recorder.messages == []


async def test_logs_carry_ids_but_no_address_or_secret(
    smtp_server: Any, authenticator: Any, certificate: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await authenticating_server(smtp_server, authenticator, certificate, PASSWORD)
    cfg = tls_config(server.port, certificate, username="shop", password=PASSWORD)

    with caplog.at_level(logging.DEBUG):
        await sending(cfg, outbound())

    # aiosmtpd (the test's server) logs the envelope itself; the client's logs must not.
    ours = [r for r in caplog.records if r.name.startswith("mailwright")]
    text = "\n".join(record.getMessage() for record in ours)
    assert "send-1" in text
    for leaked in (RECIPIENT, "news@shop.example", PASSWORD, "cart"):
        assert leaked not in text


# -- connection reuse ---------------------------------------------------------------------------


async def test_several_messages_travel_on_one_connection(smtp_server: Any) -> None:
    server = await smtp_server()

    provider = await sending(config(server.port), *(outbound(n) for n in range(5)))

    assert len(server.recorder.messages) == 5
    assert len(server.recorder.peers) == 1
    assert provider.connections_opened == 1


async def test_concurrent_sends_share_at_most_pool_size_connections(smtp_server: Any) -> None:
    server = await smtp_server()
    provider = SmtpEmailProvider(config(server.port, pool_size=2))

    await asyncio.gather(*(provider.send(outbound(n)) for n in range(8)))
    await provider.aclose()

    assert len(server.recorder.messages) == 8
    assert provider.connections_opened == 2


async def test_a_connection_is_renewed_after_its_message_allowance(smtp_server: Any) -> None:
    server = await smtp_server()

    provider = await sending(
        config(server.port, max_messages_per_connection=2), *(outbound(n) for n in range(5))
    )

    assert provider.connections_opened == 3
    assert len(server.recorder.peers) == 3


async def test_a_connection_dropped_by_the_relay_is_replaced(smtp_server: Any) -> None:
    server = await smtp_server()
    provider = SmtpEmailProvider(config(server.port))
    await provider.send(outbound(1))

    for session in server.sessions:
        session.transport.close()  # the relay hangs up on the idle connection
    await provider.send(outbound(2))
    await provider.aclose()

    assert len(server.recorder.messages) == 2
    assert provider.connections_opened == 2


async def test_an_unreachable_relay_is_a_transient_error() -> None:
    with pytest.raises(ProviderError) as caught:
        await sending(config(free_port(), timeout=timedelta(seconds=5)), outbound())

    assert caught.value.kind is ErrorKind.TRANSIENT


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("550 5.1.1 <ada.lovelace@example.org>: Recipient address rejected", ErrorKind.HARD_BOUNCE),
        ("452 4.2.2 Mailbox full", ErrorKind.SOFT_BOUNCE),
        ("421 4.7.0 Too many connections, try again later", ErrorKind.RATE_LIMITED),
        ("451 4.7.1 Greylisted", ErrorKind.RATE_LIMITED),
        ("554 5.7.1 Relay access denied", ErrorKind.REJECTED),
    ],
)
async def test_a_refused_recipient_maps_to_its_kind(
    smtp_server: Any, recorder: Any, reply: str, kind: ErrorKind
) -> None:
    recorder.rcpt_replies[RECIPIENT] = reply
    server = await smtp_server(recorder)

    with pytest.raises(ProviderError) as caught:
        await sending(
            config(server.port, rate_limited_retry_after=timedelta(seconds=90)), outbound()
        )

    assert caught.value.kind is kind
    assert caught.value.code == " ".join(reply.split()[:2])
    assert RECIPIENT not in str(caught.value)
    expected_wait = timedelta(seconds=90) if kind is ErrorKind.RATE_LIMITED else None
    assert caught.value.retry_after == expected_wait


async def test_content_refused_at_data_is_rejected(smtp_server: Any, recorder: Any) -> None:
    recorder.data_reply = "554 5.7.1 Message rejected as spam"
    server = await smtp_server(recorder)

    with pytest.raises(ProviderError) as caught:
        await sending(config(server.port), outbound())

    assert caught.value.kind is ErrorKind.REJECTED


async def test_a_bounce_leaves_the_connection_usable(smtp_server: Any, recorder: Any) -> None:
    recorder.rcpt_replies["gone@example.org"] = "550 5.1.1 No such user"
    server = await smtp_server(recorder)
    provider = SmtpEmailProvider(config(server.port))

    with pytest.raises(ProviderError):
        await provider.send(outbound(1, to_address="gone@example.org"))
    await provider.send(outbound(2))
    await provider.aclose()

    assert len(server.recorder.messages) == 1
    assert provider.connections_opened == 1


async def test_a_421_closes_the_connection(smtp_server: Any, recorder: Any) -> None:
    recorder.rcpt_replies["busy@example.org"] = "421 4.7.0 Try again later"
    server = await smtp_server(recorder)
    provider = SmtpEmailProvider(config(server.port))

    with pytest.raises(ProviderError):
        await provider.send(outbound(1, to_address="busy@example.org"))
    await provider.send(outbound(2))
    await provider.aclose()

    assert provider.connections_opened == 2


async def test_a_batch_reports_each_outcome_in_order(smtp_server: Any, recorder: Any) -> None:
    recorder.rcpt_replies["gone@example.org"] = "550 5.1.1 No such user"
    server = await smtp_server(recorder)
    provider = SmtpEmailProvider(config(server.port))
    messages = [outbound(1), outbound(2, to_address="gone@example.org"), outbound(3)]

    outcomes = await provider.send_batch(messages)
    await provider.aclose()

    assert [o.send_id for o in outcomes] == ["send-1", "send-2", "send-3"]
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error is not None
    assert outcomes[1].error.kind is ErrorKind.HARD_BOUNCE


async def test_a_batch_raises_when_the_relay_refuses_the_login(
    smtp_server: Any, authenticator: Any, certificate: Any
) -> None:
    server = await authenticating_server(smtp_server, authenticator, certificate, "another")
    provider = SmtpEmailProvider(
        tls_config(server.port, certificate, username="shop", password=PASSWORD)
    )

    with pytest.raises(ProviderError) as caught:
        await provider.send_batch([outbound(1), outbound(2)])
    await provider.aclose()

    assert caught.value.kind is ErrorKind.AUTH


async def test_header_injection_is_refused_before_anything_is_sent(smtp_server: Any) -> None:
    server = await smtp_server()

    with pytest.raises(ProviderError) as caught:
        await sending(config(server.port), outbound(subject="Hi\r\nBcc: victim@example.net"))

    assert caught.value.kind is ErrorKind.INVALID
    assert server.recorder.messages == []
