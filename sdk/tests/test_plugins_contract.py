"""What crosses the connector contract: its values keep personal data out of logs and
refuse what makes no sense; the registry keeps names unique and well-formed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    Capability,
    Connector,
    ConnectorConfig,
    ConnectorRegistry,
    DuplicateConnector,
    ErrorKind,
    Headers,
    OutboundMessage,
    ProviderError,
    RateLimit,
    RejectReason,
    SendOutcome,
    SourceBatch,
    WebhookDelivery,
    WebhookRejected,
    WebhookRequest,
    redact,
)
from mailwright.registry import InvalidName

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class NoConfig(ConnectorConfig):
    pass


def provider(config: NoConfig) -> object:
    return object()


# -- headers and webhook requests -------------------------------------------------------


def test_headers_are_read_without_regard_to_case() -> None:
    headers = Headers([("X-Shopify-Hmac-Sha256", "abc"), ("Content-Type", "application/json")])

    assert headers["x-shopify-hmac-sha256"] == "abc"
    assert "CONTENT-TYPE" in headers
    assert headers.get("missing") is None


def test_a_repeated_header_is_visible_as_such() -> None:
    headers = Headers([("X-Signature", "a"), ("x-signature", "b")])

    assert headers.get_all("X-Signature") == ("a", "b")
    assert headers["X-Signature"] == "a, b"


def test_header_values_stay_out_of_repr() -> None:
    headers = Headers({"Authorization": "Bearer very-secret-token"})

    assert "very-secret-token" not in repr(headers)


def test_a_webhook_request_repr_shows_no_query_headers_or_body() -> None:
    request = WebhookRequest(
        method="POST",
        url="https://mw.example/webhooks/mailchimp/w1?secret=hunter2",
        headers=Headers({"X-Sig": "sig-value"}),
        body=b'{"email": "ada@example.org"}',
        received_at=NOW,
    )

    text = repr(request)
    assert "/webhooks/mailchimp/w1" in text
    for leaked in ("hunter2", "sig-value", "ada@example.org"):
        assert leaked not in text


def test_a_webhook_request_takes_a_plain_mapping_of_headers() -> None:
    request = WebhookRequest("POST", "https://x/y", {"A": "1"}, b"", NOW)  # type: ignore[arg-type]

    assert request.headers.get_all("a") == ("1",)


def test_a_webhook_request_needs_raw_bytes_and_an_aware_time() -> None:
    with pytest.raises(TypeError, match="raw bytes"):
        WebhookRequest("POST", "https://x/y", Headers(), "{}", NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        WebhookRequest("POST", "https://x/y", Headers(), b"{}", datetime(2025, 1, 1))


def test_a_delivery_needs_an_id() -> None:
    with pytest.raises(ValueError, match="delivery_id"):
        WebhookDelivery("")


# -- email provider values ----------------------------------------------------------------


def outbound(**changes: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "send_id": "send-1",
        "idempotency_key": "campaign-1:profile-1",
        "from_address": "Shop <news@shop.example>",
        "to_address": "ada@example.org",
        "subject": "Your cart misses you",
        "html": "<p>Hello Ada</p>",
    }
    fields.update(changes)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


def test_an_outbound_message_repr_carries_no_address_subject_or_body() -> None:
    text = repr(outbound())

    assert "send-1" in text
    for leaked in ("ada@example.org", "news@shop.example", "cart", "Hello Ada"):
        assert leaked not in text


def test_an_outbound_message_needs_a_body() -> None:
    with pytest.raises(ValueError, match="needs a body"):
        outbound(html=None)


def test_an_outbound_message_needs_its_ids_and_addresses() -> None:
    for field in ("send_id", "idempotency_key", "from_address", "to_address"):
        with pytest.raises(ValueError, match=field):
            outbound(**{field: ""})


def test_an_outbound_message_keeps_headers_read_only() -> None:
    message = outbound(headers={"List-Unsubscribe": "<https://u>"})

    assert message.headers["list-unsubscribe"] == "<https://u>"
    assert isinstance(message.headers, Headers)


def test_a_send_outcome_is_an_id_or_an_error() -> None:
    error = ProviderError(ErrorKind.HARD_BOUNCE, "550 5.1.1 unknown user")

    assert SendOutcome("s", provider_message_id="m").ok
    assert not SendOutcome("s", error=error).ok
    with pytest.raises(ValueError, match="exactly one"):
        SendOutcome("s")
    with pytest.raises(ValueError, match="exactly one"):
        SendOutcome("s", provider_message_id="m", error=error)


def test_only_temporary_kinds_are_retryable() -> None:
    retryable = {kind for kind in ErrorKind if kind.retryable}

    assert retryable == {ErrorKind.SOFT_BOUNCE, ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT}


def test_a_provider_error_keeps_its_wait_and_code() -> None:
    error = ProviderError(
        ErrorKind.RATE_LIMITED, "slow down", retry_after=timedelta(seconds=30), code="429"
    )

    assert error.retryable
    assert (error.retry_after, error.code) == (timedelta(seconds=30), "429")
    assert str(error) == "rate_limited: slow down"


def test_a_provider_error_detail_loses_the_addresses_it_quotes() -> None:
    error = ProviderError(ErrorKind.HARD_BOUNCE, "550 5.1.1 <bob.smith@example.com>: no such user")

    assert "bob.smith" not in str(error)
    assert error.detail == "550 5.1.1 <<address>>: no such user"


addresses = st.builds(
    lambda local, domain: f"{local}@{domain}.com",
    st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,20}", fullmatch=True),
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,15}", fullmatch=True),
)


@given(address=addresses, before=st.text(max_size=40), after=st.text(max_size=40))
def test_redaction_removes_any_address_wherever_it_appears(
    address: str, before: str, after: str
) -> None:
    assert address not in redact(f"{before} {address} {after}")


@given(st.text(max_size=5000))
def test_redacted_details_are_one_bounded_line(detail: str) -> None:
    redacted = redact(detail)

    assert len(redacted) <= 500
    assert "\n" not in redacted
    assert "\r" not in redacted


def test_a_webhook_rejection_has_a_reason() -> None:
    rejection = WebhookRejected(RejectReason.STALE, "timestamp 400 s old")

    assert rejection.reason is RejectReason.STALE
    assert str(rejection) == "stale: timestamp 400 s old"


def test_a_rate_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_second"):
        RateLimit(per_second=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(per_second=1, burst=0)
    with pytest.raises(ValueError, match="concurrency"):
        RateLimit(per_second=1, concurrency=0)


# -- sources and audiences ------------------------------------------------------------------


def test_a_source_batch_holds_its_events_as_a_tuple() -> None:
    batch = SourceBatch("customers", [], cursor="c2")  # type: ignore[arg-type]

    assert batch.events == ()


def test_an_audience_member_repr_shows_only_the_profile() -> None:
    member = AudienceMember("p1", email="ada@example.org", traits={"first_name": "Ada"})

    assert "ada@example.org" not in repr(member)
    assert "Ada'" not in repr(member)
    assert "p1" in repr(member)


def test_an_audience_member_is_not_changed_through_its_traits() -> None:
    traits = {"first_name": "Ada"}
    member = AudienceMember("p1", traits=traits)
    traits["first_name"] = "Grace"

    assert member.traits["first_name"] == "Ada"
    with pytest.raises(TypeError):
        member.traits["x"] = 1  # type: ignore[index]


def test_an_audience_change_cannot_add_and_remove_one_person() -> None:
    with pytest.raises(ValueError, match="both added and removed"):
        AudienceChange(
            "w1",
            "seg-1",
            "Loyal Buyers",
            "change-1",
            added=(AudienceMember("p1"),),
            removed=(AudienceMember("p1"),),
        )


# -- connectors and the registry --------------------------------------------------------------


def test_the_capabilities_of_a_connector_are_its_factories() -> None:
    connector = Connector("acme", NoConfig, source=provider, webhook=provider)  # type: ignore[arg-type]

    assert connector.capabilities == {Capability.SOURCE, Capability.WEBHOOK}


def test_a_connector_needs_a_capability() -> None:
    with pytest.raises(ValueError, match="no capability"):
        Connector("acme", NoConfig)


def test_a_connector_needs_a_pydantic_configuration_model() -> None:
    with pytest.raises(TypeError, match="pydantic"):
        Connector("acme", dict, email_provider=provider)  # type: ignore[type-var,arg-type]


@pytest.mark.parametrize(
    "name", ["", "Acme", "acme_mail", "-acme", "acme-", "acme--mail", "a" * 41, "acme mail"]
)
def test_connector_names_are_lowercase_words_joined_by_hyphens(name: str) -> None:
    with pytest.raises(InvalidName):
        Connector(name, NoConfig, email_provider=provider)  # type: ignore[arg-type]


def test_a_name_is_registered_once() -> None:
    registry = ConnectorRegistry()
    registry.register(Connector("acme", NoConfig, email_provider=provider))  # type: ignore[arg-type]

    with pytest.raises(DuplicateConnector, match="'acme' is already registered"):
        registry.register(Connector("acme", NoConfig, source=provider))  # type: ignore[arg-type]


def test_the_registry_takes_connectors_only() -> None:
    with pytest.raises(TypeError, match="takes a Connector"):
        ConnectorRegistry().register("acme")  # type: ignore[arg-type]


def test_connectors_are_found_by_capability() -> None:
    registry = ConnectorRegistry()
    registry.register(Connector("b-mail", NoConfig, email_provider=provider))  # type: ignore[arg-type]
    registry.register(Connector("a-shop", NoConfig, source=provider, webhook=provider))  # type: ignore[arg-type]
    registry.register(Connector("c-mail", NoConfig, email_provider=provider))  # type: ignore[arg-type]

    assert [c.name for c in registry.with_capability(Capability.EMAIL_PROVIDER)] == [
        "b-mail",
        "c-mail",
    ]
    assert registry.names() == ["a-shop", "b-mail", "c-mail"]
