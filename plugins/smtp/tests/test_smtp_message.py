"""An outbound message becomes an SMTP envelope and well-formed MIME, or a clear refusal."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.utils import formataddr
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.connectors import ErrorKind, Headers, OutboundMessage, ProviderError
from mailwright_smtp.message import _parse, _parse_any, mailbox, prepare

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def outbound(**changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "send_id": "send-1",
        "idempotency_key": "campaign-7:profile-1",
        "from_address": "Shop Café <news@shop.example>",
        "to_address": "Ada <ada@example.org>",
        "subject": "Votre panier — encore là",
        "text": "Bonjour Ada",
        "html": "<p>Bonjour Ada</p>",
    }
    fields.update(changes)
    return OutboundMessage(**fields)


def built(message: OutboundMessage) -> email.message.EmailMessage:
    prepared = prepare(message, envelope_from=None, message_id_domain=None, now=NOW)
    parsed = email.message_from_bytes(prepared.data, policy=policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_text_and_html_become_alternatives() -> None:
    parsed = built(outbound())

    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def test_non_ascii_headers_are_encoded_and_read_back() -> None:
    parsed = built(outbound())

    assert str(parsed["Subject"]) == "Votre panier — encore là"
    assert parsed["From"].addresses[0].display_name == "Shop Café"


def test_the_data_uses_crlf_line_ends_only() -> None:
    data = prepare(outbound(), envelope_from=None, message_id_domain=None).data

    assert b"\n" not in data.replace(b"\r\n", b"")


def test_extra_headers_are_added() -> None:
    parsed = built(outbound(headers=Headers({"List-Unsubscribe": "<https://mw.example/u/t>"})))

    assert parsed["List-Unsubscribe"] == "<https://mw.example/u/t>"


def test_every_message_names_its_send_for_the_bounces_that_quote_it() -> None:
    assert built(outbound())["X-Mailwright-Send"] == "send-1"


def test_raw_mime_is_given_the_send_header_too() -> None:
    mime = b"From: a@shop.example\r\nSubject: x\r\n\r\nbody\r\n"
    prepared = prepare(outbound(mime=mime), envelope_from=None, message_id_domain=None, now=NOW)
    parsed = email.message_from_bytes(prepared.data, policy=policy.default)
    assert parsed["X-Mailwright-Send"] == "send-1"


@pytest.mark.parametrize(
    "name", ["From", "to", "Message-ID", "DKIM-Signature", "Bcc", "X-Mailwright-Send"]
)
def test_extra_headers_cannot_replace_the_messages_own(name: str) -> None:
    with pytest.raises(ProviderError) as caught:
        built(outbound(headers=Headers({name: "x@evil.example"})))

    assert caught.value.kind is ErrorKind.INVALID


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Campaign": "spring\r\nBcc: victim@example.net"},
        {"X-Bad Name": "value"},
        {"X-Colon:": "value"},
    ],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ProviderError) as caught:
        built(outbound(headers=Headers(headers)))

    assert caught.value.kind is ErrorKind.INVALID


def test_the_message_id_uses_the_configured_domain() -> None:
    prepared = prepare(outbound(), envelope_from=None, message_id_domain="mail.shop.example")

    assert prepared.message_id.endswith("@mail.shop.example>")


def test_the_envelope_takes_bare_addresses() -> None:
    prepared = prepare(outbound(), envelope_from=None, message_id_domain=None)

    assert (prepared.envelope_from, prepared.recipient) == ("news@shop.example", "ada@example.org")


def test_an_international_domain_is_sent_in_its_ascii_form() -> None:
    assert mailbox("ada@bücher.example", "to_address") == "ada@xn--bcher-kva.example"


@pytest.mark.parametrize(
    "address",
    [
        "not an address",
        "ada@",
        "@example.org",
        "ada@example.org\r\nRCPT TO:<x@y>",
        "adé@example.org",
    ],
)
def test_a_bad_address_is_invalid_and_named(address: str) -> None:
    with pytest.raises(ProviderError) as caught:
        mailbox(address, "to_address")

    assert caught.value.kind is ErrorKind.INVALID
    assert caught.value.detail.startswith("to_address:")


_ATOM_CHARS = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


@given(st.lists(st.text(_ATOM_CHARS + '.@ <>"é', min_size=1, max_size=8), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_a_plain_address_reads_as_the_full_parser_reads_it(pieces: list[str]) -> None:
    for address in ("@".join(pieces), ".".join(pieces), "@".join(pieces[:2]) + ".org"):
        try:
            expected: tuple[str, str] | str = _parse_any(address, "to_address")
        except ProviderError as error:
            expected = error.detail
        try:
            got: tuple[str, str] | str = _parse(address, "to_address")
        except ProviderError as error:
            got = error.detail
        assert got == expected


def test_raw_mime_without_a_from_header_is_refused() -> None:
    with pytest.raises(ProviderError, match="no From header"):
        prepare(
            outbound(mime=b"Subject: x\r\n\r\nbody\r\n"), envelope_from=None, message_id_domain=None
        )


def test_raw_mime_keeps_its_own_message_id() -> None:
    mime = b"From: a@shop.example\r\nMessage-ID: <render-1@shop.example>\r\n\r\nbody\r\n"

    prepared = prepare(outbound(mime=mime), envelope_from=None, message_id_domain=None, now=NOW)

    assert prepared.message_id == "<render-1@shop.example>"
    assert prepared.data.startswith(b"Date: ")


printable = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"),
    max_size=300,
)
# Line ends are sent as CRLF whatever they were; a lone CR is one of them.
bodies = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=3000
)


def same_words(a: str, b: str) -> bool:
    return a.split() == b.split()


@settings(max_examples=150, deadline=None)
@given(subject=printable, name=printable, text=bodies, html=st.one_of(st.none(), bodies))
def test_what_is_built_reads_back_as_what_was_given(
    subject: str, name: str, text: str, html: str | None
) -> None:
    message = outbound(
        subject=subject,
        from_address=formataddr((name, "news@shop.example")),
        text=text,
        html=html,
    )

    parsed = built(message)

    assert same_words(str(parsed["Subject"]), subject)
    assert parsed["From"].addresses[0].addr_spec == "news@shop.example"
    assert same_words(parsed["From"].addresses[0].display_name, name.strip())
    parts = list(parsed.iter_parts()) if html is not None else [parsed]
    contents = [part.get_content().replace("\r\n", "\n") for part in parts]
    expected = [text] if html is None else [text, html]
    assert contents == expected
